// Package localproc runs the repository's programs as local processes on
// 127.0.0.1, for the tests and for make demo: loopback ports for them, a
// wait until one answers, a child process reaped in the background and
// stopped in order, our OpenTelemetry Collector set up on the shipped
// configs (collector.go), and the main function of the tools that start
// them (Main).
//
// It is a module of its own with no requirements so that every module can
// import it — go.work's, and tools/collector and tools/kedasim outside it —
// without changing the versions any of them builds with.
package localproc

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Main is the main function of the repository's tools (bench, demo,
// preview): it calls run with the command's arguments and a context that
// SIGINT or SIGTERM cancels, and exits 1 with run's error, if any (not for
// flag.ErrHelp: -h printed the usage, as asked). The signals stay caught
// until run returns, so that a second one does not kill a tool while it
// stops what it started.
func Main(run func(ctx context.Context, args []string, stdout io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the flag set printed the usage
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), err)
		os.Exit(1)
	}
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago, for a child process that binds them itself. A listener of this
// process binds 127.0.0.1:0 and keeps its listener instead: a picked port
// can be taken by someone else before the child binds it. The n listeners
// are held until all are picked, so the ports differ.
//
// The ports lie below the kernel's ephemeral range: outbound connections
// and :0 listeners never take one, so a child killed and started again
// (KEDA's adapter in the fault tests) finds its port still free.
func FreePorts(n int) ([]int, error) {
	lo, hi := pickRange()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == 100*n {
			return nil, fmt.Errorf("no free loopback port in %d..%d after %d tries", lo, hi-1, tries)
		}
		p := lo + rand.IntN(hi-lo)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // taken (or picked already: it is held)
		}
		defer ln.Close()
		ports = append(ports, p)
	}
	return ports, nil
}

// pickRange is where FreePorts picks: the 16384 ports below the start of
// Linux's ip_local_port_range (32768 by default), or anywhere above the
// privileged ports where that range starts too low to leave 4096 below it.
func pickRange() (lo, hi int) {
	start := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		_, _ = fmt.Sscan(string(b), &start)
	}
	if start-1024 < 4096 {
		return 1024, 65536
	}
	return max(1024, start-16384), start
}

// WaitOK polls url every 20 ms through client (nil: one whose requests give
// up after 2 s) until it answers 200. It gives up when done is closed (the
// process exited), ctx ends or timeout passes, and says why and what the
// last request got.
func WaitOK(ctx context.Context, client *http.Client, url string, timeout time.Duration, done <-chan struct{}) error {
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	var last error
	err := PollContext(ctx, 20*time.Millisecond, timeout, func() (bool, error) {
		select {
		case <-done:
			return false, errors.New("exited before ready")
		default:
		}
		resp, err := client.Get(url)
		if err != nil {
			last = err
			return false, nil
		}
		resp.Body.Close()
		last = fmt.Errorf("status %s", resp.Status)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return err
}

// Poll is PollContext every 20 ms, with no context but the timeout.
func Poll(timeout time.Duration, cond func() (bool, error)) error {
	return PollContext(context.Background(), 20*time.Millisecond, timeout, cond)
}

// PollContext calls cond at once and then every interval until it returns
// true or an error, parent ends or timeout passes (an error saying which:
// parent's cause, or the timeout wrapping context.DeadlineExceeded).
func PollContext(parent context.Context, interval, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if ok, err := cond(); err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("condition not met: %w", context.Cause(parent))
			}
			return fmt.Errorf("condition not met within %s: %w", timeout, ctx.Err())
		case <-t.C:
		}
	}
}

// Proc is a started child process, reaped in the background.
type Proc struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
	term sync.Once
}

// Start starts cmd. then, if not nil, runs once the process has exited
// (closing its log file, say), before Done is closed.
func Start(cmd *exec.Cmd, then func()) (*Proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		if then != nil {
			then()
		}
		close(p.done)
	}()
	return p, nil
}

// StartLogged starts cmd with its stdout and stderr in a new file at
// logPath, in its own process group: a Ctrl-C at the terminal reaches only
// this process, which then stops its children itself, in order (a second
// SIGTERM would make our services quit without draining).
func StartLogged(cmd *exec.Cmd, logPath string) (*Proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p, err := Start(cmd, func() { f.Close() })
	if err != nil {
		f.Close()
		return nil, err
	}
	return p, nil
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit status once Done is closed, nil before.
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Terminate sends SIGTERM, once: our services take a second one as "stop
// now, without draining", like a second Ctrl-C.
func (p *Proc) Terminate() { p.term.Do(func() { _ = p.Cmd.Process.Signal(syscall.SIGTERM) }) }

// Stop terminates the process, waits up to grace, then kills it; it
// returns once the process has been reaped.
func (p *Proc) Stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	p.Terminate()
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes and reads: a
// process's output while the process still writes it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StatusRecorder is a ResponseWriter that remembers the status written
// through it (200 when the handler writes none): what a proxy in front of a
// loopback stand-in records per request.
type StatusRecorder struct {
	http.ResponseWriter
	Status int
}

// NewStatusRecorder wraps w.
func NewStatusRecorder(w http.ResponseWriter) *StatusRecorder {
	return &StatusRecorder{ResponseWriter: w, Status: http.StatusOK}
}

func (r *StatusRecorder) WriteHeader(code int) {
	r.Status = code
	r.ResponseWriter.WriteHeader(code)
}
