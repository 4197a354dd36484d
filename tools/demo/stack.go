package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

// stack is every process the demo started. stopAll stops them all at once,
// except that the backing services (the SQS emulator, the result analyzer)
// outlive their clients, so a worker can still hand its messages back.
type stack struct {
	bin, logs string
	out       io.Writer
	procs     []*proc
	// grace is how long stopAll lets a process drain before killing it,
	// longer than any SHUTDOWN_TIMEOUT the demo sets (the kubelet's
	// terminationGracePeriodSeconds).
	grace time.Duration
	// hurry, when it delivers (a second Ctrl-C), kills what is still running.
	hurry <-chan os.Signal
	// closers stop what runs inside the demo (the CloudWatch stand-in, the
	// counting SQS proxies) after every process has stopped: a service's
	// last flush on SIGTERM still reaches them.
	closers []func()
}

// atExit runs f after stopAll has stopped every process.
func (s *stack) atExit(f func()) { s.closers = append(s.closers, f) }

type proc struct {
	*localproc.Proc
	name    string
	backing bool // a dependency of other processes: stopped after them
}

// start runs bin/<binary> as name with env on top of a minimal environment,
// logging to logs/<name>.log. Services log at info unless env says
// otherwise: everything goes to their files, and the terminal shows only
// what the demo prints.
func (s *stack) start(binary, name string, env map[string]string) (*proc, error) {
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["LOG_LEVEL"]; !ok {
		env["LOG_LEVEL"] = "info"
	}
	return s.startCmd(name, exec.Command(filepath.Join(s.bin, binary)), env)
}

// startCmd starts cmd as name, logging to logs/<name>.log, with env on top
// of a minimal environment, or with cmd.Env as it is when env is nil and
// cmd.Env is set.
func (s *stack) startCmd(name string, cmd *exec.Cmd, env map[string]string) (*proc, error) {
	if env != nil || cmd.Env == nil {
		cmd.Env = envList(env)
	}
	lp, err := localproc.StartLogged(cmd, filepath.Join(s.logs, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{Proc: lp, name: name}
	s.procs = append(s.procs, p)
	return p, nil
}

// listenOn sets env so that a service listens on a free loopback port and
// stops at once on SIGTERM: no load balancer here needs the readiness delay
// (SHUTDOWN_DELAY) to notice it is going.
func listenOn(env map[string]string) (int, error) {
	ports, err := localproc.FreePorts(1)
	if err != nil {
		return 0, err
	}
	port := ports[0]
	env["HOST"], env["PORT"], env["SHUTDOWN_DELAY"] = "127.0.0.1", strconv.Itoa(port), "0s"
	return port, nil
}

// serve starts an HTTP service on a free port and waits for /readyz.
func (s *stack) serve(name string, env map[string]string) (string, *proc, error) {
	return s.serveAs(name, name, env)
}

// serveAs is serve of bin/<binary> under another name (its log file, what
// the demo prints).
func (s *stack) serveAs(binary, name string, env map[string]string) (string, *proc, error) {
	port, err := listenOn(env)
	if err != nil {
		return "", nil, err
	}
	p, err := s.start(binary, name, env)
	if err != nil {
		return "", nil, err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := localproc.WaitOK(context.Background(), nil, url+"/readyz", 15*time.Second, p.Done()); err != nil {
		return "", nil, fmt.Errorf("%s: %w (see %s/%s.log)", name, err, s.logs, name)
	}
	fmt.Fprintf(s.out, "started %-15s %s\n", name, url)
	return url, p, nil
}

// runJob runs bin/<binary> as name to completion (logging to its file) and
// returns the lines it printed that are not JSON logs.
func (s *stack) runJob(ctx context.Context, binary, name string, env map[string]string) ([]string, error) {
	p, err := s.start(binary, name, env)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.forget(func(q *proc) bool { return q == p })
	path := filepath.Join(s.logs, name+".log")
	if p.Err() != nil {
		return nil, fmt.Errorf("%s: %s (see %s)", name, p.status(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []string
	for l := range strings.Lines(string(b)) {
		if !strings.HasPrefix(l, "{") {
			lines = append(lines, strings.TrimSuffix(l, "\n"))
		}
	}
	return lines, nil
}

// stopAll stops everything still running and says what it is doing: SIGTERM
// to every client at once, then to the backing services at once, each given
// grace to drain before it is killed; a second Ctrl-C (hurry) kills at once.
func (s *stack) stopAll() {
	var clients, backing []*proc
	for _, p := range s.procs {
		if p.backing {
			backing = append(backing, p)
		} else {
			clients = append(clients, p)
		}
	}
	s.procs = nil
	defer func() {
		for _, f := range s.closers {
			f()
		}
		s.closers = nil
	}()
	if len(clients)+len(backing) == 0 {
		return
	}
	fmt.Fprintf(s.out, "\nstopping %d processes (SIGTERM, each drains for at most %s; Ctrl-C again to kill them now)\n",
		len(clients)+len(backing), s.grace)
	// One deadline for the whole stop, not one per process.
	kill := make(chan struct{})
	var once sync.Once
	killAll := func() { once.Do(func() { close(kill) }) }
	timer := time.AfterFunc(s.grace, killAll)
	defer timer.Stop()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-s.hurry:
			killAll()
		case <-stopped:
		}
	}()
	s.stopWave(clients, kill)
	s.stopWave(backing, kill)
}

// stopWave sends SIGTERM to every process of wave at once and waits for all
// of them, printing each as it ends; a closed kill kills those still running.
func (s *stack) stopWave(wave []*proc, kill <-chan struct{}) {
	if len(wave) == 0 {
		return
	}
	names := make([]string, len(wave))
	for i, p := range wave {
		names[i] = p.name
		p.Terminate()
	}
	fmt.Fprintf(s.out, "  SIGTERM to %s\n", strings.Join(names, ", "))
	var mu sync.Mutex // one line at a time
	var wg sync.WaitGroup
	for _, p := range wave {
		wg.Go(func() {
			select {
			case <-p.Done():
			case <-kill:
				_ = p.Cmd.Process.Kill()
				<-p.Done()
			}
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(s.out, "  stopped %-15s %s\n", p.name, p.status())
		})
	}
	wg.Wait()
}

// status is "exit 0" or how the process ended.
func (p *proc) status() string {
	if p.Err() == nil {
		return "exit 0"
	}
	return p.Err().Error()
}

// forget drops processes that have ended and been reported by a scene.
func (s *stack) forget(done func(*proc) bool) {
	kept := s.procs[:0]
	for _, p := range s.procs {
		if !done(p) {
			kept = append(kept, p)
		}
	}
	s.procs = kept
}
