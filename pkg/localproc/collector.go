package localproc

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// Collector is our OpenTelemetry Collector (tools/collector, bin/otelcol)
// set up to run on shipped configs plus an override that moves its
// listeners to free loopback ports, in an environment that cannot reach a
// real AWS account. The caller starts the binary (CollectorBinary, or
// make demo's bin/otelcol) with Args and exactly Env, then waits for Health
// (WaitOK).
type Collector struct {
	Args     []string // --config= the shipped files in order, then the override
	Env      []string // the whole process environment
	Health   string   // the health_check extension: 200 once the pipelines run
	OTLPHTTP string   // 127.0.0.1:PORT, the OTLP/HTTP receiver
	OTLPGRPC string   // 127.0.0.1:PORT, the OTLP/gRPC receiver
}

// NewCollector picks the ports and writes the override into dir (which
// also becomes HOME). configs are the shipped files, merged in order; extra
// is YAML appended to the override (other top-level keys: the exporters'
// loopback endpoints, a deliberately broken processor); env is laid over
// CollectorEnv's.
func NewCollector(dir string, configs []string, extra string, env map[string]string) (*Collector, error) {
	ports, err := FreePorts(3)
	if err != nil {
		return nil, err
	}
	health, grpc, http := ports[0], ports[1], ports[2]
	override := filepath.Join(dir, "loopback.yaml")
	if err := os.WriteFile(override, fmt.Appendf(nil, `# written by localproc: listeners on free loopback ports
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
%s`, health, grpc, http, extra), 0o644); err != nil {
		return nil, err
	}
	c := &Collector{
		Env:      CollectorEnv(dir, env),
		Health:   fmt.Sprintf("http://127.0.0.1:%d/", health),
		OTLPHTTP: fmt.Sprintf("127.0.0.1:%d", http),
		OTLPGRPC: fmt.Sprintf("127.0.0.1:%d", grpc),
	}
	for _, f := range append(slices.Clone(configs), override) {
		c.Args = append(c.Args, "--config="+f)
	}
	return c, nil
}

// CollectorEnv is a complete, isolated environment for the collector: PATH,
// HOME=home, MY_POD_IP and AWS_REGION as the shipped configs expect them,
// static dummy AWS credentials, and nothing that could reach a real AWS
// account (no shared config files, no instance metadata); then env, where
// a "" value removes a variable.
func CollectorEnv(home string, env map[string]string) []string {
	vars := map[string]string{
		"PATH":                        os.Getenv("PATH"),
		"HOME":                        home,
		"MY_POD_IP":                   "127.0.0.1",
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY":       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_CONFIG_FILE":             filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "no-aws-credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
	for k, v := range env {
		if v == "" {
			delete(vars, k)
		} else {
			vars[k] = v
		}
	}
	out := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// CollectorBinary is our collector for tests: OTELCOL_BIN when set
// (bin/otelcol from `make collector`; a relative path is taken from the
// working directory), else tools/collector of the repository at root built
// into dir (GOWORK=off: it is its own module; the build cache makes a
// rebuild quick).
func CollectorBinary(root, dir string) (string, error) {
	if bin := os.Getenv("OTELCOL_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("OTELCOL_BIN: %w", err)
		}
		return abs, nil
	}
	bin := filepath.Join(dir, "otelcol")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", bin, ".")
	build.Dir = filepath.Join(root, "tools", "collector")
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build tools/collector: %w\n%s", err, out)
	}
	return bin, nil
}
