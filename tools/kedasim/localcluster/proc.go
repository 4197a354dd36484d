package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

// process is a binary started by this package, its output in a log file.
type process struct {
	*localproc.Proc
	name string
	log  string // the log file's path

	// What started it and what says it is ready, for Cluster.Restart.
	bin        string
	args, env  []string
	ready      func(ctx context.Context, p *process) error
	generation int // 1 for the first start, 2 after one restart, ...
}

// startProcess starts bin with args and env (added to this process's
// environment), stdout and stderr into logPath.
func startProcess(name, bin string, args, env []string, logPath string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	lp, err := localproc.StartLogged(cmd, logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &process{Proc: lp, name: name, log: logPath, bin: bin, args: args, env: env, generation: 1}, nil
}

// killPID ends a process this package did not fork itself but whose PID it
// was told (kwokctl's components): SIGTERM, up to grace, then SIGKILL. It
// returns an error if the process is still there afterwards.
func killPID(pid int, grace time.Duration) error {
	if !Alive(pid) {
		return nil
	}
	gone := func() (bool, error) { return !Alive(pid), nil }
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if localproc.PollContext(context.Background(), 50*time.Millisecond, grace, gone) == nil {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if localproc.Poll(2*time.Second, gone) == nil {
		return nil
	}
	return fmt.Errorf("pid %d survived SIGKILL", pid)
}

// Alive reports whether pid names a process that is running (not a zombie).
func Alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return !errors.Is(err, syscall.ESRCH)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": a zombie has ended; its parent has not reaped it yet.
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ')' {
			return i+2 < len(b) && b[i+2] != 'Z'
		}
	}
	return true
}

// Processes returns the live processes other than this one (pid → command
// line, arguments joined by spaces) for which match holds, given each one's
// command line and environment as NUL-separated /proc entries split apart.
// Tests find what they left running with it.
func Processes(match func(cmdline, environ []string) bool) map[int]string {
	found := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		if match(args, strings.Split(string(env), "\x00")) && Alive(pid) {
			found[pid] = strings.Join(args, " ")
		}
	}
	return found
}
