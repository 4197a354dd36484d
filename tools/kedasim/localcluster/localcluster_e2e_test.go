//go:build e2e

package localcluster_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/keda-eks-samples/workloads/tools/kedasim/localcluster"
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
	labels := map[string]string{"app": name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
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
