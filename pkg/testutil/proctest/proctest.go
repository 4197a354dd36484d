// Package proctest starts the real processes the signal and e2e tests
// share (our OpenTelemetry Collector, Prometheus as the Amazon
// Managed Prometheus stand-in, and any binary with exactly the environment
// it is given) on 127.0.0.1, and stops them when the test ends.
package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

// StartPrometheus runs the prometheus on PATH (Debian: /usr/bin/prometheus)
// with its remote-write receiver on and a query log, and returns its URL
// and the query log's path. A missing prometheus fails the test: CI
// installs it (.ci/run), and a skipped signal test proves nothing. env is
// added to its environment (PATH and HOME only otherwise).
func StartPrometheus(t testing.TB, env ...string) (base, queryLog string) {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not found (%v): it is the AMP stand-in; install it with `apt-get install -y prometheus` (Debian's 2.42, as .ci/run does)", err)
	}
	dir := t.TempDir()
	queryLog = filepath.Join(dir, "queries.log")
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte("global:\n  query_log_file: "+queryLog+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", svctest.FreePort(t))
	out, done := StartCmd(t, "prometheus", bin, []string{
		"--config.file=" + config,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--web.enable-remote-write-receiver",
		"--log.level=warn",
	}, append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...))
	base = "http://" + addr
	WaitOK(t, "prometheus", base+"/-/ready", 30*time.Second, out, done)
	return base, queryLog
}

// StartCmd starts bin with args and exactly env; when the test ends it
// sends SIGTERM (SIGKILL after 15 s) and, if the test failed, logs the
// output. done is closed once the process has exited.
func StartCmd(t testing.TB, name, bin string, args, env []string) (*localproc.SyncBuffer, <-chan struct{}) {
	t.Helper()
	out := &localproc.SyncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	p, err := localproc.Start(cmd, nil)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		p.Stop(15 * time.Second)
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out)
		}
	})
	return out, p.Done()
}

// WaitOK polls url until it answers 200; it fails t if the process
// (done) exits first or timeout passes.
func WaitOK(t testing.TB, name, url string, timeout time.Duration, out *localproc.SyncBuffer, done <-chan struct{}) {
	t.Helper()
	if err := localproc.WaitOK(t.Context(), nil, url, timeout, done); err != nil {
		t.Fatalf("%s not ready at %s: %v; output:\n%s", name, url, err, out)
	}
}

// StartCollector runs bin (localproc.CollectorBinary) on configs, merged
// in order, with its listeners on free loopback ports and extra added, in
// localproc's isolated environment plus env (localproc.NewCollector);
// waits until its health_check answers 200, and stops it when the test
// ends.
func StartCollector(t testing.TB, bin string, configs []string, extra string, env map[string]string) *localproc.Collector {
	t.Helper()
	c, err := localproc.NewCollector(t.TempDir(), configs, extra, env)
	if err != nil {
		t.Fatal(err)
	}
	name := "collector " + filepath.Base(configs[0])
	out, done := StartCmd(t, name, bin, c.Args, c.Env)
	WaitOK(t, name, c.Health, 60*time.Second, out, done)
	return c
}
