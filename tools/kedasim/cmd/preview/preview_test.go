package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/browsertest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

func init() { ctrllog.SetLogger(logr.Discard()) }

// binDir holds what `make preview` builds for the amp overlay: bin/demo
// (the local stack), webapi, and our collector (OTELCOL_BIN when set, else
// tools/collector built, GOWORK=off, into the directory).
func binDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, pkg := range []string{"tools/demo", "services/webapi"} {
		if err := os.Symlink(svctest.Build(t, pkg), filepath.Join(dir, filepath.Base(pkg))); err != nil {
			t.Fatal(err)
		}
	}
	otelcol := filepath.Join(dir, "otelcol")
	if bin := os.Getenv("OTELCOL_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, otelcol); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", otelcol, ".")
	cmd.Dir = filepath.Join(svctest.RepoRoot(t), "tools", "collector")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build tools/collector: %v\n%s", err, out)
	}
	return dir
}

// row is one printed poll of a ScaledObject.
type row struct {
	at       string
	metric   float64
	active   bool
	replicas int
}

func rows(t *testing.T, out string) []row {
	t.Helper()
	var rs []row
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) != 4 || !strings.HasSuffix(f[0], "s") {
			continue
		}
		v, err1 := strconv.ParseFloat(f[1], 64)
		a, err2 := strconv.ParseBool(f[2])
		n, err3 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		rs = append(rs, row{f[0], v, a, n})
	}
	return rs
}

// TestPreviewFollowsTheLoad: `make preview OVERLAY=amp` with the built-in
// load for 15 s, polled every second (the shipped 15 s is still
// printed), webapi exporting every second: the desired replicas printed
// start at the minimum, rise with the load (KEDA active), and come back to
// the minimum once its 1 min rate window has passed.
func TestPreviewFollowsTheLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the amp overlay's local stack for ~95 s")
	}
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Fatalf("prometheus not found (%v): the AMP stand-in; apt-get install -y prometheus", err)
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE"} {
		t.Setenv(k, os.Getenv(k)) // run sets them in the process: restored after
	}
	bin := binDir(t)
	out := &localproc.SyncBuffer{}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	args := []string{"-overlay", "amp", "-repo", svctest.RepoRoot(t), "-bin", bin, "-poll", "1s", "-export-interval", "1s",
		"-load", "builtin", "-load-for", "15s", "-duration", "95s", "-html", filepath.Join(t.TempDir(), "preview.html")}
	if err := run(ctx, args, os.Getenv, out); err != nil {
		t.Fatalf("preview: %v\n%s", err, out)
	}
	got := out.String()
	t.Logf("preview output:\n%s", got)
	for _, want := range []string{"query: sum(rate(http_server_request_duration_sum_seconds_total{job=\"webapi\"}[1m]))", "pollingInterval: 15s as shipped; polling every 1s here",
		"BASE_URL=http://127.0.0.1:", "HPA: metricType AverageValue, target 2, replicas 1..10"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	rs := rows(t, got)
	if len(rs) < 60 {
		t.Fatalf("%d polls printed in 95 s at 1 s, want at least 60", len(rs))
	}
	if rs[0].replicas != 1 {
		t.Errorf("first poll (no load yet) asks %d replicas, want the minimum 1", rs[0].replicas)
	}
	peak, peakAt := 0, -1
	for i, r := range rs {
		if r.replicas > peak {
			peak, peakAt = r.replicas, i
		}
	}
	if peak < 2 || !rs[peakAt].active {
		t.Fatalf("the replicas never rose with the load (peak %d)", peak)
	}
	// The page it wrote, as a browser shows it: the metric and the
	// replicas paint.
	browsertest.Check(t, "file://"+args[len(args)-1], "preview-amp", 1000)
	if !strings.Contains(got, "timeline: "+args[len(args)-1]) {
		t.Errorf("output does not name the page it wrote")
	}
	last := rs[len(rs)-1]
	if last.replicas != 1 || last.active || last.metric != 0 {
		t.Errorf("after the load: metric %v active %v replicas %d; want 0, inactive, the minimum 1", last.metric, last.active, last.replicas)
	}
}
