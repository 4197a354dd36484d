package podrunner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// How often the runner looks at its pods, and probes an unready container's
// readiness (faster than any probe's periodSeconds would: the e2e wants
// endpoints as soon as they serve). A ready container is probed every
// periodSeconds, as the kubelet does.
const probeInterval = 500 * time.Millisecond

// pod is one pod this runner runs; its fields after spec change only under mu.
type pod struct {
	r    *Runner
	spec *corev1.Pod // as first seen
	ip   string
	dir  string // volumes

	stopOnce sync.Once
	stopCh   chan struct{}
	// held, if not nil, keeps the pod Pending (nothing started) until it is
	// closed: the runner was told to Hold when the pod arrived.
	held <-chan struct{}

	mu      sync.Mutex
	gone    bool // the pod object is gone: no more status writes
	ready   bool
	phase   corev1.PodPhase
	started time.Time
	procs   map[string]*proc // by container name, init containers too
	reason  string           // why the pod failed to start

	// readiness by container name; only the pod's own goroutine uses it.
	readiness map[string]*readiness
}

// readiness is one container's readiness probe as the kubelet keeps it
// (pkg/kubelet/prober/worker.go): while ready, a probe every periodSeconds,
// each given timeoutSeconds; unready only after failureThreshold failures
// in a row, and again when the container restarts. While unready the runner
// probes every 500 ms (endpoints as soon as the pod serves), and
// successThreshold successes in a row make it ready. So a pod keeps its
// endpoints through one slow probe on a busy machine, as on a real node.
type readiness struct {
	started             time.Time // the container run it belongs to
	ok                  bool
	last                time.Time // the last probe
	successes, failures int32     // in a row
}

// proc is one container's process (its latest run).
type proc struct {
	name     string
	image    string
	sidecar  bool // init container with restartPolicy Always
	init     bool
	cmd      *exec.Cmd
	done     chan struct{}
	exitCode int
	started  time.Time
	finished time.Time
	restarts int32
}

func newPod(r *Runner, spec *corev1.Pod, ip string, held <-chan struct{}) *pod {
	return &pod{
		r: r, spec: spec, ip: ip, stopCh: make(chan struct{}), held: held,
		dir:   filepath.Join(r.opts.LogDir, spec.Namespace+"_"+spec.Name),
		phase: corev1.PodPending, procs: map[string]*proc{}, readiness: map[string]*readiness{},
	}
}

// stop asks the pod's goroutine to terminate its processes; gone: the pod
// object no longer exists. It never blocks (called under Runner.mu).
func (p *pod) stop(gone bool) {
	if gone {
		p.mu.Lock()
		p.gone = true
		p.mu.Unlock()
	}
	p.stopOnce.Do(func() { close(p.stopCh) })
}

func (p *pod) ended(pr *proc) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !pr.finished.IsZero()
}

func (p *pod) isReady() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

func (p *pod) signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, pr := range p.procs {
		if pr.cmd != nil && pr.cmd.Process != nil && pr.finished.IsZero() {
			errs = append(errs, pr.cmd.Process.Signal(sig))
		}
	}
	return errors.Join(errs...)
}

func (p *pod) logf(format string, args ...any) {
	p.r.opts.Logf("podrunner: %s/%s: "+format, append([]any{p.spec.Namespace, p.spec.Name}, args...)...)
}

// restartAlways: the main containers run again when they end (Deployment
// pods); Job pods (Never, OnFailure) report their exit codes instead.
func (p *pod) restartAlways() bool {
	return p.spec.Spec.RestartPolicy == "" || p.spec.Spec.RestartPolicy == corev1.RestartPolicyAlways
}

// run is the pod's whole life: start, watch, stop, report.
func (p *pod) run(ctx context.Context) {
	if p.held != nil {
		p.logf("held Pending: the node takes no pods")
		select {
		case <-p.held:
		case <-p.stopCh:
			// Deleted before it ever started: nothing ran, nothing to report.
			p.mu.Lock()
			gone := p.gone
			p.mu.Unlock()
			if !gone && ctx.Err() == nil {
				p.deleteObject(ctx)
			}
			return
		}
	}
	p.started = time.Now()
	if err := p.startAll(ctx); err != nil {
		p.logf("cannot start: %v", err)
		p.mu.Lock()
		p.reason = err.Error()
		p.phase = corev1.PodFailed
		p.mu.Unlock()
		p.killAll(0)
		p.writeStatus(ctx)
		<-p.stopCh
		p.finish(ctx)
		return
	}
	p.mu.Lock()
	p.phase = corev1.PodRunning
	p.mu.Unlock()
	p.writeStatus(ctx)
	p.logf("running on %s", p.ip)

	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.stopCh:
			p.terminate()
			p.finish(ctx)
			return
		case <-tick.C:
		}
		changed := p.reapAndRestart(ctx)
		if p.probe(ctx) {
			changed = true
		}
		if changed {
			p.writeStatus(ctx)
		}
	}
}

// startAll resolves every container's environment and starts native
// sidecars, then runs ordinary init containers to completion, then starts
// the main containers.
func (p *pod) startAll(ctx context.Context) error {
	if err := p.makeVolumes(ctx); err != nil {
		return err
	}
	for _, c := range p.spec.Spec.InitContainers {
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		pr, err := p.startContainer(ctx, c, true, sidecar)
		if err != nil {
			return err
		}
		if sidecar {
			if c.StartupProbe != nil {
				// Like the kubelet: the next container starts once the
				// sidecar's startup probe passes.
				// No deadline of its own: the pod's end or ctx stops it.
				_ = localproc.PollContext(ctx, probeInterval, 24*time.Hour, func() (bool, error) {
					return p.probeOK(c, c.StartupProbe) || p.ended(pr), nil
				})
			}
			continue
		}
		<-pr.done
		if p.ended(pr) && pr.exitCode != 0 {
			return fmt.Errorf("init container %s exited %d", c.Name, pr.exitCode)
		}
	}
	for _, c := range p.spec.Spec.Containers {
		if _, err := p.startContainer(ctx, c, false, false); err != nil {
			return err
		}
	}
	return nil
}

func (p *pod) startContainer(ctx context.Context, c corev1.Container, init, sidecar bool) (*proc, error) {
	bin, ok := p.r.opts.Images[c.Image]
	if !ok {
		return nil, fmt.Errorf("container %s: no local binary for image %q", c.Name, c.Image)
	}
	env, err := p.resolveEnv(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = p.rewriteMounts(c, expand(a, env.vars))
	}
	logPath := filepath.Join(p.r.opts.LogDir, p.spec.Namespace+"_"+p.spec.Name+"_"+c.Name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append([]string{"HOSTNAME=" + p.spec.Name}, p.rewriteEnv(c, env.list())...), p.r.opts.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = p.dir
	// Its own process group: a Ctrl-C at the terminal reaches the test, not
	// the pods (they get SIGTERM from pod deletion or Stop).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("container %s: start %s: %w", c.Name, bin, err)
	}
	pr := &proc{name: c.Name, image: c.Image, init: init, sidecar: sidecar, cmd: cmd, done: make(chan struct{}), started: time.Now()}
	p.mu.Lock()
	if old, ok := p.procs[c.Name]; ok {
		pr.restarts = old.restarts + 1
	}
	p.procs[c.Name] = pr
	p.mu.Unlock()
	p.logf("container %s: started %s (pid %d), log %s", c.Name, filepath.Base(bin), cmd.Process.Pid, logPath)
	go func() {
		err := cmd.Wait()
		logFile.Close()
		code := 0
		if err != nil {
			code = -1
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					code = 128 + int(ws.Signal()) // as container runtimes report it
				}
			}
		}
		p.mu.Lock()
		pr.exitCode, pr.finished = code, time.Now()
		p.mu.Unlock()
		p.logf("container %s: exited %d", c.Name, code)
		close(pr.done)
	}()
	return pr, nil
}

// reapAndRestart handles main containers that ended: restartPolicy Always
// (and OnFailure after a failure) runs them again, like the kubelet without
// its back-off; otherwise, once every main container ended, the pod's phase
// becomes Succeeded or Failed and its sidecars are stopped. It reports
// whether the status changed.
func (p *pod) reapAndRestart(ctx context.Context) bool {
	p.mu.Lock()
	if p.phase != corev1.PodRunning {
		p.mu.Unlock()
		return false
	}
	var restart []corev1.Container
	allDone, anyFailed, changed := true, false, false
	for _, c := range p.spec.Spec.Containers {
		pr := p.procs[c.Name]
		if pr.finished.IsZero() {
			allDone = false
			continue
		}
		if pr.exitCode != 0 {
			anyFailed = true
		}
		if p.restartAlways() || (p.spec.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && pr.exitCode != 0) {
			restart = append(restart, c)
			allDone = false
		}
	}
	if allDone {
		p.phase = corev1.PodSucceeded
		if anyFailed {
			p.phase = corev1.PodFailed
		}
		p.ready = false
		changed = true
	}
	p.mu.Unlock()
	for _, c := range restart {
		if _, err := p.startContainer(ctx, c, false, false); err != nil {
			p.logf("restart %s: %v", c.Name, err)
		}
		changed = true
	}
	if allDone {
		p.logf("all containers ended")
		p.killSidecars()
	}
	return changed
}

// probe updates readiness: every main container running and ready by its
// readiness probe (no probe: running is ready). It reports a change. Only
// the pod's own goroutine calls it.
func (p *pod) probe(ctx context.Context) bool {
	p.mu.Lock()
	running := p.phase == corev1.PodRunning
	started := map[string]time.Time{}
	for _, c := range p.spec.Spec.Containers {
		pr := p.procs[c.Name]
		if pr == nil || !pr.finished.IsZero() {
			running = false
			continue
		}
		started[c.Name] = pr.started
	}
	p.mu.Unlock()
	ready := running
	if running {
		now := time.Now()
		for _, c := range p.spec.Spec.Containers {
			if c.ReadinessProbe != nil && !p.readyByProbe(c, started[c.Name], now) {
				ready = false
			}
		}
	}
	if ctx.Err() != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stopCh:
		return false // being deleted: terminate clears readiness, and a probe must not set it back
	default:
	}
	if ready == p.ready || p.phase != corev1.PodRunning {
		return false
	}
	p.ready = ready
	p.logf("ready=%v", ready)
	return true
}

// readyByProbe is container c's readiness at now, probing it if its
// probe is due (see readiness).
func (p *pod) readyByProbe(c corev1.Container, started, now time.Time) bool {
	pr := c.ReadinessProbe
	s := p.readiness[c.Name]
	if s == nil || !s.started.Equal(started) {
		s = &readiness{started: started}
		p.readiness[c.Name] = s
	}
	// Due within half a tick of the period, so the runner's 500 ms tick
	// does not stretch it.
	if s.ok && now.Sub(s.last) < seconds(pr.PeriodSeconds, 10)-probeInterval/2 {
		return true
	}
	if !s.ok && now.Sub(started) < seconds(pr.InitialDelaySeconds, 0) {
		return false
	}
	s.last = now
	if p.probeOK(c, pr) {
		s.failures, s.successes = 0, s.successes+1
		if s.successes >= threshold(pr.SuccessThreshold, 1) {
			s.ok = true
		}
	} else {
		s.successes, s.failures = 0, s.failures+1
		if s.failures >= threshold(pr.FailureThreshold, 3) {
			s.ok = false
		}
	}
	return s.ok
}

// seconds is a probe's field in seconds, def when unset (the API server
// sets the defaults on a real pod; a fake clientset does not).
func seconds(v, def int32) time.Duration {
	if v <= 0 {
		v = def
	}
	return time.Duration(v) * time.Second
}

// threshold is a probe's threshold, def when unset.
func threshold(v, def int32) int32 {
	if v <= 0 {
		return def
	}
	return v
}

// probeOK runs an httpGet probe against the pod IP (other probe kinds pass).
func (p *pod) probeOK(c corev1.Container, pr *corev1.Probe) bool {
	g := pr.HTTPGet
	if g == nil {
		return true
	}
	port := g.Port.IntValue()
	if g.Port.Type == intstr.String {
		for _, cp := range c.Ports {
			if cp.Name == g.Port.StrVal {
				port = int(cp.ContainerPort)
			}
		}
	}
	host := p.ip
	if g.Host != "" {
		host = g.Host
	}
	client := http.Client{Timeout: seconds(pr.TimeoutSeconds, 1)}
	resp, err := client.Get("http://" + net.JoinHostPort(host, fmt.Sprint(port)) + g.Path)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// terminate stops the pod like the kubelet on deletion: SIGTERM to the main
// containers, SIGKILL after the grace period, then the sidecars.
func (p *pod) terminate() {
	grace := 30 * time.Second
	if s := p.spec.Spec.TerminationGracePeriodSeconds; s != nil {
		grace = time.Duration(*s) * time.Second
	}
	if s := p.spec.DeletionGracePeriodSeconds; s != nil && time.Duration(*s)*time.Second < grace {
		grace = time.Duration(*s) * time.Second
	}
	deadline := time.Now().Add(grace)
	p.mu.Lock()
	p.ready = false
	p.mu.Unlock()
	p.stopProcs(func(pr *proc) bool { return !pr.init }, deadline)
	p.killSidecars()
}

func (p *pod) killSidecars() {
	p.stopProcs(func(pr *proc) bool { return pr.sidecar }, time.Now().Add(5*time.Second))
}

func (p *pod) killAll(grace time.Duration) {
	p.stopProcs(func(*proc) bool { return true }, time.Now().Add(grace))
}

// stopProcs sends SIGTERM to the selected running processes, waits until
// deadline, then sends SIGKILL and waits for them to be reaped.
func (p *pod) stopProcs(sel func(*proc) bool, deadline time.Time) {
	p.mu.Lock()
	var ps []*proc
	for _, pr := range p.procs {
		if sel(pr) && pr.finished.IsZero() {
			ps = append(ps, pr)
		}
	}
	p.mu.Unlock()
	for _, pr := range ps {
		_ = pr.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, pr := range ps {
		select {
		case <-pr.done:
		case <-time.After(time.Until(deadline)):
			p.logf("container %s: grace period over, SIGKILL", pr.name)
			_ = pr.cmd.Process.Kill()
			<-pr.done
		}
	}
}

// finish reports the final status and removes the pod object. Nothing when
// the object is gone.
func (p *pod) finish(ctx context.Context) {
	p.mu.Lock()
	gone := p.gone
	if p.phase == corev1.PodRunning || p.phase == corev1.PodPending {
		p.phase = corev1.PodSucceeded
		for _, pr := range p.procs {
			if !pr.init && pr.exitCode != 0 {
				p.phase = corev1.PodFailed
			}
		}
	}
	p.mu.Unlock()
	if gone || ctx.Err() != nil {
		return
	}
	p.writeStatus(ctx)
	p.deleteObject(ctx)
}

// deleteObject removes the pod object, as the kubelet does once a deleted
// pod's containers are gone (UID precondition: never a successor of the
// same name).
func (p *pod) deleteObject(ctx context.Context) {
	err := p.r.client.CoreV1().Pods(p.spec.Namespace).Delete(ctx, p.spec.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &p.spec.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		p.logf("delete: %v", err)
	}
}

// writeStatus writes the pod's status as the runner knows it.
func (p *pod) writeStatus(ctx context.Context) {
	p.mu.Lock()
	if p.gone {
		p.mu.Unlock()
		return
	}
	st := p.statusLocked()
	p.mu.Unlock()
	pods := p.r.client.CoreV1().Pods(p.spec.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := pods.Get(ctx, p.spec.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != p.spec.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), p.spec.Name)
		}
		cur.Status = st
		_, err = pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		p.logf("status: %v", err)
	}
}

func (p *pod) statusLocked() corev1.PodStatus {
	now := metav1.Now()
	start := metav1.NewTime(p.started)
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: now}
	}
	st := corev1.PodStatus{
		Phase:     p.phase,
		HostIP:    "127.0.0.1",
		HostIPs:   []corev1.HostIP{{IP: "127.0.0.1"}},
		PodIP:     p.ip,
		PodIPs:    []corev1.PodIP{{IP: p.ip}},
		StartTime: &start,
		Conditions: []corev1.PodCondition{
			cond(corev1.PodScheduled, true),
			cond(corev1.PodInitialized, p.phase != corev1.PodPending),
			cond(corev1.ContainersReady, p.ready),
			cond(corev1.PodReady, p.ready),
		},
	}
	if p.reason != "" {
		st.Reason, st.Message = "PodrunnerStartError", p.reason
	}
	for _, c := range p.spec.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, p.containerStatus(c, true))
	}
	for _, c := range p.spec.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, p.containerStatus(c, p.ready))
	}
	return st
}

func (p *pod) containerStatus(c corev1.Container, ready bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "podrunner://" + c.Image}
	pr := p.procs[c.Name]
	switch {
	case pr == nil:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	case pr.finished.IsZero():
		cs.Started = ptr.To(true)
		cs.Ready = ready
		cs.ContainerID = fmt.Sprintf("podrunner://%d", pr.cmd.Process.Pid)
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(pr.started)}
	default:
		cs.Started = ptr.To(false)
		reason := "Completed"
		if pr.exitCode != 0 {
			reason = "Error"
		}
		cs.ContainerID = fmt.Sprintf("podrunner://%d", pr.cmd.Process.Pid)
		cs.State.Terminated = &corev1.ContainerStateTerminated{
			ExitCode: int32(pr.exitCode), Reason: reason,
			StartedAt: metav1.NewTime(pr.started), FinishedAt: metav1.NewTime(pr.finished),
			ContainerID: cs.ContainerID,
		}
	}
	if pr != nil {
		cs.RestartCount = pr.restarts
	}
	return cs
}

// makeVolumes creates each emptyDir, configMap and secret volume as a
// directory (configMaps and secrets read once from the API).
func (p *pod) makeVolumes(ctx context.Context) error {
	if err := os.MkdirAll(p.dir, 0o755); err != nil { // also the processes' working directory
		return fmt.Errorf("pod directory: %w", err)
	}
	for _, v := range p.spec.Spec.Volumes {
		dir := filepath.Join(p.dir, "volumes", v.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		files := map[string][]byte{}
		switch {
		case v.ConfigMap != nil:
			cm, err := p.r.client.CoreV1().ConfigMaps(p.spec.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
			for k, s := range cm.Data {
				files[k] = []byte(s)
			}
			maps.Copy(files, cm.BinaryData)
		case v.Secret != nil:
			s, err := p.r.client.CoreV1().Secrets(p.spec.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
			maps.Copy(files, s.Data)
		case v.EmptyDir != nil:
		default:
			return fmt.Errorf("volume %s: only emptyDir, configMap and secret volumes run here", v.Name)
		}
		for k, b := range files {
			if err := os.WriteFile(filepath.Join(dir, k), b, 0o644); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
	}
	return nil
}

// rewriteMounts replaces a container mount path at the start of s (the
// whole value, or followed by "/") with the volume's local directory; also
// after "=" (--config=/conf/x.yaml).
func (p *pod) rewriteMounts(c corev1.Container, s string) string {
	for _, m := range c.VolumeMounts {
		local := filepath.Join(p.dir, "volumes", m.Name, m.SubPath)
		mp := strings.TrimSuffix(m.MountPath, "/")
		for _, sep := range []string{"", "="} {
			prefix, rest, ok := strings.Cut(s, sep+mp)
			if !ok || (sep == "" && prefix != "") || (sep == "=" && strings.Contains(prefix, "=")) {
				continue
			}
			if rest == "" || strings.HasPrefix(rest, "/") {
				return prefix + sep + local + rest
			}
		}
	}
	return s
}

func (p *pod) rewriteEnv(c corev1.Container, kv []string) []string {
	out := make([]string, len(kv))
	for i, e := range kv {
		k, v, _ := strings.Cut(e, "=")
		out[i] = k + "=" + p.rewriteMounts(c, v)
	}
	return out
}
