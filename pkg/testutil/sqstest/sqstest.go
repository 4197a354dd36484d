// Package sqstest runs a real, in-memory SQS emulator for Go tests.
//
// Start launches tools/fauxqs/serve.mjs (the npm package fauxqs 1.9.2 under
// Node.js) on 127.0.0.1 with a kernel-chosen port, one emulator per call,
// and stops it when the test ends. Every emulator starts empty, so tests that
// each call Start are isolated from each other; tests that share one
// emulator should create their own queues with NewQueue.
//
//	func TestWorker(t *testing.T) {
//		emu := sqstest.Start(t) // skips the test if node is not installed
//		q := emu.NewQueue(t, sqstest.WithMaxReceiveCount(2))
//		client := emu.Client(t)
//		// ... run the code under test with emu.Getenv(map[string]string{"QUEUE_URL": q.URL})
//		emu.WaitDepth(t, q.URL, sqstest.Empty, 10*time.Second)
//	}
//
// Requirements: node (>= 20) on PATH, and either tools/fauxqs/node_modules
// already installed or npm plus access to the npm registry (Start runs
// `npm ci` once, under a file lock, when node_modules is missing). The
// package uses flock(2) and POSIX signals: Linux and macOS only.
//
// Set FAUXQS_LOGGER=true in the environment to make the emulator log every
// request; its output is printed to the test log when a test fails.
//
// Behaviour of the emulator that differs from AWS, or that code under test
// may rely on, is listed in sqstest_test.go, which checks each of it.
package sqstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

const (
	// DefaultRegion is the region of every Emulator; the emulator itself
	// takes the region from each request's signature.
	DefaultRegion = "us-east-1"
	// AccountID is the account id in every queue ARN and URL.
	AccountID = "000000000000"

	host          = "127.0.0.1"
	readyPrefix   = "fauxqs listening "
	listenTimeout = 30 * time.Second // node start-up until the ready line
	healthTimeout = 20 * time.Second // ready line until GET /health == 200
	stopTimeout   = 10 * time.Second // SIGTERM until SIGKILL
	npmTimeout    = 5 * time.Minute
	pollInterval  = 50 * time.Millisecond
)

// Emulator is a running fauxqs process. Its fields are read-only.
type Emulator struct {
	// Endpoint is the emulator's base URL, http://127.0.0.1:PORT.
	Endpoint string
	// Region is the region to sign requests for: DefaultRegion.
	Region string

	client   *sqs.Client   // for the helpers below
	queueSeq atomic.Uint64 // makes NewQueue names unique
}

// Start runs a fresh emulator for the duration of t and returns it once it
// answers GET /health. It skips t if node is not on PATH and fails t if the
// emulator cannot be installed or started. A t.Cleanup sends it SIGTERM
// (SIGKILL after 10s); if t failed, the emulator's output is logged.
//
// The emulator also exits when the test binary dies, because it is told to
// stop when its stdin (a pipe held by this process) reaches EOF.
func Start(t testing.TB) *Emulator {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: install Node.js 20 to run SQS emulator tests")
	}
	dir := fauxqsDir(t)
	ensureInstalled(t, dir)

	output := &localproc.SyncBuffer{}
	stdout := &readyWatcher{log: output, ready: make(chan int, 1)}
	cmd := exec.Command(node, "serve.mjs", "--port", "0", "--exit-on-stdin-eof")
	cmd.Dir = dir
	cmd.Stdout = stdout
	cmd.Stderr = output
	cmd.WaitDelay = stopTimeout // don't hang in Wait if a grandchild kept stdout open
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("sqstest: stdin pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("sqstest: start %s serve.mjs: %v", node, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
			t.Logf("sqstest: emulator had already exited: %v", waitErr)
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			timer := time.NewTimer(stopTimeout)
			defer timer.Stop()
			select {
			case <-exited:
			case <-timer.C:
				t.Logf("sqstest: emulator ignored SIGTERM for %v; killing it", stopTimeout)
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		_ = stdin.Close()
		if t.Failed() {
			t.Logf("sqstest: emulator (pid %d) output:\n%s", cmd.Process.Pid, output.String())
		}
	})

	var port int
	timer := time.NewTimer(listenTimeout)
	defer timer.Stop()
	select {
	case port = <-stdout.ready:
	case <-exited:
		t.Fatalf("sqstest: emulator exited before listening: %v", waitErr)
	case <-timer.C:
		t.Fatalf("sqstest: emulator printed no %q line within %v", readyPrefix, listenTimeout)
	}

	e := &Emulator{
		Endpoint: fmt.Sprintf("http://%s:%d", host, port),
		Region:   DefaultRegion,
	}
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Second}
	err = localproc.WaitOK(t.Context(), hc, e.Endpoint+"/health", healthTimeout, exited)
	hc.CloseIdleConnections()
	if err != nil {
		t.Fatalf("sqstest: %s/health: %v", e.Endpoint, err)
	}
	e.client = e.Client(t)
	return e
}

// Env returns the environment a service needs to use the emulator plus
// extra (extra wins): AWS_REGION, AWS_ENDPOINT_URL_SQS, AWS_ACCESS_KEY_ID
// and AWS_SECRET_ACCESS_KEY (the credentials are dummies; the emulator
// doesn't check them). aws-sdk-go-v2's config.LoadDefaultConfig honours all
// four. The map is the caller's: a child process's environment for
// svctest.StartProcess or StartBinary, or the source of Getenv.
func (e *Emulator) Env(extra map[string]string) map[string]string {
	env := map[string]string{
		"AWS_REGION":            e.Region,
		"AWS_ENDPOINT_URL_SQS":  e.Endpoint,
		"AWS_ACCESS_KEY_ID":     "test",
		"AWS_SECRET_ACCESS_KEY": "test",
	}
	maps.Copy(env, extra)
	return env
}

// Getenv returns a func(string) string, the shape of os.Getenv, that serves
// Env(extra) and "" for anything else. It never reads the process
// environment, so a service's run(ctx, getenv, ...) sees only what the test
// chose.
func (e *Emulator) Getenv(extra map[string]string) func(string) string {
	vars := e.Env(extra)
	return func(key string) string { return vars[key] }
}

// Client returns an SQS client for the emulator with static dummy
// credentials; it reads no AWS configuration files or variables. Its idle
// HTTP connections are closed when t ends.
func (e *Emulator) Client(t testing.TB) *sqs.Client {
	t.Helper()
	transport := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(transport.CloseIdleConnections)
	return sqs.New(sqs.Options{
		Region:       e.Region,
		BaseEndpoint: aws.String(e.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:   &http.Client{Transport: transport},
	})
}

// fauxqsDir returns <repo root>/tools/fauxqs, the repo root being the first
// directory at or above the working directory that holds go.work.
func fauxqsDir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("sqstest: %v", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return filepath.Join(dir, "tools", "fauxqs")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("sqstest: no go.work in %s or above it; cannot find tools/fauxqs", wd)
		}
		dir = parent
	}
}

// ensureInstalled runs `npm ci` in dir unless node_modules is complete.
// Test binaries of several packages run at once, so the check and the install
// happen under an exclusive flock on dir/.npm-ci.lock; npm writes
// node_modules/.package-lock.json last, so its presence means complete.
func ensureInstalled(t testing.TB, dir string) {
	t.Helper()
	marker := filepath.Join(dir, "node_modules", ".package-lock.json")
	if _, err := os.Stat(marker); err == nil {
		return // fast path; nobody deletes node_modules while tests run
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".npm-ci.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("sqstest: %v", err)
	}
	defer lock.Close()
	for {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		t.Fatalf("sqstest: flock %s: %v", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // Close releases it too
	if _, err := os.Stat(marker); err == nil {
		return // another test binary installed it while we waited
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("sqstest: %s/node_modules is missing and npm is not on PATH: run `npm ci` there", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	t.Logf("sqstest: running npm ci in %s", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqstest: npm ci in %s: %v\n%s", dir, err, out)
	}
}

// readyWatcher is the emulator's stdout: it copies everything to log and
// sends the port of the first ready line on ready. os/exec calls Write from
// a single goroutine, so line needs no lock.
type readyWatcher struct {
	log   *localproc.SyncBuffer
	ready chan int // buffered, receives at most one value
	line  []byte   // incomplete line; nil once ready was sent
	done  bool
}

func (w *readyWatcher) Write(p []byte) (int, error) {
	w.log.Write(p) //nolint:errcheck // never fails
	if w.done {
		return len(p), nil
	}
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.line[:i])
		w.line = w.line[i+1:]
		if port, ok := parseReadyLine(line); ok {
			w.ready <- port
			w.done, w.line = true, nil
			return len(p), nil
		}
	}
}

// parseReadyLine extracts PORT from serve.mjs's
// "fauxqs listening endpoint=http://127.0.0.1:PORT port=PORT version=V".
func parseReadyLine(line string) (port int, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(line), readyPrefix)
	if !found {
		return 0, false
	}
	for _, field := range strings.Fields(rest) {
		if v, isPort := strings.CutPrefix(field, "port="); isPort {
			p, err := strconv.Atoi(v)
			return p, err == nil && p > 0 && p <= 65535
		}
	}
	return 0, false
}
