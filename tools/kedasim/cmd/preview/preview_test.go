package main

import (
	"context"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
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

// needPrometheus fails t without Prometheus, the AMP stand-in. run sets
// dummy AWS variables in this process (dummyAWS), the same in every test
// here, so nothing is restored and the tests run in parallel.
func needPrometheus(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Fatalf("prometheus not found (%v): the AMP stand-in; apt-get install -y prometheus", err)
	}
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
	t.Parallel() // minutes of waiting each: the preview tests overlap
	needPrometheus(t)
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

// TestPreviewReadsAHeldLoadWithinTenPercent: `make preview LOAD=none`
// against the shipped webapi (0-1.5 s answers, the overlay's own export
// interval), with the test as the user's client holding 6 requests in
// flight. After the warm-up, every poll's metric is within 6 ± 10 % (in the
// trigger's unit: busy seconds a minute for the CloudWatch SUM) and its
// desired replicas within ⌈6/2⌉ ± 1.
//   - amp: the warm-up is the 1 min rate window and a 15 s export.
//   - sidecar: a 60 s export, the 60 s period KEDA sums and the period's
//     end; one webapi, so each period holds that pod's one export.
func TestPreviewReadsAHeldLoadWithinTenPercent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the amp and sidecar overlays' local stacks for ~3 and ~6 min")
	}
	t.Parallel()
	needPrometheus(t)
	t.Run("amp", func(t *testing.T) { t.Parallel(); heldLoad(t, "amp", 90*time.Second, 190*time.Second) })
	t.Run("sidecar", func(t *testing.T) { t.Parallel(); heldLoad(t, "sidecar", 200*time.Second, 350*time.Second) })
}

// heldLoad runs the preview of overlay for d with 6 requests held in
// flight from its first poll, and checks every poll after warmUp.
func heldLoad(t *testing.T, overlay string, warmUp, d time.Duration) {
	const load = 6
	bin := binDir(t)
	out := &localproc.SyncBuffer{}
	ctx, cancel := context.WithTimeout(t.Context(), d+3*time.Minute)
	defer cancel()
	args := []string{"-overlay", overlay, "-repo", svctest.RepoRoot(t), "-bin", bin, "-poll", "2s",
		"-load", "none", "-duration", d.String(), "-html", filepath.Join(t.TempDir(), "preview.html")}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, os.Getenv, out) }()

	baseURL := regexp.MustCompile(`BASE_URL=(http://127\.0\.0\.1:\d+)`)
	var base string
	if err := localproc.Poll(2*time.Minute, func() (bool, error) {
		if m := baseURL.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
		return base != "", nil
	}); err != nil {
		t.Fatalf("no BASE_URL printed: %v\n%s", err, out)
	}
	polled := len(rows(t, out.String()))
	hold, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range load {
		wg.Go(func() {
			for hold.Err() == nil {
				req, _ := http.NewRequestWithContext(hold, http.MethodGet, base+"/weatherforecast", nil)
				if resp, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	err := <-done
	stop()
	wg.Wait()
	if err != nil {
		t.Fatalf("preview: %v\n%s", err, out)
	}
	rs := rows(t, out.String())
	if polled >= len(rs) {
		t.Fatalf("no poll after the load began\n%s", out)
	}
	began, err := time.ParseDuration(rs[polled].at)
	if err != nil {
		t.Fatal(err)
	}
	// The trigger's unit: its target is 2 in flight a pod in it.
	m := regexp.MustCompile(`target ([0-9.]+), replicas`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no HPA target printed\n%s", out)
	}
	target, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	metric := load * target / 2
	want := (load + 1) / 2
	checked := 0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rs[polled:] {
		at, err := time.ParseDuration(r.at)
		if err != nil || at < began+warmUp {
			continue
		}
		checked++
		lo, hi = min(lo, r.metric), max(hi, r.metric)
		if math.Abs(r.metric-metric) > 0.1*metric || r.replicas < want-1 || r.replicas > want+1 {
			t.Errorf("at %s: metric %.2f, %d replicas; want %g ± 10 %% and %d ± 1", r.at, r.metric, r.replicas, metric, want)
		}
	}
	if checked < 20 {
		t.Fatalf("%d polls after the warm-up, want at least 20\n%s", checked, out)
	}
	t.Logf("%s: %d polls after a %s warm-up: metric %.2f..%.2f (%g for %d held in flight)", overlay, checked, warmUp, lo, hi, metric, load)
}
