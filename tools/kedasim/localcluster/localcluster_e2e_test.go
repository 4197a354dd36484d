//go:build e2e

package localcluster_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/tools/kedasim/localcluster"
	"github.com/keda-eks-samples/workloads/tools/kedasim/scalemath"
)

// startCluster starts the local cluster for t, stops it in t.Cleanup and
// then checks by PID that none of its processes is left. Logs go to
// $LOCALCLUSTER_LOG_DIR (make e2e: bin/e2e-logs/<test>) or the test's temp dir.
func startCluster(t *testing.T, ctx context.Context) *localcluster.Cluster {
	t.Helper()
	bins, err := localcluster.BinsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(t.TempDir(), "logs")
	if d := os.Getenv("LOCALCLUSTER_LOG_DIR"); d != "" {
		logDir = filepath.Join(d, t.Name())
	}
	start := time.Now()
	c, err := localcluster.Start(ctx, localcluster.Options{
		Bins:    bins,
		WorkDir: t.TempDir(),
		LogDir:  logDir,
		Logf:    t.Logf,
		// No process runner here: kwok marks the pods Ready itself.
		PodStages: true,
	})
	if err != nil {
		t.Fatalf("start: %v (logs in %s)", err, logDir)
	}
	t.Logf("cluster up in %s, KEDA up in %s more, %s in all (logs: %s)",
		c.ClusterReady.Round(time.Millisecond), c.KEDAReady.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), logDir)
	t.Cleanup(func() {
		pids := c.PIDs()
		start := time.Now()
		if err := c.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
		for name, pid := range pids {
			if localcluster.Alive(pid) {
				t.Errorf("%s (pid %d) still running after Stop", name, pid)
			}
		}
	})
	return c
}

// TestHPAScalesDeploymentOnMetricsAPIValue runs the whole chain on real
// components: a metrics-api trigger reads V from a loopback HTTP server, the
// KEDA operator computes the metric, our adapter serves it through the
// aggregated external metrics API, and the real HPA controller sets the
// Deployment to ceil(V/target) (AverageValue) — then follows V up and down.
func TestHPAScalesDeploymentOnMetricsAPIValue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c := startCluster(t, ctx)
	assertLoopbackOnly(t, c.PIDs())

	var value atomic.Int64
	value.Store(7)
	metric := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"value": %d}`, value.Load())
	}))
	defer metric.Close()

	client := kubernetes.NewForConfigOrDie(c.Config)
	dyn := dynamic.NewForConfigOrDie(c.Config)
	const ns, name, target = "e2e", "app", 2
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dep := kwokDeployment(ns, name, 1)
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"scaleTargetRef":  map[string]any{"name": name},
			"pollingInterval": int64(1),
			"minReplicaCount": int64(1),
			"maxReplicaCount": int64(20),
			"advanced": map[string]any{"horizontalPodAutoscalerConfig": map[string]any{
				// The default scale-down window is 300 s; the test follows V both ways.
				"behavior": map[string]any{
					"scaleDown": map[string]any{"stabilizationWindowSeconds": int64(0), "policies": []any{
						map[string]any{"type": "Percent", "value": int64(100), "periodSeconds": int64(1)}}},
					"scaleUp": map[string]any{"stabilizationWindowSeconds": int64(0), "policies": []any{
						map[string]any{"type": "Pods", "value": int64(20), "periodSeconds": int64(1)}}},
				},
			}},
			"triggers": []any{map[string]any{
				"type":       "metrics-api",
				"metricType": "AverageValue",
				"metadata": map[string]any{
					"url":           metric.URL + "/metric",
					"format":        "json",
					"valueLocation": "value",
					"targetValue":   strconv.Itoa(target),
				},
			}},
		},
	}}
	soGVR := schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}
	start := time.Now()
	if _, err := dyn.Resource(soGVR).Namespace(ns).Create(ctx, so, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, v := range []int64{7, 15, 3} {
		value.Store(v)
		want := int32((v + target - 1) / target)
		stepStart := time.Now()
		waitReplicas(t, ctx, client, ns, name, want, 3*time.Minute)
		t.Logf("V=%d target=%d: %d ready replicas after %s", v, target, want, time.Since(stepStart).Round(100*time.Millisecond))
	}
	t.Logf("ScaledObject created → three scale steps done in %s", time.Since(start).Round(100*time.Millisecond))

	hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "keda-hpa-"+name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("KEDA's HPA: %v", err)
	}
	if got := hpa.Spec.Metrics[0].External.Target.Type; got != "AverageValue" {
		t.Errorf("HPA metric target type %s, want AverageValue", got)
	}
}

// kwokDeployment is a Deployment of replicas pods on kwok's fake node
// (kwok marks them Running and Ready; no image is pulled).
func kwokDeployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// No scheduler: the pod names kwok's node and tolerates its taint.
					NodeName:    localcluster.Node,
					Tolerations: []corev1.Toleration{localcluster.NodeToleration},
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  name,
						Image: "example.invalid/app:e2e", // kwok pulls nothing
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
}

// waitReplicas waits until the Deployment wants and has want ready replicas
// (kwok turns pods Running and Ready) and the HPA agrees.
func waitReplicas(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, name string, want int32, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = fmt.Sprintf("spec %d, ready %d", *d.Spec.Replicas, d.Status.ReadyReplicas)
			if *d.Spec.Replicas == want && d.Status.ReadyReplicas == want && d.Status.Replicas == want {
				if h, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "keda-hpa-"+name, metav1.GetOptions{}); err == nil && h.Status.DesiredReplicas == want {
					return
				}
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %d replicas: %v (last: %s)", want, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
	h, _ := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "keda-hpa-"+name, metav1.GetOptions{})
	t.Fatalf("deployment %s/%s: want %d replicas within %s; last: %s; HPA status: %+v", ns, name, want, timeout, last, h.Status)
}

// assertLoopbackOnly checks that every TCP socket the cluster's processes
// listen on is bound to 127.0.0.1 (/proc/<pid>/fd and /proc/net/tcp{,6}).
func assertLoopbackOnly(t *testing.T, pids map[string]int) {
	t.Helper()
	owner := map[string]string{} // socket inode → process name
	for name, pid := range pids {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Errorf("%s (pid %d): %v", name, pid, err)
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && strings.HasPrefix(link, "socket:[") {
				owner[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = name
			}
		}
	}
	listeners := 0
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			name, ok := owner[f[9]]
			if !ok {
				continue
			}
			listeners++
			addr := f[1] // hex ip:port, 127.0.0.1 is 0100007F
			if !strings.HasPrefix(addr, "0100007F:") {
				port, _ := strconv.ParseInt(addr[strings.IndexByte(addr, ':')+1:], 16, 32)
				t.Errorf("%s listens on %s (port %d) in %s, not 127.0.0.1", name, addr, port, file)
			}
		}
	}
	t.Logf("%d listening TCP sockets of %d processes checked for 127.0.0.1", listeners, len(pids))
	if listeners == 0 {
		t.Error("found no listening socket of the cluster's processes")
	}
}

// TestStartFailureLeavesNothingRunning: when KEDA's operator dies at start,
// Start reports it with the operator's output and stops what it had started:
// no process mentioning the cluster's work dir is left.
func TestStartFailureLeavesNothingRunning(t *testing.T) {
	bins, err := localcluster.BinsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	bins.KEDAOperator = filepath.Join(work, "broken-operator")
	if err := os.WriteFile(bins.KEDAOperator, []byte("#!/bin/sh\necho operator cannot start >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := localcluster.Start(ctx, localcluster.Options{Bins: bins, WorkDir: work, Logf: t.Logf})
	if err == nil {
		c.Stop()
		t.Fatal("Start succeeded with an operator that exits at once")
	}
	if !strings.Contains(err.Error(), "keda-operator") || !strings.Contains(err.Error(), "operator cannot start") {
		t.Errorf("error does not name the operator and show its output: %v", err)
	}
	if left := processesMentioning(t, work); len(left) > 0 {
		t.Errorf("processes left after a failed Start: %v", left)
	}
}

// processesMentioning lists the processes whose command line contains s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	var found []string
	for pid, cmd := range localcluster.Processes(func(cmdline, _ []string) bool {
		return strings.Contains(strings.Join(cmdline, " "), s)
	}) {
		found = append(found, fmt.Sprintf("%d: %s", pid, cmd))
	}
	return found
}

// hpaSync is the HPA controller's sync period on the local cluster:
// localcluster.Options.HPASyncPeriod's default, which startCluster keeps.
// (Production's default is 15 s; only the timing below scales with it.)
const hpaSync = 5 * time.Second

// holdSyncs is how long a count must hold after the HPA read a value: three
// syncs and a half, so that at least three syncs fall in it wherever the
// read fell in a sync period.
const holdSyncs = 3*hpaSync + hpaSync/2

// TestHPAModelMatchesTheRealController checks the repo's model of the HPA
// controller against the real kube-controller-manager, fed scripted metric
// values through KEDA's metrics-api scaler, operator and adapter: one
// recommendation (scalemath.HPADesired, then Clamp to the HPA's min..max)
// and the scale-down stabilization window ("the highest recommendation of
// the last W seconds").
//
// AverageValue and Value run with both stabilization windows at 0 and
// policies that never bind (+20 pods or -100 % per second), so that the
// Deployment follows each recommendation as the controller makes it. At
// each step the metric changes and is held; the model, from the count
// current at that moment, gives one count per HPA sync until its
// recommendation keeps the count, and that must be exactly what the watched
// Deployment did. The count must then hold for holdSyncs after the HPA
// has read the value: a count kept inside the 10 % tolerance is kept by the
// tolerance, not by a sync still to come.
//
// ScaleDownWindowOutlastsTheDip runs the shipped behavior
// (deploy/kustomize/components/hpa-behavior) with its scale-down window
// shortened for test time; see dipScenario.
//
// The three subtests share one cluster and run in parallel (make e2e passes
// -parallel 12; with go test's default, GOMAXPROCS, two may wait for each
// other on a 2-core machine).
func TestHPAModelMatchesTheRealController(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	// Not defer: the parallel subtests run after this function has returned.
	t.Cleanup(cancel)
	c := startCluster(t, ctx)
	assertLoopbackOnly(t, c.PIDs())
	env := &hpaEnv{
		client:  kubernetes.NewForConfigOrDie(c.Config),
		dyn:     dynamic.NewForConfigOrDie(c.Config),
		ns:      "hpa-model",
		metrics: newScriptedMetrics(t),
	}
	if _, err := env.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: env.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Both windows 0 and policies that never bind: every recommendation is
	// applied as the controller makes it (the shipped behavior holds
	// scale-down for 300 s; the third subtest is about that).
	direct := map[string]any{
		"scaleDown": map[string]any{"stabilizationWindowSeconds": int64(0), "policies": []any{
			map[string]any{"type": "Percent", "value": int64(100), "periodSeconds": int64(1)}}},
		"scaleUp": map[string]any{"stabilizationWindowSeconds": int64(0), "policies": []any{
			map[string]any{"type": "Pods", "value": int64(20), "periodSeconds": int64(1)}}},
	}
	// The values are exact in binary and in the milli-units KEDA hands the
	// HPA (int64(V*1000)), so model and controller divide the same numbers.
	t.Run("AverageValue", func(t *testing.T) {
		t.Parallel()
		// Target 2 per pod, from 1 replica: 16 → 8; 17 is 6.25 % over 8x2,
		// inside the tolerance (keeps 8, ceil would give 9); 18.5 → 10; 18.25
		// is 8.75 % under 10x2 (keeps 10); 9, the dip right after a
		// scale-out, drops to 5 with no window; 17.75 → 9 (8.875), which
		// 17.75 then keeps (1.4 % under 9x2); 5 → 3.
		env.modelSteps(t, ctx, "avg", autoscalingv2.AverageValueMetricType, 2, direct,
			[]float64{16, 17, 18.5, 18.25, 9, 17.75, 5})
	})
	t.Run("Value", func(t *testing.T) {
		t.Parallel()
		// Target 10 in all: desired = ceil(V/10 x current) at every sync
		// for as long as V is held, so a value outside the tolerance runs to
		// a clamp or to a fixed point of the ceil. From 1 replica: 10.5
		// keeps 1; 25 → 3 → 8 → 20 (max); 9.25 keeps 20; 7 → 14 → 10 → 7 →
		// 5 → 4 → 3, where ceil(0.7x3) = 3 holds it; 10.75 keeps 3; 3 → 1.
		env.modelSteps(t, ctx, "val", autoscalingv2.ValueMetricType, 10, direct,
			[]float64{10.5, 25, 9.25, 7, 10.75, 3})
	})
	t.Run("ScaleDownWindowOutlastsTheDip", func(t *testing.T) {
		t.Parallel()
		env.dipScenario(t, ctx)
	})
}

// hpaEnv is what the workloads of TestHPAModelMatchesTheRealController share.
type hpaEnv struct {
	client  kubernetes.Interface
	dyn     dynamic.Interface
	ns      string
	metrics *scriptedMetrics
}

// workload is one kwok Deployment scaled by one ScaledObject whose
// metrics-api trigger reads a scripted value, and the HPA KEDA made for it.
type workload struct {
	env      *hpaEnv
	name     string
	target   autoscalingv2.MetricTarget // the HPA's, as the controller reads it
	min, max int32
	log      *replicaLog
}

// newWorkload creates the Deployment (one replica, Ready) and the
// ScaledObject, and returns once KEDA's HPA exists; the metric starts at a
// value that keeps one replica (target x 1 for both target types).
func (e *hpaEnv) newWorkload(t *testing.T, ctx context.Context, name string, typ autoscalingv2.MetricTargetType, target float64, behavior map[string]any) *workload {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	w := &workload{env: e, name: name, log: watchReplicas(wctx, e.client, e.ns, name)}
	e.metrics.set(name, target)
	if _, err := e.client.AppsV1().Deployments(e.ns).Create(ctx, kwokDeployment(e.ns, name, 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := localproc.PollContext(ctx, 200*time.Millisecond, time.Minute, func() (bool, error) {
		d, err := e.client.AppsV1().Deployments(e.ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 1, nil
	}); err != nil {
		t.Fatalf("deployment %s: one ready replica: %v", name, err)
	}
	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": name, "namespace": e.ns},
		"spec": map[string]any{
			"scaleTargetRef":  map[string]any{"name": name},
			"pollingInterval": int64(1),
			"minReplicaCount": int64(1),
			"maxReplicaCount": int64(20),
			"advanced":        map[string]any{"horizontalPodAutoscalerConfig": map[string]any{"behavior": behavior}},
			"triggers": []any{map[string]any{
				"type":       "metrics-api",
				"metricType": string(typ),
				"metadata": map[string]any{
					"url":           e.metrics.url(name),
					"format":        "json",
					"valueLocation": "value",
					"targetValue":   strconv.FormatFloat(target, 'f', -1, 64),
				},
			}},
		},
	}}
	soGVR := schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}
	if _, err := e.dyn.Resource(soGVR).Namespace(e.ns).Create(ctx, so, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var h *autoscalingv2.HorizontalPodAutoscaler
	if err := localproc.PollContext(ctx, 200*time.Millisecond, time.Minute, func() (bool, error) {
		got, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(e.ns).Get(ctx, "keda-hpa-"+name, metav1.GetOptions{})
		h = got
		return err == nil, nil
	}); err != nil {
		t.Fatalf("KEDA's HPA for %s: %v", name, err)
	}
	if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].External == nil || h.Spec.Metrics[0].External.Target.Type != typ {
		t.Fatalf("HPA %s: want one External metric with a %s target, got %+v", h.Name, typ, h.Spec.Metrics)
	}
	w.target = h.Spec.Metrics[0].External.Target
	w.min, w.max = ptr.Deref(h.Spec.MinReplicas, 1), h.Spec.MaxReplicas
	b := h.Spec.Behavior
	if b == nil || b.ScaleUp == nil || b.ScaleDown == nil {
		t.Fatalf("HPA %s has no scale-up and scale-down behavior: %+v", h.Name, b)
	}
	t.Logf("HPA %s: %s target %s, replicas %d..%d, stabilization windows: scale-up %ds, scale-down %ds",
		h.Name, typ, scalemath.TargetString(w.target), w.min, w.max,
		ptr.Deref(b.ScaleUp.StabilizationWindowSeconds, -1), ptr.Deref(b.ScaleDown.StabilizationWindowSeconds, -1))
	return w
}

// rec is the model's recommendation for metric value v at cur replicas.
func (w *workload) rec(v float64, cur int32) int32 {
	return scalemath.Clamp(scalemath.HPADesired(w.target, v, cur), w.min, w.max)
}

// modelSequence is the model's counts, one per HPA sync, from cur with the
// metric held at v, until its recommendation keeps the count.
func (w *workload) modelSequence(v float64, cur int32) []int32 {
	var seq []int32
	for range 100 {
		next := w.rec(v, cur)
		if next == cur {
			break
		}
		seq = append(seq, next)
		cur = next
	}
	return seq
}

// ratio is the usage ratio the tolerance is checked on, as the model has it.
func (w *workload) ratio(v float64, cur int32) float64 {
	if w.target.Type == autoscalingv2.AverageValueMetricType {
		return v / (w.target.AverageValue.AsApproximateFloat64() * float64(cur))
	}
	return v / w.target.Value.AsApproximateFloat64()
}

// replicas is the Deployment's spec.replicas now.
func (w *workload) replicas(t *testing.T, ctx context.Context) int32 {
	t.Helper()
	d, err := w.env.client.AppsV1().Deployments(w.env.ns).Get(ctx, w.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas
}

// hpa is KEDA's HPA for the workload now.
func (w *workload) hpa(ctx context.Context) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	return w.env.client.AutoscalingV2().HorizontalPodAutoscalers(w.env.ns).Get(ctx, "keda-hpa-"+w.name, metav1.GetOptions{})
}

// hpaSaw reports whether the HPA's status shows that its last sync read the
// metric value v: for Value the value itself, for AverageValue the per-pod
// average the controller writes, ceil(v / replicas) in milli-units.
func hpaSaw(h *autoscalingv2.HorizontalPodAutoscaler, typ autoscalingv2.MetricTargetType, v float64) bool {
	if h == nil || len(h.Status.CurrentMetrics) == 0 || h.Status.CurrentMetrics[0].External == nil {
		return false
	}
	cur := h.Status.CurrentMetrics[0].External.Current
	switch typ {
	case autoscalingv2.AverageValueMetricType:
		n := h.Status.CurrentReplicas
		return cur.AverageValue != nil && n > 0 && cur.AverageValue.MilliValue() == int64(math.Ceil(v*1000/float64(n)))
	case autoscalingv2.ValueMetricType:
		return cur.Value != nil && cur.Value.MilliValue() == int64(v*1000)
	}
	return false
}

// settle polls until the HPA has read the metric value v and the replica
// count — the Deployment's spec and ready pods, the HPA's current and
// desired — has not changed for hold since both that read and the
// Deployment's last change after since. It returns when the HPA first
// showed v.
func (w *workload) settle(ctx context.Context, v float64, since time.Time, hold, timeout time.Duration) (sawAt time.Time, err error) {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		now := time.Now()
		d, derr := w.env.client.AppsV1().Deployments(w.env.ns).Get(ctx, w.name, metav1.GetOptions{})
		h, herr := w.hpa(ctx)
		if derr == nil && herr == nil {
			saw := hpaSaw(h, w.target.Type, v)
			if saw && sawAt.IsZero() {
				sawAt = now
			}
			n := *d.Spec.Replicas
			quiet := sawAt
			if _, at := w.log.since(since); len(at) > 0 && at[len(at)-1].After(quiet) {
				quiet = at[len(at)-1]
			}
			last = fmt.Sprintf("deployment spec %d, replicas %d, ready %d; HPA current %d, desired %d, metric %s, read V=%g: %v",
				n, d.Status.Replicas, d.Status.ReadyReplicas, h.Status.CurrentReplicas, h.Status.DesiredReplicas, metricStatus(h), v, saw)
			if saw && n == d.Status.Replicas && n == d.Status.ReadyReplicas &&
				h.Status.CurrentReplicas == n && h.Status.DesiredReplicas == n && now.Sub(quiet) >= hold {
				return sawAt, nil
			}
		} else {
			last = fmt.Sprintf("deployment: %v; HPA: %v", derr, herr)
		}
		if now.After(deadline) {
			return sawAt, fmt.Errorf("not settled within %s; last: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return sawAt, fmt.Errorf("%w; last: %s", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// metricStatus is the HPA's last read of its metric, for messages.
func metricStatus(h *autoscalingv2.HorizontalPodAutoscaler) string {
	if len(h.Status.CurrentMetrics) == 0 || h.Status.CurrentMetrics[0].External == nil {
		return "none"
	}
	cur := h.Status.CurrentMetrics[0].External.Current
	switch {
	case cur.AverageValue != nil:
		return "average " + cur.AverageValue.String()
	case cur.Value != nil:
		return "value " + cur.Value.String()
	}
	return "?"
}

// modelSteps holds each value in turn until the real HPA has settled and
// compares the Deployment's replica sequence with the model's.
func (e *hpaEnv) modelSteps(t *testing.T, ctx context.Context, name string, typ autoscalingv2.MetricTargetType, target float64, behavior map[string]any, values []float64) {
	w := e.newWorkload(t, ctx, name, typ, target, behavior)
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "step\tV\tfrom\tratio\tin 10%%\tmodel\treal\tHPA read V after\tlast change after\tsettled after\n")
	defer func() {
		tw.Flush()
		t.Logf("%s target %s, model vs real (one count per HPA sync; then held %s, over 3 syncs, after the HPA read V and the last change):\n%s",
			typ, scalemath.TargetString(w.target), holdSyncs, table.String())
	}()
	for i, v := range values {
		cur := w.replicas(t, ctx)
		model := w.modelSequence(v, cur)
		ratio := w.ratio(v, cur)
		start := time.Now()
		e.metrics.set(name, v)
		sawAt, err := w.settle(ctx, v, start, holdSyncs, 45*time.Second+time.Duration(len(model))*2*hpaSync)
		went, at := w.log.since(start)
		lastChange := "-"
		if len(at) > 0 {
			lastChange = at[len(at)-1].Sub(start).Round(100 * time.Millisecond).String()
		}
		read := "never"
		if !sawAt.IsZero() {
			read = sawAt.Sub(start).Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%d\t%g\t%d\t%.4f\t%v\t%v\t%v\t%s\t%s\t%s\n", i+1, v, cur, ratio, math.Abs(ratio-1) <= scalemath.HPATolerance,
			model, went, read, lastChange, time.Since(start).Round(100*time.Millisecond))
		if err != nil {
			t.Fatalf("step %d, V=%g from %d replicas: %v; real sequence %v, model %v", i+1, v, cur, err, went, model)
		}
		if !slices.Equal(went, model) {
			t.Errorf("step %d, V=%g from %d replicas: the real HPA went %v, the model %v", i+1, v, cur, went, model)
		}
	}
}

// dipScenario: the shipped behavior with AverageValue target 2. The metric
// reads 16 (8 replicas), then dips to 9 — as a signal does right after a
// scale-out while the new pods' data are missing — for a time D shorter than
// the scale-down window W, then reads 16 again: the replicas must never drop
// below 8. A second dip is held until the replicas drop: that must happen W
// after the HPA's last recommendation of 8, and no sooner.
//
// The shipped window is 300 s; the test runs W = 60 s and D = 30 s. The
// stabilization is one rule on time — the count is the highest
// recommendation of the last W seconds — with no other constant in it, so
// what is shown for W and D holds for any W and D with the same relation
// (D plus two syncs, the HPA reading the dip up to one sync late and its
// last high recommendation up to one sync early, under W): the shipped 300 s
// at the default 15 s sync holds through any dip shorter than 270 s. The
// rest of the shipped behavior is used as shipped, and checked here: scale-up
// window 0 and +100 % or +4 pods per 15 s (the scale-out to 8 takes two
// periods: 1 → 5 → 8).
func (e *hpaEnv) dipScenario(t *testing.T, ctx context.Context) {
	const (
		window = 60 * time.Second
		dip    = 30 * time.Second
		name   = "dip"
		high   = 16.0
		low    = 9.0
	)
	shipped := shippedBehavior(t)
	up, down := shipped.ScaleUp, shipped.ScaleDown
	if up == nil || down == nil || ptr.Deref(up.StabilizationWindowSeconds, -1) != 0 || ptr.Deref(down.StabilizationWindowSeconds, -1) != 300 ||
		ptr.Deref(up.SelectPolicy, autoscalingv2.MaxChangePolicySelect) != autoscalingv2.MaxChangePolicySelect {
		t.Fatalf("the shipped behavior is no longer scale-up window 0 (selectPolicy Max), scale-down window 300 s: %+v; revisit this test", shipped)
	}
	for _, p := range up.Policies {
		if p.PeriodSeconds != up.Policies[0].PeriodSeconds {
			t.Fatalf("the shipped scale-up policies no longer share one period: %+v; revisit this test", up.Policies)
		}
	}
	b := shipped.DeepCopy()
	b.ScaleDown.StabilizationWindowSeconds = ptr.To(int32(window / time.Second))
	behavior, err := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if err != nil {
		t.Fatal(err)
	}
	w := e.newWorkload(t, ctx, name, autoscalingv2.AverageValueMetricType, 2, behavior)

	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "phase\tV\tmodel rec\tmodel count\treal\ttimes\n")
	defer func() {
		tw.Flush()
		t.Logf("shipped behavior, scale-down window W=%s (shipped 300s), sync %s, AverageValue target 2 — model vs real:\n%s", window, hpaSync, table.String())
	}()
	ago := func(from, to time.Time) string { return to.Sub(from).Round(100 * time.Millisecond).String() }

	// 1. Scale-out to 8 under the shipped scale-up policies.
	cur := w.replicas(t, ctx)
	var model []int32
	for n, r := cur, w.rec(high, cur); n < r; {
		n = min(r, upLimit(up, n))
		model = append(model, n)
	}
	start := time.Now()
	e.metrics.set(name, high)
	_, err = w.settle(ctx, high, start, holdSyncs, 2*time.Minute)
	went, at := w.log.since(start)
	period := time.Duration(up.Policies[0].PeriodSeconds) * time.Second
	var gaps []string
	for i := 1; i < len(at); i++ {
		gaps = append(gaps, ago(at[i-1], at[i]))
	}
	fmt.Fprintf(tw, "scale-out\t%g\t%d\t%v (one step per %s period)\t%v\tsteps %v apart\n", high, w.rec(high, cur), model, period, went, gaps)
	if err != nil {
		t.Fatalf("scale-out: %v; real %v, model %v", err, went, model)
	}
	if !slices.Equal(went, model) {
		t.Errorf("scale-out under the shipped policies: real %v, model %v", went, model)
	}
	for i := 1; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d < period-500*time.Millisecond {
			t.Errorf("scale-out steps %d → %d came %s apart, under the %s policy period", went[i-1], went[i], d, period)
		}
	}
	held := w.replicas(t, ctx)
	recHigh, recLow := w.rec(high, held), w.rec(low, held)

	if held != recHigh {
		t.Fatalf("scale-out settled on %d replicas, the model on %d", held, recHigh)
	}

	// watchDip sets the low value and polls until stop, noting when the HPA
	// first read it (at the held count) and the AbleToScale reasons it gave.
	watchDip := func(stop func(set, now time.Time) bool) (set, saw time.Time, reasons []string) {
		set = time.Now()
		e.metrics.set(name, low)
		for now := set; !stop(set, now); now = time.Now() {
			if h, err := w.hpa(ctx); err == nil {
				if saw.IsZero() && h.Status.CurrentReplicas == held && hpaSaw(h, autoscalingv2.AverageValueMetricType, low) {
					saw = now
				}
				for _, c := range h.Status.Conditions {
					if c.Type == autoscalingv2.AbleToScale && !slices.Contains(reasons, c.Reason) {
						reasons = append(reasons, c.Reason)
					}
				}
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
		return set, saw, reasons
	}

	// 2. A dip of D < W, then the high value again. The model: the HPA's
	// last recommendation of 8 came at most one sync before it read the dip,
	// its last read of the dip at most one sync after the value came back;
	// while that span is under W, the window holds an 8 at every sync.
	set, saw, reasons := watchDip(func(set, now time.Time) bool { return now.Sub(set) >= dip })
	back := time.Now()
	e.metrics.set(name, high)
	sawBack, err := w.settle(ctx, high, back, hpaSync*3/2, time.Minute)
	went, at = w.log.since(set)
	if saw.IsZero() {
		t.Fatalf("the HPA never read the dip (V=%g) in %s", low, dip)
	}
	span := back.Sub(saw) + 2*hpaSync
	fmt.Fprintf(tw, "dip D=%s\t%g\t%d\t%d (an 8 within W at every sync: dip read %s + 2 syncs = %s < W)\t%s\tHPA read it %s after; AbleToScale %v\n",
		dip, low, recLow, recHigh, ago(saw, back), span.Round(100*time.Millisecond), countsOr(went, held), ago(set, saw), reasons)
	fmt.Fprintf(tw, "back\t%g\t%d\t%d\t%s\tHPA read it %s after\n", high, recHigh, recHigh, countsOr(went, held), readAfter(back, sawBack))
	if err != nil {
		t.Fatalf("back to V=%g after the dip: %v", high, err)
	}
	if span >= window {
		t.Fatalf("test design: the dip as read (%s + 2 syncs) is not under W=%s", ago(saw, back), window)
	}
	if len(went) > 0 {
		t.Errorf("a dip of %s under a %s window: the replicas went %v at %v after the dip started (the model holds %d)", dip, window, went, offsets(set, at), recHigh)
	}
	if !slices.Contains(reasons, "ScaleDownStabilized") {
		t.Errorf("during the dip the HPA's AbleToScale reasons were %v, not ScaleDownStabilized: it did not hold a lower recommendation", reasons)
	}

	// 3. The control: a dip held until the replicas drop. The model: the
	// count becomes the low recommendation at the first sync at least W
	// after the last recommendation of 8, which came one sync before the HPA
	// first read the dip — between W - 1 sync and W after that read.
	set, saw, reasons = watchDip(func(set, now time.Time) bool {
		vals, _ := w.log.since(set)
		return len(vals) > 0 || now.Sub(set) > window+3*hpaSync+15*time.Second
	})
	_, err = w.settle(ctx, low, set, hpaSync*3/2, time.Minute)
	went, at = w.log.since(set)
	if saw.IsZero() || len(at) == 0 {
		fmt.Fprintf(tw, "dip > W\t%g\t%d\t%d after W\t%v\tHPA read it: %v\n", low, recLow, recLow, went, !saw.IsZero())
		t.Fatalf("control dip: the HPA read it: %v; the replicas went %v within %s (settle: %v)", !saw.IsZero(), went, window+3*hpaSync+15*time.Second, err)
	}
	dropped := at[0].Sub(saw)
	fmt.Fprintf(tw, "dip > W\t%g\t%d\t%d, then %d at read+[%s, %s]\t%d, then %v at read+%s\tHPA read it %s after; AbleToScale %v\n",
		low, recLow, recHigh, recLow, window-hpaSync, window, held, went, dropped.Round(100*time.Millisecond), ago(set, saw), reasons)
	if err != nil {
		t.Fatalf("control dip: %v", err)
	}
	if !slices.Equal(went, []int32{recLow}) {
		t.Errorf("control dip: the replicas went %v, the model %v", went, []int32{recLow})
	}
	if dropped < window-hpaSync-time.Second || dropped > window+2*time.Second {
		t.Errorf("control dip: the replicas dropped %s after the HPA read the dip; the model: between %s and %s", dropped, window-hpaSync, window)
	}

	// 4. Back to the high value: the scale-up window is 0, nothing holds it.
	cur = w.replicas(t, ctx)
	model = nil
	for n, r := cur, w.rec(high, cur); n < r; {
		n = min(r, upLimit(up, n))
		model = append(model, n)
	}
	start = time.Now()
	e.metrics.set(name, high)
	_, err = w.settle(ctx, high, start, hpaSync*3/2, time.Minute)
	went, at = w.log.since(start)
	fmt.Fprintf(tw, "up again\t%g\t%d\t%v\t%v\tat %v after the value\n", high, w.rec(high, cur), model, went, offsets(start, at))
	if err != nil {
		t.Fatalf("up again: %v", err)
	}
	if !slices.Equal(went, model) {
		t.Errorf("up again from %d: real %v, model %v", cur, went, model)
	}
	if len(at) > 0 && at[len(at)-1].Sub(start) > 2*hpaSync+2*time.Second {
		t.Errorf("up again took %s: more than a sync or two, as if a window held it", at[len(at)-1].Sub(start))
	}
}

// countsOr is the counts a Deployment went through, or "n throughout".
func countsOr(counts []int32, n int32) string {
	if len(counts) == 0 {
		return fmt.Sprintf("%d throughout", n)
	}
	return fmt.Sprint(counts)
}

// readAfter is how long after start the HPA read a value.
func readAfter(start, saw time.Time) string {
	if saw.IsZero() {
		return "never"
	}
	return saw.Sub(start).Round(100 * time.Millisecond).String()
}

// offsets are times as durations after start.
func offsets(start time.Time, at []time.Time) []string {
	var out []string
	for _, a := range at {
		out = append(out, a.Sub(start).Round(100*time.Millisecond).String())
	}
	return out
}

// upLimit is the most replicas the scale-up policies allow in a period that
// starts at n (selectPolicy Max: the largest of the policies' limits), as
// the controller computes them: Percent ceil(n x (1 + p/100)), Pods n + p.
func upLimit(rules *autoscalingv2.HPAScalingRules, n int32) int32 {
	limit := n
	for _, p := range rules.Policies {
		switch p.Type {
		case autoscalingv2.PercentScalingPolicy:
			limit = max(limit, int32(math.Ceil(float64(n)*(1+float64(p.Value)/100))))
		case autoscalingv2.PodsScalingPolicy:
			limit = max(limit, n+p.Value)
		}
	}
	return limit
}

// shippedBehavior is the HPA behavior of the hpa-behavior component.
func shippedBehavior(t *testing.T) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	t.Helper()
	path := filepath.Join("..", "..", "..", "deploy", "kustomize", "components", "hpa-behavior", "behavior.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var so kedav1alpha1.ScaledObject
	if err := yaml.UnmarshalStrict(raw, &so); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if so.Spec.Advanced == nil || so.Spec.Advanced.HorizontalPodAutoscalerConfig == nil || so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior == nil {
		t.Fatalf("%s: no spec.advanced.horizontalPodAutoscalerConfig.behavior", path)
	}
	return so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior
}

// scriptedMetrics serves one scripted value per workload as metrics-api
// JSON, {"value": V}, on 127.0.0.1.
type scriptedMetrics struct {
	srv    *httptest.Server
	mu     sync.Mutex
	values map[string]float64
}

func newScriptedMetrics(t *testing.T) *scriptedMetrics {
	m := &scriptedMetrics{values: map[string]float64{}}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		v, ok := m.values[strings.TrimPrefix(r.URL.Path, "/")]
		m.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"value": %s}`, strconv.FormatFloat(v, 'f', -1, 64))
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *scriptedMetrics) set(name string, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[name] = v
}

func (m *scriptedMetrics) url(name string) string { return m.srv.URL + "/" + name }

// replicaLog is every spec.replicas a Deployment took, with when the watch
// delivered it: a count cannot change and change back between two polls
// unseen.
type replicaLog struct {
	mu     sync.Mutex
	counts []int32
	at     []time.Time
}

// since is the counts the Deployment took after t, and when.
func (l *replicaLog) since(t time.Time) ([]int32, []time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var counts []int32
	var at []time.Time
	for i := range l.counts {
		if l.at[i].After(t) {
			counts, at = append(counts, l.counts[i]), append(at, l.at[i])
		}
	}
	return counts, at
}

func (l *replicaLog) add(n int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.counts) == 0 || l.counts[len(l.counts)-1] != n {
		l.counts, l.at = append(l.counts, n), append(l.at, time.Now())
	}
}

// watchReplicas logs the Deployment's spec.replicas from a watch until ctx
// ends, watching again (from the last resource version seen, or afresh
// after an error event) whenever the server closes the watch.
func watchReplicas(ctx context.Context, client kubernetes.Interface, ns, name string) *replicaLog {
	l := &replicaLog{}
	go func() {
		rv := ""
		for ctx.Err() == nil {
			wi, err := client.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: rv})
			if err != nil {
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
			for ev := range wi.ResultChan() {
				if d, ok := ev.Object.(*appsv1.Deployment); ok {
					rv = d.ResourceVersion
					l.add(*d.Spec.Replicas)
				} else if ev.Type == watch.Error {
					rv = ""
				}
			}
			wi.Stop()
		}
	}()
	return l
}
