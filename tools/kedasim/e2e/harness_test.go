//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/internal/localoverlay"
	"github.com/keda-eks-samples/workloads/tools/kedasim/localcluster"
	"github.com/keda-eks-samples/workloads/tools/kedasim/podrunner"
	"github.com/keda-eks-samples/workloads/tools/kedasim/timeline"
)

// namespace is the params file's NAMESPACE: the overlays put everything there.
const namespace = "keda-samples"

// env is one scenario's local world: the control plane with KEDA, the
// process runner on its node, and the paths the scenario needs.
type env struct {
	root    string // the repository
	out     string // bin/e2e/<test>: logs and the timeline page
	cluster *localcluster.Cluster
	client  kubernetes.Interface
	runner  *podrunner.Runner
	started time.Time

	mu         sync.Mutex
	firstScale time.Duration // from the load to the first scale-out; -1: none yet
	phases     []phase       // the scenario's loads, for the summary
	faults     []faultRow    // the faults it injected, for the summary
}

// addFault records one fault's outcome for the run's summary.
func (e *env) addFault(f faultRow) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, f)
}

// addPhase records one load's outcome for the run's summary.
func (e *env) addPhase(p phase) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.phases = append(e.phases, p)
}

// scaledOut records the time from since (the load's start; zero: not
// started) to now as the first scale-out, once.
func (e *env) scaledOut(since time.Time) {
	if !since.IsZero() {
		e.noteScale(time.Since(since))
	}
}

// noteScale records d as the time to the first scale-out, once.
func (e *env) noteScale(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.firstScale < 0 {
		e.firstScale = d
	}
}

// firstScaleOut is the time recorded (-1: no scale-out seen).
func (e *env) firstScaleOut() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.firstScale
}

// podNets hands each scenario its own pod address range, 127.<n>.x.y from
// n = 11 up, so scenarios run in parallel (t.Parallel) without sharing a
// pod address; podrunner's own tests use 127.2. Test-only state.
var podNets atomic.Int32

// images maps the local-e2e component's image names to the binaries
// `make build` and `make collector` put in bin/.
func images(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for image, bin := range map[string]string{
		"local/webapi":         "webapi",
		"local/sqsworker":      "sqsworker",
		"local/resultanalyzer": "resultanalyzer",
		"local/videoencoder":   "videoencoder",
		"local/producer":       "producer",
		"local/otel-collector": "otelcol",
	} {
		p := filepath.Join(root, "bin", bin)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s missing: run `make e2e` (it runs make build and make collector first)", p)
		}
		m[image] = p
	}
	return m
}

// start brings up the control plane with KEDA and the process runner; both
// stop (and save their logs under bin/e2e/<test>) when the test ends.
func start(t *testing.T, ctx context.Context) *env {
	t.Helper()
	root := svctest.RepoRoot(t)
	out := filepath.Join(root, "bin", "e2e", t.Name())
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	bins, err := localcluster.BinsFromEnv()
	if err != nil {
		t.Fatalf("%v (run `make e2e`, which builds them with `make cluster-bins`)", err)
	}
	e := &env{root: root, out: out, started: time.Now(), firstScale: -1}
	// Registered first, so it runs last: the whole run includes tearing
	// everything down.
	t.Cleanup(func() {
		e.mu.Lock()
		phases, faults := slices.Clone(e.phases), slices.Clone(e.faults)
		e.mu.Unlock()
		record(result{test: t.Name(), out: out, firstScale: e.firstScaleOut(), whole: time.Since(e.started), failed: t.Failed(), phases: phases, faults: faults})
	})
	e.cluster, err = startCluster(ctx, t, bins, filepath.Join(out, "cluster"))
	if err != nil {
		t.Fatalf("local control plane: %v", err)
	}
	if startClock, ok := ctx.Value(budgetClock{}).(func()); ok {
		startClock()
	}
	t.Cleanup(func() {
		if err := e.cluster.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	if e.client, err = kubernetes.NewForConfig(e.cluster.Config); err != nil {
		t.Fatal(err)
	}
	e.runner, err = podrunner.New(e.cluster.Config, podrunner.Options{
		NodeName: localcluster.Node,
		IPBase:   fmt.Sprintf("127.%d", 10+podNets.Add(1)),
		Env:      []string{marker()},
		Images:   images(t, root),
		LogDir:   filepath.Join(out, "pods"),
		Logf:     e.logTo(t, "runner.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Registered after the cluster's Stop, so it runs first: the pods'
	// processes get their SIGTERM while the apiserver still answers.
	t.Cleanup(e.runner.Stop)
	return e
}

// clusterStarts lets one control plane start at a time: the scenarios run
// in parallel, and seven control planes starting at once on two cores take
// long enough for the free ports each picked to be taken by another
// before it binds them. Test-only state.
var clusterStarts sync.Mutex

// startCluster starts a control plane with KEDA, one at a time, and once
// more if the first start fails (a failed start leaves nothing running:
// localcluster's TestStartFailureLeavesNothingRunning); a port another
// process took between its pick and its bind is the likely cause.
func startCluster(ctx context.Context, t *testing.T, bins localcluster.Bins, logDir string) (*localcluster.Cluster, error) {
	clusterStarts.Lock()
	defer clusterStarts.Unlock()
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		dir := logDir
		if attempt > 1 {
			dir += "-" + strconv.Itoa(attempt)
		}
		var c *localcluster.Cluster
		c, err = localcluster.Start(ctx, localcluster.Options{
			Bins:    bins,
			WorkDir: t.TempDir(),
			LogDir:  dir,
			Logf:    t.Logf,
		})
		if err == nil {
			return c, nil
		}
		t.Logf("local control plane, start %d of 2: %v", attempt, err)
	}
	return nil, err
}

// localValues is the local-e2e component's local.env with the run's
// endpoints set; keys not given keep the component's own (unused) value.
func (e *env) localValues(t *testing.T, set map[string]string) map[string]string {
	t.Helper()
	values, err := localoverlay.ReadEnv(filepath.Join(e.root, "deploy/kustomize/components/local-e2e", localoverlay.EnvFile))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if _, ok := values[k]; !ok {
			t.Fatalf("local-e2e has no value %s", k)
		}
		values[k] = v
	}
	return values
}

// apply renders overlay + local-e2e with values (+ the named components of
// deploy/kustomize/components, e.g. local-e2e-windows) and applies it with
// kubectl, as a user applies the shipped overlay.
func (e *env) apply(t *testing.T, ctx context.Context, overlay string, values map[string]string, components ...string) {
	t.Helper()
	var extra []string
	for _, c := range components {
		extra = append(extra, filepath.Join(e.root, "deploy/kustomize/components", c))
	}
	m, err := localoverlay.Render(t.TempDir(), filepath.Join(e.root, "deploy/kustomize/overlays", overlay),
		filepath.Join(e.root, "deploy/kustomize/components/local-e2e"), values, extra...)
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.out, overlay+".yaml"), manifests, 0o644); err != nil {
		t.Fatal(err)
	}
	// The Namespace first: objects applied in the same call can reach the
	// apiserver before its namespace informer has seen it (NotFound).
	var nsDocs [][]byte
	for _, r := range m.Resources() {
		if r.GetKind() == "Namespace" {
			b, err := r.AsYAML()
			if err != nil {
				t.Fatal(err)
			}
			nsDocs = append(nsDocs, b)
		}
	}
	e.kubectl(t, ctx, bytes.Join(nsDocs, []byte("---\n")), "apply", "--server-side", "-f", "-")
	// kube-controller-manager's serviceaccount controller makes "default".
	if err := localproc.PollContext(ctx, 200*time.Millisecond, localcluster.SetupTimeout, func() (bool, error) {
		_, err := e.client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("namespace %s with its default ServiceAccount: %v", namespace, err)
	}
	e.kubectl(t, ctx, manifests, "apply", "--server-side", "-f", "-")
}

// kubectl runs kubectl against the local cluster.
func (e *env) kubectl(t *testing.T, ctx context.Context, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", e.cluster.Kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sample records read() into tl every second until the returned stop is
// called; a nil result (the API did not answer) is skipped.
func (e *env) sample(ctx context.Context, tl *timeline.Timeline, read func() []float64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if v := read(); v != nil {
				tl.Add(v...)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		if v := read(); v != nil { // the state the scenario ended in
			tl.Add(v...)
		}
	}
}

// logTo returns a Logf that appends to file under the test's output
// directory (the process runner's per-pod lines would drown the test log).
func (e *env) logTo(t *testing.T, file string) func(string, ...any) {
	t.Helper()
	if err := os.MkdirAll(e.out, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(e.out, file))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	t.Cleanup(func() { mu.Lock(); defer mu.Unlock(); f.Close() })
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(f, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
}

// waitEndpoints waits until at least n pods matching selector are ready in
// the runner and returns their base URLs.
func (e *env) waitEndpoints(t *testing.T, ctx context.Context, selector string, n int, timeout time.Duration) []string {
	t.Helper()
	var urls []string
	err := localproc.PollContext(ctx, 250*time.Millisecond, timeout, func() (bool, error) {
		var err error
		urls, err = e.runner.Endpoints(namespace, selector)
		return len(urls) >= n, err
	})
	if err != nil {
		t.Fatalf("%d ready pods %s: %v (have %d)", n, selector, err, len(urls))
	}
	return urls
}

// waitHPA waits until the HPA KEDA creates for a ScaledObject exists and
// reads its metric (ScalingActive true).
func (e *env) waitHPA(t *testing.T, ctx context.Context, name string, timeout time.Duration) {
	t.Helper()
	var last string
	err := localproc.PollContext(ctx, 500*time.Millisecond, timeout, func() (bool, error) {
		hpa, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, c := range hpa.Status.Conditions {
			if c.Type == autoscalingv2.ScalingActive {
				last = c.Reason + ": " + c.Message
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("HPA %s reading its metric: %v (last: %s)", name, err, last)
	}
}

// waitReplicas polls a Deployment's spec.replicas until ok holds.
func (e *env) waitReplicas(t *testing.T, ctx context.Context, name string, timeout time.Duration, ok func(int32) bool) {
	t.Helper()
	var last int32 = -1
	err := localproc.PollContext(ctx, 500*time.Millisecond, timeout, func() (bool, error) {
		d, err := e.client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil || d.Spec.Replicas == nil {
			return false, nil
		}
		last = *d.Spec.Replicas
		return ok(last), nil
	})
	if err != nil {
		t.Fatalf("Deployment %s replicas: %v (last %d)", name, err, last)
	}
}

// post sends a JSON body and returns the status and response body.
func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// forward stands in for a Service's cluster IP (no kube-proxy or DNS here):
// it listens on a free loopback port and hands each connection to port of
// one of the ready pods matching selector, round robin (port 0: the pod's
// first container port). It returns its URL. At the end of the test it
// closes its listener and every connection it still carries.
func (e *env) forward(t *testing.T, selector string, port int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			urls, _ := e.runner.Endpoints(namespace, selector)
			if len(urls) == 0 {
				conn.Close() // like a Service without ready endpoints
				continue
			}
			target := strings.TrimPrefix(urls[n%len(urls)], "http://")
			if port != 0 {
				host, _, _ := net.SplitHostPort(target)
				target = net.JoinHostPort(host, strconv.Itoa(port))
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				track(conn, true)
				defer func() { track(conn, false); conn.Close() }()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				track(up, true)
				defer func() { track(up, false); up.Close() }()
				go func() { _, _ = io.Copy(up, conn); up.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(conn, up)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// budgetClock is the key of the scenario context's value that starts its
// budget's clock: start calls it once the control plane is up.
type budgetClock struct{}

// scenario runs t in parallel with the other scenarios and gives it a
// context that ends budget after its control plane is up, or when t
// returns. The wait for the one control-plane start at a time
// (clusterStarts) is not the scenario's: a scenario queued behind a dozen
// others waits ten minutes for it on two cores.
func scenario(t *testing.T, budget time.Duration) context.Context {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(t.Context())
	t.Cleanup(func() { cancel(nil) })
	startClock := sync.OnceFunc(func() {
		clock := time.AfterFunc(budget, func() { cancel(fmt.Errorf("the scenario's budget of %s is spent", budget)) })
		t.Cleanup(func() { clock.Stop() })
	})
	return context.WithValue(ctx, budgetClock{}, startClock)
}
