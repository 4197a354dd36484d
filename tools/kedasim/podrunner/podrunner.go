// Package podrunner is a TEST HARNESS, not a kubelet: the "process runner"
// of the e2e. On a local control plane the kwok node runs nothing, so this
// stands in for kubelet + container runtime for the pods bound to that node:
// for each pod it runs the real local binary of each container, with the
// container's own environment resolved from the API, and writes what the
// process did back into the pod status (Running, Ready from the readiness
// probe, and for Job pods the exit code, so the Job controller and its
// podFailurePolicy see the real outcome). Deleting the pod sends SIGTERM,
// and SIGKILL after terminationGracePeriodSeconds.
//
// No namespaces, cgroups or images: every process runs on this machine as
// this user. Each pod gets its own loopback address (127.1.x.y by default,
// Linux routes all of 127/8 to lo) as its status.podIP, so pods bind their
// listeners like in a cluster (each pod has its own IP) without colliding
// ports, and nothing listens beyond loopback. Volume mount paths (emptyDir,
// configMap, secret) become per-pod directories; occurrences of a mount path
// in args and env values are rewritten to that directory.
//
// kwok must not run its pod stages for the node (pod-ready, pod-complete,
// pod-delete): this runner owns the pods' status and their deletion.
package podrunner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Options configure a Runner.
type Options struct {
	// NodeName: only pods with this spec.nodeName are run.
	NodeName string
	// Images maps a container image (e.g. "local/webapi") to the local
	// binary that runs in its place. A pod with an unknown image fails.
	Images map[string]string
	// LogDir receives <namespace>_<pod>_<container>.log (stdout and stderr)
	// and each pod's volume directories.
	LogDir string
	// IPBase is the first two octets of the pods' loopback addresses
	// (default "127.1"): pod n gets IPBase.(n/250).(n%250+1).
	IPBase string
	// Env is added to every process's environment after the container's
	// own (e.g. a marker by which a test finds what it left running).
	Env []string
	// Logf logs what the runner does (nil: silent).
	Logf func(format string, args ...any)
}

// Runner runs the pods of one node as local processes.
type Runner struct {
	client kubernetes.Interface
	opts   Options

	mu     sync.Mutex
	pods   map[types.UID]*pod
	nextIP int
	// While Hold is in force: the pods it keeps Pending, and the channel
	// Release closes.
	holdSel labels.Selector
	hold    chan struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Runner over the cluster of cfg. Call Start.
func New(cfg *rest.Config, opts Options) (*Runner, error) {
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("podrunner: client: %w", err)
	}
	return NewForClient(c, opts)
}

// NewForClient is New with a ready client (a fake clientset in tests).
func NewForClient(c kubernetes.Interface, opts Options) (*Runner, error) {
	if opts.NodeName == "" {
		return nil, errors.New("podrunner: NodeName is required")
	}
	if opts.LogDir == "" {
		return nil, errors.New("podrunner: LogDir is required")
	}
	if err := os.MkdirAll(opts.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("podrunner: %w", err)
	}
	if opts.IPBase == "" {
		opts.IPBase = "127.1"
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &Runner{client: c, opts: opts, pods: map[types.UID]*pod{}}, nil
}

// Start watches the node's pods until Stop; it returns once the informer
// has synced.
func (r *Runner) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	f := informers.NewSharedInformerFactoryWithOptions(r.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", r.opts.NodeName).String()
	}))
	inf := f.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.observe(ctx, obj, false) },
		UpdateFunc: func(_, obj any) { r.observe(ctx, obj, false) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			r.observe(ctx, obj, true)
		},
	})
	if err != nil {
		cancel()
		return fmt.Errorf("podrunner: %w", err)
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			cancel()
			return fmt.Errorf("podrunner: informer %v did not sync", typ)
		}
	}
	r.opts.Logf("podrunner: watching pods on node %s", r.opts.NodeName)
	return nil
}

// observe routes an informer event to the pod's own goroutine.
func (r *Runner) observe(ctx context.Context, obj any, deleted bool) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.NodeName != r.opts.NodeName {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	rp, known := r.pods[p.UID]
	switch {
	case known:
		if deleted {
			rp.stop(true)
		} else if p.DeletionTimestamp != nil {
			rp.stop(false)
		}
	case deleted, p.DeletionTimestamp != nil,
		p.Status.Phase == corev1.PodSucceeded, p.Status.Phase == corev1.PodFailed:
		// Never started here (a pod of an earlier runner, or already done).
	default:
		r.nextIP++
		n := r.nextIP - 1
		ip := fmt.Sprintf("%s.%d.%d", r.opts.IPBase, n/250, n%250+1)
		var held chan struct{}
		if r.hold != nil && r.holdSel.Matches(labels.Set(p.Labels)) {
			held = r.hold
		}
		rp := newPod(r, p.DeepCopy(), ip, held)
		r.pods[p.UID] = rp
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			rp.run(ctx)
		}()
	}
}

// Hold makes the node take no new pods whose labels match selector, as a
// full node does: such a pod stays Pending, nothing started and no status
// written, until Release. Running pods and other pods go on.
func (r *Runner) Hold(selector string) error {
	sel, err := labels.Parse(selector)
	if err != nil {
		return fmt.Errorf("podrunner: selector %q: %w", selector, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hold == nil {
		r.hold = make(chan struct{})
	}
	r.holdSel = sel
	return nil
}

// Release ends a Hold: the pods it kept Pending start now.
func (r *Runner) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hold != nil {
		close(r.hold)
		r.hold = nil
	}
}

// Stop terminates every process it started (SIGTERM, then SIGKILL after each
// pod's grace period) and waits for them. Pod objects are left as they are.
func (r *Runner) Stop() {
	r.mu.Lock()
	for _, p := range r.pods {
		p.stop(true)
	}
	r.mu.Unlock()
	r.wg.Wait()
	if r.cancel != nil {
		r.cancel()
	}
}

// Endpoints returns the base URLs (http://ip:port, the first container port
// of the pod's first container that has one) of the ready pods in namespace
// whose labels match selector (a label selector string), sorted: what a
// Service would balance over.
func (r *Runner) Endpoints(namespace, selector string) ([]string, error) {
	sel, err := labels.Parse(selector)
	if err != nil {
		return nil, fmt.Errorf("podrunner: selector %q: %w", selector, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, p := range r.pods {
		if p.spec.Namespace != namespace || !sel.Matches(labels.Set(p.spec.Labels)) || !p.isReady() {
			continue
		}
		for _, c := range p.spec.Spec.Containers {
			if len(c.Ports) > 0 {
				out = append(out, fmt.Sprintf("http://%s", net.JoinHostPort(p.ip, fmt.Sprint(c.Ports[0].ContainerPort))))
				break
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// PodIP is the loopback address the runner gave a pod ("" if it runs no such pod).
func (r *Runner) PodIP(namespace, name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.pods {
		if p.spec.Namespace == namespace && p.spec.Name == name {
			return p.ip
		}
	}
	return ""
}

// Signal sends sig to every process of a running pod, as a node problem or
// an OOM kill would (the e2e kills an encoder mid-encode this way). The pod
// goes on as if the process had ended by itself.
func (r *Runner) Signal(namespace, name string, sig os.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.pods {
		if p.spec.Namespace == namespace && p.spec.Name == name {
			return p.signal(sig)
		}
	}
	return fmt.Errorf("podrunner: no pod %s/%s runs here", namespace, name)
}
