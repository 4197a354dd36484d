package collectortest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	moduleDir  string // tools/collector
	configsDir string // deploy/collector
	otelcolBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	moduleDir = filepath.Join(filepath.Dir(file), "..", "..")
	configsDir = filepath.Join(moduleDir, "..", "..", "deploy", "collector")

	// A relative OTELCOL_BIN is taken from the test's directory.
	if bin := os.Getenv("OTELCOL_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if _, err := os.Stat(abs); err != nil {
			fmt.Fprintf(os.Stderr, "OTELCOL_BIN: %v\n", err)
			return 1
		}
		otelcolBin = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "otelcol-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	otelcolBin = filepath.Join(dir, "otelcol")
	build := exec.Command("go", "build", "-trimpath", "-o", otelcolBin, ".")
	build.Dir = moduleDir
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build of the collector failed: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// shippedConfigs lists deploy/collector/*.yaml but kustomization.yaml, the
// kustomize component that makes them the ConfigMap otel-collector-config
// (tools/kedasim/deploytests checks the ConfigMap carries every one of them byte for byte).
func shippedConfigs(t *testing.T) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(configsDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range all {
		if filepath.Base(f) != "kustomization.yaml" {
			files = append(files, f)
		}
	}
	if len(files) < 2 {
		t.Fatalf("expected the shipped configs in %s, found %v", configsDir, files)
	}
	return files
}

// collectorEnv is a complete, isolated environment for the collector: the
// variables the shipped configs reference, with plausible values, static
// dummy AWS credentials, and nothing inherited that could reach a real AWS
// account (no shared config files, no instance metadata).
func collectorEnv(t *testing.T, override map[string]string) []string {
	t.Helper()
	home := t.TempDir()
	vars := map[string]string{
		"PATH":                        os.Getenv("PATH"),
		"HOME":                        home,
		"MY_POD_IP":                   "127.0.0.1",
		"AWS_REGION":                  "eu-west-1",
		"CLOUDWATCH_NAMESPACE":        "MyApiNamespace",
		"AMP_REMOTE_WRITE_URL":        "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-00000000-0000-0000-0000-000000000000/api/v1/remote_write",
		"AWS_ACCESS_KEY_ID":           "AKIAIOSFODNN7EXAMPLE",
		"AWS_SECRET_ACCESS_KEY":       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_CONFIG_FILE":             filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "no-aws-credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
	for k, v := range override {
		if v == "" {
			delete(vars, k)
		} else {
			vars[k] = v
		}
	}
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// validate runs `otelcol validate` on the config files and returns its
// combined output and error.
func validate(t *testing.T, env []string, configs ...string) (string, error) {
	t.Helper()
	args := []string{"validate"}
	for _, c := range configs {
		args = append(args, "--config="+c)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, otelcolBin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startCollector runs the collector with the config files merged in order,
// waits until its health_check endpoint answers 200, and stops it (SIGTERM,
// then SIGKILL) when the test ends.
func startCollector(t *testing.T, env []string, healthPort int, configs ...string) *syncBuffer {
	t.Helper()
	args := make([]string, 0, len(configs))
	for _, c := range configs {
		args = append(args, "--config="+c)
	}
	out := &syncBuffer{}
	cmd := exec.Command(otelcolBin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", out.String())
		}
	})

	health := fmt.Sprintf("http://127.0.0.1:%d/", healthPort)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("collector exited before it was healthy: %v\n%s", err, out.String())
		default:
		}
		resp, err := http.Get(health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return out
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not healthy at %s within 60s\n%s", health, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeFile writes content to name in a fresh temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mutate returns the shipped config with old replaced by new, failing the
// test when old is not in it (so a mutation cannot silently stop applying).
func mutate(t *testing.T, shipped, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(configsDir, shipped))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s no longer contains %q; update the test", shipped, old)
	}
	return writeFile(t, shipped, strings.Replace(string(b), old, new, 1))
}

// loopbackOverride writes the test-only config every test runs beside a
// shipped one: the collector's listeners on loopback free ports, plus extra
// (endpoints of the test's own fakes). It returns the file, the OTLP/HTTP
// port and the health port.
func loopbackOverride(t *testing.T, extra string) (file string, httpPort, healthPort int) {
	t.Helper()
	grpcPort, httpPort, healthPort := freePort(t), freePort(t), freePort(t)
	file = writeFile(t, "override.yaml", fmt.Sprintf(`
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
      http:
        endpoint: 127.0.0.1:%d
`, healthPort, grpcPort, httpPort)+extra)
	return file, httpPort, healthPort
}
