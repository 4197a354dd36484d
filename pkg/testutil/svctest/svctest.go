// Package svctest starts a service the way its users do, for tests: in
// process through its run function, or as a real process (the test binary
// re-executed as the service's main) so that exit codes and real signals are
// observable. Every start is cleaned up with t.Cleanup and waits by polling
// with a deadline, never by sleeping.
package svctest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/buildinfo"
	"github.com/keda-eks-samples/workloads/pkg/cli"
	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

// mainEnv marks a re-executed test binary that should behave as main.
const mainEnv = "SVCTEST_RUN_MAIN"

// RunMain is called first in a service's TestMain: when the binary was
// re-executed by Process it runs main instead of the tests.
func RunMain(m *testing.M, main func()) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// FreePort returns a loopback TCP port that was free a moment ago
// (localproc.FreePorts), for a service that binds it itself; it fails t
// when none is.
func FreePort(t testing.TB) int {
	t.Helper()
	ports, err := localproc.FreePorts(1)
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return ports[0]
}

// Env returns base plus the serving variables every test wants: loopback, a
// free port, no shutdown delay unless set, text logs.
func Env(t testing.TB, base map[string]string) map[string]string {
	env := map[string]string{
		"HOST":           "127.0.0.1",
		"PORT":           strconv.Itoa(FreePort(t)),
		"SHUTDOWN_DELAY": "0s",
		"LOG_FORMAT":     "text",
		"LOG_LEVEL":      "debug",
	}
	maps.Copy(env, base)
	return env
}

// readyTimeout bounds every wait for GET /readyz to answer 200.
const readyTimeout = 20 * time.Second

// ended is how a started service (in process or not) finishes: done is
// closed once err holds run's error or the process's exit status.
type ended struct {
	done chan struct{}
	err  error
}

// waitReady waits for url/readyz and fails t, with the service's output, if
// it ends first or readyTimeout passes.
func (e *ended) waitReady(t testing.TB, url string, output *localproc.SyncBuffer) {
	t.Helper()
	if err := localproc.WaitOK(t.Context(), nil, url+"/readyz", readyTimeout, e.done); err != nil {
		select {
		case <-e.done:
			err = fmt.Errorf("%w (%v)", err, e.err)
		default:
		}
		t.Fatalf("%s/readyz: %v; output:\n%s", url, err, output)
	}
}

// Service is a run function running in this process.
type Service struct {
	URL    string
	Output *localproc.SyncBuffer
	cancel context.CancelFunc
	ended
}

// Start runs run with env in a goroutine and waits until GET /readyz is 200.
// env must contain PORT (use Env).
func Start(t testing.TB, run cli.RunFunc, env map[string]string) *Service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		URL:    "http://127.0.0.1:" + env["PORT"],
		Output: &localproc.SyncBuffer{},
		cancel: cancel,
		ended:  ended{done: make(chan struct{})},
	}
	go func() { s.err = run(ctx, func(k string) string { return env[k] }, s.Output); close(s.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Errorf("service did not stop within 30s; output:\n%s", s.Output)
		}
	})
	s.waitReady(t, s.URL, s.Output)
	return s
}

// Stop cancels the run context (what SIGTERM does in main) and returns run's
// error.
func (s *Service) Stop(t testing.TB) error {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
		return s.err
	case <-time.After(30 * time.Second):
		t.Fatalf("service did not stop; output:\n%s", s.Output)
		return nil
	}
}

// Process is the service running as a separate OS process.
type Process struct {
	Cmd    *exec.Cmd
	Output *localproc.SyncBuffer
	ended
}

// StartProcess re-executes the test binary as the service's main (see
// RunMain) with exactly env (plus PATH and HOME).
func StartProcess(t testing.TB, env map[string]string) *Process {
	t.Helper()
	return start(t, exec.Command(os.Args[0], "-test.run=^$"), mainEnv+"=1", env)
}

// StartBinary runs a built binary (see Build) with exactly env (plus PATH
// and HOME), stopped with SIGKILL at the end of the test if still running.
func StartBinary(t testing.TB, path string, env map[string]string) *Process {
	t.Helper()
	return start(t, exec.Command(path), "", env)
}

// Build compiles the main package at dir, relative to the repository root
// (the directory holding go.work), e.g. "services/resultanalyzer", into a
// temporary directory and returns the binary's path. The build cache makes
// a repeat build quick. flags go to go build before the package, e.g.
// "-ldflags=-X ...".
func Build(t testing.TB, dir string, flags ...string) string {
	t.Helper()
	root := RepoRoot(t)
	goBin, err := exec.LookPath("go") // go test puts GOROOT/bin first on PATH
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(dir))
	// -trimpath as the shipped binaries and make's GOFLAGS: the packages
	// make compiled are reused, not compiled again untrimmed.
	cmd := exec.Command(goBin, append(append([]string{"build", "-trimpath", "-o", bin}, flags...), "./"+dir)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work"), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// RepoRoot is the directory holding go.work, at or above the working
// directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("no go.work at or above %s", wd)
		}
	}
}

func start(t testing.TB, cmd *exec.Cmd, marker string, env map[string]string) *Process {
	t.Helper()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if marker != "" {
		cmd.Env = append(cmd.Env, marker)
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &Process{Cmd: cmd, Output: &localproc.SyncBuffer{}, ended: ended{done: make(chan struct{})}}
	cmd.Stdout, cmd.Stderr = p.Output, p.Output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// WaitReady polls url/readyz until it answers 200; it fails the test if the
// process exits first or 20s pass.
func (p *Process) WaitReady(t testing.TB, url string) {
	t.Helper()
	p.waitReady(t, url, p.Output)
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ProcessWait is a timeout for Wait on a process that runs to its end by
// itself (a job, the producer): a deadline for a hung process, not a timing
// assertion.
const ProcessWait = 60 * time.Second

// Wait waits up to timeout for exit and returns the exit code.
func (p *Process) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("process still running after %s; output:\n%s", timeout, p.Output)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// ExpectConfigErrors runs ExpectConfigError once per bad variable ({name,
// value}), in a subtest named name=value: the service gets base with that
// one variable set over it, or removed when value is "" (getenv cannot tell
// the two apart).
func ExpectConfigErrors(t *testing.T, base map[string]string, bad [][2]string) {
	t.Helper()
	for _, b := range bad {
		name, value := b[0], b[1]
		t.Run(name+"="+value, func(t *testing.T) {
			env := maps.Clone(base)
			if value == "" {
				delete(env, name)
			} else {
				env[name] = value
			}
			ExpectConfigError(t, env, name)
		})
	}
}

// ExpectConfigError runs the service as a process with env and checks what
// a bad variable must produce: exit status 2 and a single line naming it,
// as name="value" when it was set or "name is required" when it was not.
func ExpectConfigError(t testing.TB, env map[string]string, name string) {
	t.Helper()
	p := StartProcess(t, env)
	code := p.Wait(t, 30*time.Second)
	out := strings.TrimSpace(p.Output.String())
	want := name + " is required"
	if strings.TrimSpace(env[name]) != "" {
		want = name + `="`
	}
	if code != 2 || !strings.Contains(out, want) || strings.Contains(out, "\n") {
		t.Errorf("exit %d, want 2 and one line containing %q; output:\n%s", code, want, out)
	}
}

// Get fetches url and returns status and body.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	return Do(t, http.MethodGet, url, "", nil)
}

// GetJSON decodes the JSON body of a 200 answer to GET url into v; any
// other answer is an error that quotes it. It takes no t, so that a poll
// can retry on its error.
func GetJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w in %s", url, err, body)
	}
	return nil
}

// Do sends a request with an optional body and returns status and body.
func Do(t testing.TB, method, url, contentType string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, string(b)
}

// ExpectStartupConfig runs run with env on a context that is already
// cancelled, so the service starts and stops at once, and checks its
// start-up record: msg "starting", the build version, and a "config" equal
// to want, a JSON object (key order and spacing do not matter). The "log"
// group every service has is set here (LOG_LEVEL debug, LOG_FORMAT json) and
// expected; want holds the service's own fields.
func ExpectStartupConfig(t testing.TB, run cli.RunFunc, env map[string]string, want string) {
	t.Helper()
	expectStartup(t, run, env, want, map[string]string{}, map[string]any{})
}

// ExpectServerStartupConfig is ExpectStartupConfig for a service that serves
// HTTP (its Config has a server.Config named Server): every serving variable
// is set off its default as well (loopback, a free port, SHUTDOWN_TIMEOUT
// 25s, SHUTDOWN_DELAY 0s, MAX_BODY_BYTES 2048) and its "server" group
// expected.
func ExpectServerStartupConfig(t testing.TB, run cli.RunFunc, env map[string]string, want string) {
	t.Helper()
	port := FreePort(t)
	expectStartup(t, run, env, want, map[string]string{
		"HOST": "127.0.0.1", "PORT": strconv.Itoa(port), "SHUTDOWN_TIMEOUT": "25s", "SHUTDOWN_DELAY": "0s", "MAX_BODY_BYTES": "2048",
	}, map[string]any{
		"server": map[string]any{"host": "127.0.0.1", "port": port, "shutdown_timeout": "25s", "shutdown_delay": "0s", "max_body_bytes": 2048},
	})
}

// expectStartup runs the check with sets added to env and expects added to
// want, the "log" group's variables and value included. The test may set
// neither: its value would be overwritten and checked as the helper's.
func expectStartup(t testing.TB, run cli.RunFunc, env map[string]string, want string, sets map[string]string, expects map[string]any) {
	t.Helper()
	sets["LOG_LEVEL"], sets["LOG_FORMAT"] = "debug", "json"
	expects["log"] = map[string]any{"level": "DEBUG", "format": "json"}
	var wantV map[string]any
	if err := json.Unmarshal([]byte(want), &wantV); err != nil || wantV == nil {
		t.Fatalf("want is not a JSON object: %v", err)
	}
	for k, v := range env {
		if _, ok := sets[k]; ok {
			t.Fatalf("env sets %s, which the helper sets itself", k)
		}
		sets[k] = v
	}
	for k, v := range expects {
		if _, ok := wantV[k]; ok {
			t.Fatalf("want has %q, which the helper expects itself", k)
		}
		wantV[k] = v
	}
	env = sets
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out localproc.SyncBuffer
	_ = run(ctx, func(k string) string { return env[k] }, &out) // only the log matters here
	for line := range strings.Lines(out.String()) {
		var rec struct {
			Msg     string
			Version string
			Config  any
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "starting" {
			continue
		}
		if rec.Version != buildinfo.Version {
			t.Errorf("start-up version %q, want %q", rec.Version, buildinfo.Version)
		}
		got, _ := json.Marshal(rec.Config)
		canon, _ := json.Marshal(wantV)
		if string(got) != string(canon) {
			t.Errorf("start-up config\n got %s\nwant %s", got, canon)
		}
		return
	}
	t.Fatalf("no start-up record (msg \"starting\") in the output:\n%s", out.String())
}
