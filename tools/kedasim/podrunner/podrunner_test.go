package podrunner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// The test binary doubles as the pods' program: with PODRUNNER_HELPER=1 in
// its environment (which only a pod's env gives it) it runs helperMain.
func TestMain(m *testing.M) {
	if os.Getenv("PODRUNNER_HELPER") == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperMain: prints its environment, serves GET /readyz and /env on
// HOST:PORT when PORT is set (/readyz answers 503 while FAIL_FILE, when set,
// holds a count above 0, taking 1 off it; GET /probes is how many it has
// failed and passed, "failed passed"), writes "written" to DATA_FILE when set, exits
// EXIT_CODE after EXIT_AFTER when set, and on SIGTERM prints "got SIGTERM"
// and exits TERM_EXIT (default 0) unless IGNORE_TERM is set.
func helperMain() int {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("ENV %s=%s\n", k, env[k])
	}
	if f := env["DATA_FILE"]; f != "" {
		if err := os.WriteFile(f, []byte("written"), 0o644); err != nil {
			fmt.Println("data file:", err)
			return 1
		}
	}
	if port := env["PORT"]; port != "" {
		ln, err := net.Listen("tcp", net.JoinHostPort(env["HOST"], port))
		if err != nil {
			fmt.Println("listen:", err)
			return 1
		}
		mux := http.NewServeMux()
		var failed, passed atomic.Int64
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if b, err := os.ReadFile(env["FAIL_FILE"]); err == nil {
				if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n > 0 {
					_ = os.WriteFile(env["FAIL_FILE"], []byte(strconv.Itoa(n-1)), 0o644)
					failed.Add(1)
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
			}
			passed.Add(1)
			io.WriteString(w, "ok")
		})
		mux.HandleFunc("GET /probes", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, failed.Load(), passed.Load()) })
		mux.HandleFunc("GET /env", func(w http.ResponseWriter, _ *http.Request) { json.NewEncoder(w).Encode(env) })
		go http.Serve(ln, mux)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	fmt.Println("handling SIGTERM") // from here on a SIGTERM is seen, not fatal
	var exitAfter <-chan time.Time
	if d, err := time.ParseDuration(env["EXIT_AFTER"]); err == nil {
		exitAfter = time.After(d)
	}
	for {
		select {
		case <-sig:
			fmt.Println("got SIGTERM")
			if env["IGNORE_TERM"] != "" {
				continue
			}
			code, _ := strconv.Atoi(env["TERM_EXIT"])
			return code
		case <-exitAfter:
			code, _ := strconv.Atoi(env["EXIT_CODE"])
			return code
		}
	}
}

const (
	node  = "kwok-node"
	ns    = "e2e"
	image = "local/helper"
)

// start runs a Runner over a fake clientset holding objs.
func start(t *testing.T, objs ...*corev1.ConfigMap) (*Runner, *fake.Clientset, string) {
	t.Helper()
	c := fake.NewClientset()
	for _, o := range objs {
		if _, err := c.CoreV1().ConfigMaps(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	r, err := NewForClient(c, Options{
		NodeName: node, Images: map[string]string{image: self}, LogDir: logDir, Logf: t.Logf,
		// Not the default 127.1: a make e2e running beside these tests has
		// its pods there, on the same ports.
		IPBase: "127.2",
		Env:    []string{"RUN_MARKER=podrunner-test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(); cancel() })
	return r, c, logDir
}

func helperPod(name string, restart corev1.RestartPolicy, env ...corev1.EnvVar) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: k8stypes.UID("uid-" + name), Labels: map[string]string{"app": "helper"}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			RestartPolicy:                 restart,
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Containers: []corev1.Container{{
				Name:  "main",
				Image: image,
				Env:   append([]corev1.EnvVar{{Name: "PODRUNNER_HELPER", Value: "1"}}, env...),
			}},
		},
	}
}

func create(t *testing.T, c *fake.Clientset, p *corev1.Pod) {
	t.Helper()
	if _, err := c.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// poll calls cond until it is true or 20 s have passed.
func poll(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	if err := localproc.PollContext(t.Context(), 50*time.Millisecond, 20*time.Second, func() (ok bool, err error) {
		ok, last = cond()
		return ok, nil
	}); err != nil {
		t.Fatalf("%s: %v (last: %s)", what, err, last)
	}
}

func getPod(t *testing.T, c *fake.Clientset, name string) *corev1.Pod {
	t.Helper()
	p, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

func TestServingPodsGetTheirEnvOwnAddressReadinessAndSIGTERM(t *testing.T) {
	r, c, logDir := start(t, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns},
		Data:       map[string]string{"greeting": "hello"},
	})
	mk := func(name string) *corev1.Pod {
		p := helperPod(name, corev1.RestartPolicyAlways,
			corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			corev1.EnvVar{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			corev1.EnvVar{Name: "HOST", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			corev1.EnvVar{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			corev1.EnvVar{Name: "PORT", Value: "8080"},
			corev1.EnvVar{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "greeting"}}},
			corev1.EnvVar{Name: "ATTRS", Value: "service.instance.id=$(POD_NAME)"},
			corev1.EnvVar{Name: "DATA_FILE", Value: "/data/out.txt"},
		)
		ctr := &p.Spec.Containers[0]
		ctr.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
		ctr.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("http")}}}
		ctr.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		return p
	}
	create(t, c, mk("web-a"))
	create(t, c, mk("web-b"))
	other := mk("elsewhere")
	other.Spec.NodeName = "another-node"
	create(t, c, other)

	// Both pods listen on 8080, each on its own address, and are ready.
	var urls []string
	poll(t, "two ready endpoints", func() (bool, string) {
		var err error
		urls, err = r.Endpoints(ns, "app=helper")
		return err == nil && len(urls) == 2, fmt.Sprint(urls, err)
	})
	for _, name := range []string{"web-a", "web-b"} {
		ip := r.PodIP(ns, name)
		var env map[string]string
		if err := svctest.GetJSON("http://"+net.JoinHostPort(ip, "8080")+"/env", &env); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"POD_NAME": name, "POD_NAMESPACE": ns, "HOST": ip, "NODE": node, "PORT": "8080",
			"GREETING": "hello", "ATTRS": "service.instance.id=" + name, "HOSTNAME": name,
			"RUN_MARKER": "podrunner-test", // Options.Env
			"DATA_FILE":  filepath.Join(logDir, ns+"_"+name, "volumes", "data", "out.txt"),
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s: %s=%q, want %q", name, k, env[k], v)
			}
		}
		if b, err := os.ReadFile(want["DATA_FILE"]); err != nil || string(b) != "written" {
			t.Errorf("%s: emptyDir file: %q, %v", name, b, err)
		}
		if _, ok := env["AWS_ACCESS_KEY_ID"]; ok {
			t.Errorf("%s: the runner's own environment leaked into the pod", name)
		}
		// The status the endpoints controller and the HPA read.
		poll(t, name+" status", func() (bool, string) {
			p := getPod(t, c, name)
			if p == nil {
				return false, "no pod"
			}
			ready := false
			for _, cd := range p.Status.Conditions {
				if cd.Type == corev1.PodReady && cd.Status == corev1.ConditionTrue {
					ready = true
				}
			}
			ok := p.Status.Phase == corev1.PodRunning && p.Status.PodIP == ip && ready &&
				len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil
			return ok, fmt.Sprintf("%+v", p.Status)
		})
	}
	if r.PodIP(ns, "elsewhere") != "" {
		t.Error("ran a pod of another node")
	}
	if r.PodIP(ns, "web-a") == r.PodIP(ns, "web-b") {
		t.Error("two pods share an address")
	}

	// Deleting a pod sends its process SIGTERM and drops it from the endpoints.
	if err := c.CoreV1().Pods(ns).Delete(context.Background(), "web-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "SIGTERM in web-a's log", func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(logDir, ns+"_web-a_main.log"))
		return strings.Contains(string(b), "got SIGTERM"), string(b)
	})
	poll(t, "one endpoint left", func() (bool, string) {
		urls, err := r.Endpoints(ns, "app=helper")
		return err == nil && len(urls) == 1 && strings.Contains(urls[0], r.PodIP(ns, "web-b")), fmt.Sprint(urls, err)
	})
}

func TestJobPodsReportTheProcessExitCode(t *testing.T) {
	r, c, _ := start(t)
	job := func(p *corev1.Pod) *corev1.Pod {
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "j", UID: "job-uid", Controller: &yes}}
		return p
	}
	create(t, c, job(helperPod("fails", corev1.RestartPolicyNever,
		corev1.EnvVar{Name: "EXIT_AFTER", Value: "200ms"}, corev1.EnvVar{Name: "EXIT_CODE", Value: "65"})))
	create(t, c, job(helperPod("succeeds", corev1.RestartPolicyNever,
		corev1.EnvVar{Name: "EXIT_AFTER", Value: "200ms"}, corev1.EnvVar{Name: "EXIT_CODE", Value: "0"})))
	create(t, c, job(helperPod("killed", corev1.RestartPolicyNever, corev1.EnvVar{Name: "TERM_EXIT", Value: "143"})))

	terminated := func(name string, phase corev1.PodPhase, code int32, reason string) {
		t.Helper()
		poll(t, name+" terminal status", func() (bool, string) {
			p := getPod(t, c, name)
			if p == nil || len(p.Status.ContainerStatuses) != 1 {
				return false, "no status"
			}
			term := p.Status.ContainerStatuses[0].State.Terminated
			ok := p.Status.Phase == phase && term != nil && term.ExitCode == code && term.Reason == reason
			return ok, fmt.Sprintf("%+v", p.Status)
		})
	}
	terminated("fails", corev1.PodFailed, 65, "Error")
	terminated("succeeds", corev1.PodSucceeded, 0, "Completed")

	// A process killed mid-run (the e2e's "kill an encoder") reports the code
	// it exits with, which the Job's podFailurePolicy matches.
	poll(t, "killed is running", func() (bool, string) {
		p := getPod(t, c, "killed")
		return p != nil && p.Status.Phase == corev1.PodRunning, "not running"
	})
	if err := r.Signal(ns, "killed", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	terminated("killed", corev1.PodFailed, 143, "Error")
}

func TestDeletionEscalatesToSIGKILLAfterTheGracePeriod(t *testing.T) {
	r, c, logDir := start(t)
	p := helperPod("stubborn", corev1.RestartPolicyAlways, corev1.EnvVar{Name: "IGNORE_TERM", Value: "1"})
	p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
	create(t, c, p)
	poll(t, "stubborn is running and handles SIGTERM", func() (bool, string) {
		// Its handler first: a SIGTERM before it would end the process at
		// once (a loaded machine starts it slowly).
		b, _ := os.ReadFile(filepath.Join(logDir, ns+"_stubborn_main.log"))
		return r.PodIP(ns, "stubborn") != "" && getPod(t, c, "stubborn").Status.Phase == corev1.PodRunning &&
			strings.Contains(string(b), "handling SIGTERM"), "not running, or no handler yet"
	})
	if err := c.CoreV1().Pods(ns).Delete(context.Background(), "stubborn", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.Stop() // waits for the process: SIGTERM ignored, SIGKILL after 1 s
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("stopped after %v, before the 1 s grace period", d)
	}
	b, _ := os.ReadFile(filepath.Join(logDir, ns+"_stubborn_main.log"))
	if !strings.Contains(string(b), "got SIGTERM") {
		t.Errorf("no SIGTERM before the SIGKILL: %s", b)
	}
}

// A node that takes no pods of one kind: while held, an arriving pod that
// matches stays Pending with nothing started, others run; Release starts it,
// and a pod deleted meanwhile never runs.
func TestHeldPodsStayPendingUntilRelease(t *testing.T) {
	r, c, logDir := start(t)
	if err := r.Hold("app=helper"); err != nil {
		t.Fatal(err)
	}
	create(t, c, helperPod("held", corev1.RestartPolicyNever,
		corev1.EnvVar{Name: "EXIT_AFTER", Value: "100ms"}, corev1.EnvVar{Name: "EXIT_CODE", Value: "0"}))
	create(t, c, helperPod("gone", corev1.RestartPolicyNever))
	other := helperPod("other", corev1.RestartPolicyNever,
		corev1.EnvVar{Name: "EXIT_AFTER", Value: "100ms"}, corev1.EnvVar{Name: "EXIT_CODE", Value: "0"})
	other.Labels = map[string]string{"app": "other"}
	create(t, c, other)
	poll(t, "a pod the hold does not match runs", func() (bool, string) {
		p := getPod(t, c, "other")
		return p != nil && p.Status.Phase == corev1.PodSucceeded, "not succeeded"
	})
	observed := func(name string) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		_, ok := r.pods[k8stypes.UID("uid-"+name)]
		return ok
	}
	poll(t, "both pods seen", func() (bool, string) { return observed("held") && observed("gone"), "not yet" })
	if err := c.CoreV1().Pods(ns).Delete(context.Background(), "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the deletion seen", func() (bool, string) {
		r.mu.Lock()
		rp := r.pods[k8stypes.UID("uid-gone")]
		r.mu.Unlock()
		rp.mu.Lock()
		defer rp.mu.Unlock()
		return rp.gone, "not yet"
	})
	for _, name := range []string{"held", "gone"} {
		if p := getPod(t, c, name); p != nil && p.Status.Phase != "" {
			t.Errorf("%s while held: phase %q, want no status written", name, p.Status.Phase)
		}
	}
	r.Release()
	poll(t, "held runs once released", func() (bool, string) {
		p := getPod(t, c, "held")
		return p != nil && p.Status.Phase == corev1.PodSucceeded, "not succeeded"
	})
	if logs, _ := filepath.Glob(filepath.Join(logDir, ns+"_gone*")); len(logs) != 0 {
		t.Errorf("the pod deleted while held ran: %v", logs)
	}
}

// A ready pod keeps its endpoint through fewer failed readiness probes in a
// row than failureThreshold, and loses it at that many, as on a kubelet;
// it is back at the next success.
func TestReadinessFollowsTheProbesThresholds(t *testing.T) {
	r, c, _ := start(t)
	failFile := filepath.Join(t.TempDir(), "fail")
	p := helperPod("flaky", corev1.RestartPolicyAlways,
		corev1.EnvVar{Name: "HOST", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		corev1.EnvVar{Name: "PORT", Value: "8080"},
		corev1.EnvVar{Name: "FAIL_FILE", Value: failFile})
	ctr := &p.Spec.Containers[0]
	ctr.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	ctr.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("http")}},
		PeriodSeconds: 1, FailureThreshold: 3,
	}
	create(t, c, p)
	endpoints := func() int {
		urls, err := r.Endpoints(ns, "app=helper")
		if err != nil {
			t.Fatal(err)
		}
		return len(urls)
	}
	poll(t, "ready", func() (bool, string) { return endpoints() == 1, "no endpoint" })
	probes := func() (failed, passed int) {
		resp, err := http.Get("http://" + net.JoinHostPort(r.PodIP(ns, "flaky"), "8080") + "/probes")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := fmt.Fscan(resp.Body, &failed, &passed); err != nil {
			t.Fatal(err)
		}
		return failed, passed
	}

	// 2 failures in a row (threshold 3), then a success: the endpoint stays.
	if err := os.WriteFile(failFile, []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	var passed2 int
	poll(t, "2 failed probes, the endpoint kept", func() (bool, string) {
		failed, passed := probes()
		if endpoints() != 1 {
			t.Fatalf("the endpoint went after %d failed probes in a row, below failureThreshold 3", failed)
		}
		passed2 = passed
		return failed == 2, fmt.Sprint(failed, passed)
	})
	poll(t, "a passed probe after them", func() (bool, string) {
		failed, passed := probes()
		if endpoints() != 1 {
			t.Fatalf("the endpoint went after %d failed probes in a row, below failureThreshold 3", failed)
		}
		return passed > passed2, fmt.Sprint(failed, passed)
	})

	// 5 in a row: it goes at the third (never before), and is back at the
	// next success. (Endpoints are read before the count, which only
	// grows: an endpoint gone with fewer than 3 counted went too early.)
	if err := os.WriteFile(failFile, []byte("5"), 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, "unready after 3 failed probes", func() (bool, string) {
		gone := endpoints() == 0
		failed, _ := probes()
		if gone && failed-2 < 3 {
			t.Fatalf("the endpoint went after %d failed probes in a row, below failureThreshold 3", failed-2)
		}
		return gone, fmt.Sprint(failed - 2)
	})
	poll(t, "ready again", func() (bool, string) { return endpoints() == 1, "no endpoint" })
}
