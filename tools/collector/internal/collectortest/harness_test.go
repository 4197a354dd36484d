package collectortest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

var (
	configsDir string // deploy/collector
	otelcolBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// go test runs in the package's directory (source paths in the binary
	// are trimmed: make builds with -trimpath).
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	root := filepath.Join(wd, "..", "..", "..", "..") // tools/collector/internal/collectortest
	configsDir = filepath.Join(root, "deploy", "collector")

	dir, err := os.MkdirTemp("", "otelcol-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if otelcolBin, err = localproc.CollectorBinary(root, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
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

// configVars are the variables the shipped configs reference, with
// plausible values, laid over localproc.CollectorEnv's.
var configVars = map[string]string{
	"AWS_REGION":            "eu-west-1",
	"CLOUDWATCH_NAMESPACE":  "MyApiNamespace",
	"AMP_REMOTE_WRITE_URL":  "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-00000000-0000-0000-0000-000000000000/api/v1/remote_write",
	"AWS_ACCESS_KEY_ID":     "AKIAIOSFODNN7EXAMPLE",
	"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}

// withConfigVars is configVars with override laid over them (a "" value
// removes a variable).
func withConfigVars(override map[string]string) map[string]string {
	vars := maps.Clone(configVars)
	maps.Copy(vars, override)
	return vars
}

// collectorEnv is a complete, isolated environment for the collector
// (localproc.CollectorEnv): configVars with override laid over them, static
// dummy AWS credentials, and nothing inherited that could reach a real AWS
// account (no shared config files, no instance metadata).
func collectorEnv(t *testing.T, override map[string]string) []string {
	t.Helper()
	return localproc.CollectorEnv(t.TempDir(), withConfigVars(override))
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

// startCollector runs the collector on config (a shipped file or a mutated
// copy) with its listeners on free loopback ports and extra added
// (localproc.NewCollector), in collectorEnv(env); waits until its
// health_check endpoint answers 200, and stops it (SIGTERM, then SIGKILL)
// when the test ends. (pkg/testutil/proctest does this for the other
// modules; this module requires pkg/localproc alone, to keep its build list
// the collector's.)
func startCollector(t *testing.T, config, extra string, env map[string]string) *localproc.Collector {
	t.Helper()
	c, err := localproc.NewCollector(t.TempDir(), []string{config}, extra, withConfigVars(env))
	if err != nil {
		t.Fatal(err)
	}
	out := &localproc.SyncBuffer{}
	cmd := exec.Command(otelcolBin, c.Args...)
	cmd.Env = c.Env
	cmd.Stdout, cmd.Stderr = out, out
	p, err := localproc.Start(cmd, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(15 * time.Second)
		if t.Failed() {
			t.Logf("collector output:\n%s", out.String())
		}
	})
	if err := localproc.WaitOK(t.Context(), nil, c.Health, 60*time.Second, p.Done()); err != nil {
		t.Fatalf("collector not healthy at %s: %v (exit: %v)\n%s", c.Health, err, p.Err(), out.String())
	}
	return c
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
