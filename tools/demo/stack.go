package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// stack is every process the demo started, stopped in reverse order.
type stack struct {
	bin, logs string
	out       io.Writer
	procs     []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
	term sync.Once
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// terminate sends SIGTERM once: the services treat a second one as "kill
// now", like a second Ctrl-C.
func (p *proc) terminate() { p.term.Do(func() { _ = p.cmd.Process.Signal(syscall.SIGTERM) }) }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs bin/<binary> as name with env on top of a minimal environment,
// logging to logs/<name>.log.
func (s *stack) start(binary, name string, env map[string]string) (*proc, error) {
	return s.startCmd(name, exec.Command(filepath.Join(s.bin, binary)), env)
}

func (s *stack) startCmd(name string, cmd *exec.Cmd, env map[string]string) (*proc, error) {
	logf, err := os.Create(filepath.Join(s.logs, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Env = envList(env)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C at the terminal reaches only the demo,
	// which then sends each service exactly one SIGTERM (a second one would
	// make it quit without draining).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); logf.Close(); close(p.done) }()
	s.procs = append(s.procs, p)
	return p, nil
}

// serve starts an HTTP service on a free port and waits for /readyz.
func (s *stack) serve(name string, env map[string]string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	env["HOST"], env["PORT"], env["SHUTDOWN_DELAY"] = "127.0.0.1", strconv.Itoa(port), "0s"
	p, err := s.start(name, name, env)
	if err != nil {
		return "", err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitHTTP(url+"/readyz", 15*time.Second, p.done); err != nil {
		return "", fmt.Errorf("%s: %w (see %s/%s.log)", name, err, s.logs, name)
	}
	fmt.Fprintf(s.out, "started %-15s %s\n", name, url)
	return url, nil
}

// waitHTTP polls url until it answers 200, the process exits, or timeout.
func waitHTTP(url string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("exited early")
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not ready within " + timeout.String())
}

// stopAll sends SIGTERM to everything still running, newest first, and
// waits; whatever ignores it for 25s is killed.
func (s *stack) stopAll() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		p.terminate()
		select {
		case <-p.done:
		case <-time.After(25 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		fmt.Fprintf(s.out, "stopped %-15s %s\n", p.name, p.status())
	}
	s.procs = nil
}

// status is "exit 0" or how the process ended.
func (p *proc) status() string {
	if p.err == nil {
		return "exit 0"
	}
	return p.err.Error()
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
