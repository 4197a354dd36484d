// Package localcluster starts a real Kubernetes control plane with the real
// KEDA operator and metrics adapter on this machine, every listener on
// 127.0.0.1, for the e2e tests: kwokctl (runtime "binary") runs etcd,
// kube-apiserver, kube-controller-manager and the kwok controller, which
// plays one fake Node whose pods turn Running without a kubelet; this
// package adds the KEDA CRDs, the operator and our metrics adapter
// (cmd/keda-adapter) as local processes, and the APIService that lets the
// HPA controller read external metrics from the adapter. No kube-scheduler:
// pods must name their node (Node) and tolerate its taint (NodeToleration).
//
// The binaries are built by `make cluster-bins` (see Bins). The recipe and
// its gotchas are in the shared notes on the local control plane.
package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

const (
	// Node is the fake node's name; pods name it in spec.nodeName.
	Node = "kwok-node"
	// KEDANamespace holds the adapter's Service (and KEDA's cluster objects).
	KEDANamespace = "keda"

	kwokAnnotation = "kwok.x-k8s.io/node"
	adapterService = "keda-metrics-apiserver"
)

// NodeToleration tolerates the fake node's taint (kwok's documented one);
// without a scheduler nothing enforces it, but pods carry it as they would
// on a cluster with one.
var NodeToleration = corev1.Toleration{Key: kwokAnnotation, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

// Options configures Start.
type Options struct {
	Bins Bins
	// WorkDir holds everything the cluster writes (kwokctl's work dir,
	// certificates, logs); a temporary directory the caller removes.
	WorkDir string
	// LogDir, if set, receives every component's log when Stop runs (before
	// kwokctl deletes its work dir, logs included).
	LogDir string
	// CRDDir holds KEDA's CRDs (config/crd/bases); empty: the module
	// cache's copy of the KEDA version this module requires.
	CRDDir string
	// Logf reports progress; nil: silent.
	Logf func(format string, args ...any)
	// Name of the kwok cluster; empty: "e2e".
	Name string
	// PodStages keeps kwok's default pod stages (pod/fast): kwok itself
	// marks every pod Running and Ready, completes Job pods with exit code
	// 0 and deletes pods at once. Leave it false when a process runner
	// (podrunner) owns the pods' status: then kwok runs only its
	// node stages (node/fast and node/heartbeat-with-lease).
	PodStages bool
	// HPASyncPeriod is kube-controller-manager's
	// --horizontal-pod-autoscaler-sync-period; zero: 5s.
	HPASyncPeriod time.Duration
}

// Cluster is a running control plane with KEDA.
type Cluster struct {
	// Kubeconfig is the path of an admin kubeconfig (for kubectl).
	Kubeconfig string
	// Config is the same credentials for client-go.
	Config *rest.Config
	// ClusterReady and KEDAReady are how long the control plane and then
	// KEDA (up to an Available APIService) took to start.
	ClusterReady, KEDAReady time.Duration

	opts       Options
	name       string
	kwokDir    string // KWOK_WORKDIR
	clusterDir string // KWOK_WORKDIR/clusters/<name>
	logDir     string // this package's own process logs
	procs      []*process
	kwokPIDs   map[string]int
	created    bool // kwokctl create ran: delete must run
	stopped    bool
}

// Start brings the control plane and KEDA up and returns once the HPA
// controller can read external metrics through the aggregated API. On error
// it stops whatever it started.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if err := opts.Bins.check(); err != nil {
		return nil, err
	}
	if opts.WorkDir == "" {
		return nil, errors.New("localcluster: Options.WorkDir is required")
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Name == "" {
		opts.Name = "e2e"
	}
	if opts.HPASyncPeriod == 0 {
		opts.HPASyncPeriod = 5 * time.Second
	}
	if opts.CRDDir == "" {
		if opts.CRDDir, err = kedaCRDDir(ctx); err != nil {
			return nil, err
		}
	}
	c = &Cluster{
		opts:    opts,
		name:    opts.Name,
		kwokDir: filepath.Join(opts.WorkDir, "kwok"),
		logDir:  filepath.Join(opts.WorkDir, "logs"),
	}
	c.clusterDir = filepath.Join(c.kwokDir, "clusters", c.name)
	if err := os.MkdirAll(c.logDir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
			c = nil
		}
	}()

	start := time.Now()
	if err := c.createCluster(ctx); err != nil {
		return c, err
	}
	if err := c.createNode(ctx); err != nil {
		return c, err
	}
	c.ClusterReady = time.Since(start)
	opts.Logf("localcluster: control plane ready in %s (%s)", c.ClusterReady.Round(time.Millisecond), c.Config.Host)

	start = time.Now()
	if err := c.startKEDA(ctx); err != nil {
		return c, err
	}
	c.KEDAReady = time.Since(start)
	opts.Logf("localcluster: KEDA ready in %s (APIService %s Available)", c.KEDAReady.Round(time.Millisecond), apiServiceName)
	return c, nil
}

// kwokctl runs kwokctl with the cluster's name and work dir.
func (c *Cluster) kwokctl(ctx context.Context, out io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, c.opts.Bins.Kwokctl, append([]string{"--name", c.name}, args...)...)
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+c.kwokDir)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	return cmd.Run()
}

// createCluster runs kwokctl create cluster with the local binaries, every
// listener on 127.0.0.1, and the aggregation-layer flags KEDA's adapter
// needs, then waits for /readyz itself: kwokctl exits 0 even when the
// cluster never became ready.
func (c *Cluster) createCluster(ctx context.Context) error {
	ports, err := localproc.FreePorts(5)
	if err != nil {
		return err
	}
	apiserver, etcd, etcdPeer, kwok, kcm := ports[0], ports[1], ports[2], ports[3], ports[4]
	b := c.opts.Bins
	pki := filepath.Join(c.clusterDir, "pki")
	args := []string{
		"create", "cluster", "--runtime", "binary",
		// kwokctl edits this kubeconfig (default ~/.kube/config): one of its own.
		"--kubeconfig", filepath.Join(c.opts.WorkDir, "kwokctl-kubeconfig.yaml"),
		"--etcd-binary", b.Etcd,
		"--kube-apiserver-binary", b.KubeAPIServer,
		"--kube-controller-manager-binary", b.KubeControllerManager,
		"--kwok-controller-binary", b.Kwok,
		"--disable", "kube-scheduler",
		"--kube-apiserver-port", strconv.Itoa(apiserver),
		"--etcd-port", strconv.Itoa(etcd),
		"--controller-port", strconv.Itoa(kwok),
		"--kube-controller-manager-port", strconv.Itoa(kcm),
		"--wait", "2m",
	}
	if !c.opts.PodStages {
		stages, err := nodeStagesOnly(ctx, filepath.Join(c.opts.WorkDir, "kwok-stages.yaml"))
		if err != nil {
			return err
		}
		// With any Stage in --config, kwokctl uses those instead of its
		// default node and pod stages (v0.8.0 pkg/kwokctl/runtime/cluster.go).
		args = append(args, "--config", stages)
	}
	// kwokctl v0.8.0 panics (index out of range in mutationComponentPatches)
	// when a component's --extra-args repeat before every component has had
	// its first one: one for each component first.
	first := [][2]string{
		{"kube-controller-manager", "bind-address=127.0.0.1"},
		{"kube-apiserver", "bind-address=127.0.0.1"},
		{"kwok-controller", "server-address=127.0.0.1:" + strconv.Itoa(kwok)},
		{"etcd", "listen-client-urls=http://127.0.0.1:" + strconv.Itoa(etcd)},
	}
	peer := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	more := [][2]string{
		{"kube-controller-manager", "horizontal-pod-autoscaler-sync-period=" + c.opts.HPASyncPeriod.String()},
		{"kube-controller-manager", "controllers=" + strings.Join(controllers, ",")},
		// kwokctl passes no --requestheader-* flags: without them the
		// aggregation layer cannot authenticate to KEDA's adapter, and
		// without allowed-names the apiserver refuses to start (its one CA
		// signs both client and proxy certificates).
		{"kube-apiserver", "requestheader-client-ca-file=" + filepath.Join(pki, "ca.crt")},
		{"kube-apiserver", "requestheader-allowed-names=kwok-admin"},
		{"kube-apiserver", "requestheader-username-headers=X-Remote-User"},
		{"kube-apiserver", "requestheader-group-headers=X-Remote-Group"},
		{"kube-apiserver", "requestheader-extra-headers-prefix=X-Remote-Extra-"},
		{"etcd", "advertise-client-urls=http://127.0.0.1:" + strconv.Itoa(etcd)},
		{"etcd", "listen-peer-urls=" + peer},
		{"etcd", "initial-advertise-peer-urls=" + peer},
		{"etcd", "initial-cluster=node0=" + peer},
	}
	for _, a := range append(first, more...) {
		args = append(args, "--extra-args", a[0]+"="+a[1])
	}
	logPath := filepath.Join(c.logDir, "kwokctl-create.log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	c.opts.Logf("localcluster: kwokctl create cluster (apiserver 127.0.0.1:%d, etcd :%d, kwok :%d, kcm :%d)", apiserver, etcd, kwok, kcm)
	c.created = true // delete even after a failed create: it may have started processes
	// kwokctl picks component flags by Kubernetes version (default: its own, 1.36).
	cmd := exec.CommandContext(ctx, b.Kwokctl, append([]string{"--name", c.name}, args...)...)
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+c.kwokDir, "KWOK_KUBE_VERSION="+b.KubeVersion)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kwokctl create cluster: %w; log %s:\n%s", err, logPath, tail(logPath))
	}
	c.readKwokPIDs()

	c.Kubeconfig = filepath.Join(c.clusterDir, "kubeconfig.yaml")
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	// The certificates inline, not as files: with files, client-go reloads
	// them in the background for as long as the process lives, and logs an
	// error a second once Stop has removed the cluster's directory.
	if err := rest.LoadTLSFiles(c.Config); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	c.Config.CertFile, c.Config.KeyFile, c.Config.CAFile = "", "", ""
	c.Config.QPS, c.Config.Burst = 100, 200
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	err = localproc.PollContext(ctx, 200*time.Millisecond, 60*time.Second, func() (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && bytes.Equal(body, []byte("ok")), nil
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver /readyz: %w; kwokctl log %s:\n%s", err, logPath, tail(logPath))
	}
	return nil
}

// controllers are kube-controller-manager's controllers the tests need
// (1.36 names): Deployments, the HPA, Jobs, the service accounts without
// which no Pod can be created, garbage collection and namespace deletion.
var controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"horizontal-pod-autoscaler-controller",
	"job-controller",
	"ttl-after-finished-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"garbage-collector-controller",
	"namespace-controller",
	"endpoints-controller",
	"endpointslice-controller",
	"root-ca-certificate-publisher-controller",
	"pod-garbage-collector-controller",
}

// readKwokPIDs records the PIDs of kwokctl's components (from its pids
// directory), so that Stop can check they are gone.
func (c *Cluster) readKwokPIDs() {
	c.kwokPIDs = map[string]int{}
	entries, _ := os.ReadDir(filepath.Join(c.clusterDir, "pids"))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(c.clusterDir, "pids", e.Name()))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			c.kwokPIDs[strings.TrimSuffix(e.Name(), ".pid")] = pid
		}
	}
}

// createNode creates the fake node kwok manages (kwokctl creates none):
// kwok's annotation, its taint, room for many pods. kwok's node stages then
// mark it Ready and keep its lease.
func (c *Cluster) createNode(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("500"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        Node,
			Annotations: map[string]string{kwokAnnotation: "fake"},
			Labels:      map[string]string{"type": "kwok", corev1.LabelHostname: Node, corev1.LabelOSStable: "linux"},
		},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: kwokAnnotation, Value: "fake", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
		},
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node: %w", err)
	}
	return localproc.PollContext(ctx, 200*time.Millisecond, SetupTimeout, func() (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, Node, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
}

// PIDs are the processes the cluster runs: kwokctl's components and KEDA's.
func (c *Cluster) PIDs() map[string]int {
	pids := map[string]int{}
	maps.Copy(pids, c.kwokPIDs)
	for _, p := range c.procs {
		pids[p.name] = p.Cmd.Process.Pid
	}
	return pids
}

// Stop stops KEDA's processes, copies every log to Options.LogDir, deletes
// the kwok cluster and checks by PID that none of its processes is left,
// killing any that is. It may be called more than once.
func (c *Cluster) Stop() error {
	if c == nil || c.stopped {
		return nil
	}
	c.stopped = true
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].Stop(10 * time.Second)
	}
	if c.created && c.kwokPIDs == nil {
		c.readKwokPIDs()
	}
	if c.opts.LogDir != "" {
		errs = append(errs, copyLogs(c.opts.LogDir, c.logDir, filepath.Join(c.clusterDir, "logs")))
	}
	if c.created {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		var out bytes.Buffer
		if err := c.kwokctl(ctx, &out, "delete", "cluster", "--kubeconfig", filepath.Join(c.opts.WorkDir, "kwokctl-kubeconfig.yaml")); err != nil {
			errs = append(errs, fmt.Errorf("kwokctl delete cluster: %w\n%s", err, out.String()))
		}
		cancel()
		// kwokctl delete signals its components and returns; kube-apiserver's
		// graceful shutdown can outlast it by seconds. Give each a deadline,
		// then kill it: what matters is that nothing is left running.
		for name, pid := range c.kwokPIDs {
			_ = localproc.PollContext(context.Background(), 200*time.Millisecond, 20*time.Second, func() (bool, error) { return !Alive(pid), nil })
			if Alive(pid) {
				c.opts.Logf("localcluster: %s (pid %d) still running 20s after kwokctl delete cluster: killing it", name, pid)
				if err := killPID(pid, 5*time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// copyLogs copies the *.log files of the dirs into dst.
func copyLogs(dst string, dirs ...string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err == nil {
				err = os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tail returns the last lines of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// SetupTimeout bounds a wait for the cluster's own machinery (CRDs
// Established, the kwok node Ready, a namespace's default ServiceAccount):
// fast alone, over 30 s with a dozen control planes on 2 cores in CI.
const SetupTimeout = 2 * time.Minute
