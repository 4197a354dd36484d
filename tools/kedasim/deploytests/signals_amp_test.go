package deploytests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/proctest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/kedascaler"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
	"github.com/keda-eks-samples/workloads/tools/kedasim/scalemath"
)

// The amp overlay's signal, end to end: webapi's OTLP metrics → our
// collector running the shipped deploy/collector/amp.yaml → Prometheus
// remote write, SigV4-signed for aps → Prometheus (Debian's 2.42 package,
// the AMP stand-in: the same remote-write receiver and query API) → KEDA's
// prometheus scaler built from the amp overlay's trigger.

// busySeconds is the counter amp.yaml writes for the trigger: the sum of
// otelhttp's request-duration histogram, one series per pod.
const busySeconds = "http_server_request_duration_sum_seconds_total"

// overlayEnv is the value of env var name of the container named after
// deployment in the rendered overlay.
func overlayEnv(t *testing.T, overlay, deployment, name string) string {
	t.Helper()
	objs, err := manifests.RenderOverlay(svctest.RepoRoot(t), overlay)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := manifests.DeploymentEnv(objs, deployment, name); ok {
		return v
	}
	t.Fatalf("overlay %s: Deployment %s sets no %s", overlay, deployment, name)
	return ""
}

// ampProxy stands where AMP's workspace endpoint would be: it forwards
// POST /workspaces/<id>/api/v1/remote_write to Prometheus's /api/v1/write
// and records each request's Authorization header and the answer.
type ampProxy struct {
	URL string
	mu  sync.Mutex
	log []ampWrite
}

type ampWrite struct {
	auth, amzDate string
	status        int
}

func startAMPProxy(t *testing.T, prometheus string) *ampProxy {
	t.Helper()
	target, err := url.Parse(prometheus)
	if err != nil {
		t.Fatal(err)
	}
	p := &ampProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	writePath := regexp.MustCompile(`^/workspaces/[^/]+/api/v1/remote_write$`)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !writePath.MatchString(r.URL.Path) {
			http.Error(w, "not an AMP remote-write request", http.StatusNotFound)
			return
		}
		auth, date := r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date")
		r.URL.Path = "/api/v1/write"
		rec := localproc.NewStatusRecorder(w)
		rp.ServeHTTP(rec, r)
		p.mu.Lock()
		p.log = append(p.log, ampWrite{auth: auth, amzDate: date, status: rec.Status})
		p.mu.Unlock()
	})}
	p.URL = serveLoopback(t, srv)
	return p
}

func (p *ampProxy) writes() []ampWrite {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ampWrite(nil), p.log...)
}

// startCollector runs our collector (localproc.CollectorBinary) on the
// shipped deploy/collector/<config> with extra (YAML with other top-level
// keys: endpoints, or a deliberately broken processor) added, and env (the
// other variables the config names). It returns the OTLP/HTTP endpoint.
func startCollector(t *testing.T, config, extra string, env map[string]string) string {
	t.Helper()
	root := svctest.RepoRoot(t)
	bin, err := localproc.CollectorBinary(root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := proctest.StartCollector(t, bin, []string{filepath.Join(root, "deploy", "collector", config)}, extra, env)
	return "http://" + c.OTLPHTTP
}

// promSeries returns the series Prometheus holds for a selector, by
// instant query (never the trigger's own query: the query log check below
// attributes that one to KEDA alone).
func promSeries(t *testing.T, base, selector string) []map[string]string {
	t.Helper()
	var resp struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
			}
		}
	}
	if err := svctest.GetJSON(base+"/api/v1/query?query="+url.QueryEscape(selector), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Status != "success" {
		t.Fatalf("query %s: status %s", selector, resp.Status)
	}
	var out []map[string]string
	for _, r := range resp.Data.Result {
		out = append(out, r.Metric)
	}
	return out
}

// holdRequests keeps n clients each re-issuing its request as soon as the
// answer comes, round robin over paths, until release. busy reports the
// seconds the clients have spent waiting for answers so far: its rate is
// the number they really held in flight (each loses a moment between an
// answer and its next request).
func holdRequests(t *testing.T, base string, paths []string, n int) (release func(), busy func() float64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var mu sync.Mutex
	done := 0.0                    // seconds of finished requests
	started := map[int]time.Time{} // client -> its request in flight since
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+paths[i%len(paths)], nil)
				mu.Lock()
				started[i] = time.Now()
				mu.Unlock()
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				mu.Lock()
				done += time.Since(started[i]).Seconds()
				delete(started, i)
				mu.Unlock()
			}
		})
	}
	busy = func() float64 {
		mu.Lock()
		defer mu.Unlock()
		b := done
		for _, at := range started {
			b += time.Since(at).Seconds()
		}
		return b
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			client.CloseIdleConnections()
		})
	}
	t.Cleanup(release)
	return release, busy
}

// sigV4 is the Authorization header of a SigV4-signed request.
var sigV4 = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/(\d{8})/us-east-1/aps/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$`)

// Must-show 1: L clients keep requests in flight against webapi with its
// shipped answer times (0-1.5 s at random) and its shipped export interval;
// the amp trigger's own query, run by KEDA's prometheus scaler against
// Prometheus, reads busy seconds per second — the mean number in flight —
// within 10% of what the clients really held over the last minute on every
// poll once its 1 min window is full (within 5% on most), so the HPA asks
// for ⌈held/2⌉ ± 1 replicas on every poll; without load, 0 and the minimum.
func TestAMPSignalFromWebapiThroughCollectorToKeda(t *testing.T) {
	t.Parallel() // minutes of waiting each: the long signal tests overlap
	tr := onlyTrigger(t, "amp", "prometheus")
	prom, queryLog := proctest.StartPrometheus(t)
	proxy := startAMPProxy(t, prom)
	otlp := startCollector(t, "amp.yaml", "", map[string]string{"AMP_REMOTE_WRITE_URL": proxy.URL + "/workspaces/ws-test/api/v1/remote_write"})

	instance := fmt.Sprintf("webapi-test-%d", time.Now().UnixNano())
	webEnv := svctest.Env(t, map[string]string{
		"LOG_LEVEL":                   "info",
		"OTEL_SERVICE_NAME":           "webapi",
		"OTEL_METRICS_EXPORTER":       "otlp",
		"OTEL_TRACES_EXPORTER":        "none",
		"OTEL_LOGS_EXPORTER":          "none",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
		"OTEL_METRIC_EXPORT_INTERVAL": overlayEnv(t, "amp", "webapi", "OTEL_METRIC_EXPORT_INTERVAL"),
		"OTEL_RESOURCE_ATTRIBUTES":    "service.instance.id=" + instance,
	})
	if v, ok := manifests.DeploymentEnv(renderOverlay(t, svctest.RepoRoot(t), "amp"), "webapi", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"); ok {
		webEnv["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"] = v // as rendered (TestBusySecondsTemporalityFitsEachPath)
	}
	web := svctest.StartBinary(t, svctest.Build(t, "services/webapi"), webEnv)
	webURL := "http://127.0.0.1:" + webEnv["PORT"]
	web.WaitReady(t, webURL)

	s, target, desired := localScaler(t, tr, map[string]string{"serverAddress": prom})

	r, _ := waitKeda(t, s, 250*time.Millisecond, 10*time.Second, "a reading", func(kedascaler.Reading) bool { return true })
	if r.Value != 0 || r.Active {
		t.Fatalf("no load yet: KEDA reports %v active=%v, want 0 and inactive", r.Value, r.Active)
	}

	const inFlight = 7
	want := int32((inFlight + 1) / 2)
	loaded := time.Now()
	release, busy := holdRequests(t, webURL, []string{"/weatherforecast", "/weatherforecast?days=5", "/weatherforecast?city=Seattle"}, inFlight)
	r, seen := waitKeda(t, s, time.Second, 3*time.Minute, "a reading under load", func(r kedascaler.Reading) bool {
		return r.Value > 0 && time.Since(loaded) > 55*time.Second
	})
	t.Logf("%d in flight: KEDA reads %.2f after %s (values on the way %.2f)", inFlight, r.Value, time.Since(loaded).Round(time.Second), seen)
	// Once the 1 min window holds only loaded time (plus an export), every
	// poll for a minute.
	if wait := 80*time.Second - time.Since(loaded); wait > 0 {
		_, _ = waitKeda(t, s, time.Second, wait+time.Second, "a full window", func(kedascaler.Reading) bool { return time.Since(loaded) > 80*time.Second })
	}
	// Every poll for a minute against what the clients really held over
	// the trigger's window (the minute before; a loaded machine starves
	// them a little between an answer and the next request).
	type mark struct {
		at   time.Time
		busy float64
	}
	marks := []mark{{time.Now(), busy()}}
	heldOverLastMinute := func() float64 {
		now, b := time.Now(), busy()
		marks = append(marks, mark{now, b})
		for _, m := range marks {
			if now.Sub(m.at) <= 62*time.Second {
				return (b - m.busy) / now.Sub(m.at).Seconds()
			}
		}
		return math.NaN()
	}
	_, _ = waitKeda(t, s, 2*time.Second, 70*time.Second, "a minute of polls in", func(kedascaler.Reading) bool {
		heldOverLastMinute()
		return time.Since(marks[0].at) > 65*time.Second
	})
	// Polls every 2 s, so every phase against the 15 s exports is seen: a
	// sample that reaches Prometheus late reads 17 % low on the polls just
	// after its export (deploy/collector/amp.yaml: no batch processor).
	var readings []float64
	worst, held, near := 0.0, math.NaN(), 0
	_, _ = waitKeda(t, s, 2*time.Second, 70*time.Second, "a minute of polls", func(r kedascaler.Reading) bool {
		held = heldOverLastMinute()
		readings = append(readings, r.Value)
		off := math.Abs(r.Value-held) / held
		worst = max(worst, off)
		if off <= 0.05 {
			near++
		}
		if off > 0.1 || !r.Active {
			t.Errorf("clients held %.2f in flight over the last minute: KEDA reads %.2f (%.0f%% off, active %v), want within 10%%", held, r.Value, 100*off, r.Active)
		}
		if d, w := desired(r.Value, tr.Min), int32(math.Ceil(held/2)); d < w-1 || d > w+1 {
			t.Errorf("clients held %.2f: HPA desired %d, want ceil(%.2f/2) ± 1 = %d ± 1", held, d, held, w)
		}
		return len(readings) >= 30
	})
	t.Logf("%d clients (%.2f held in flight), answers 0-1.5 s, export every %sms: %d polls read %.2f..%.2f, at worst %.1f%% off what the clients held; target %s %s",
		inFlight, held, webEnv["OTEL_METRIC_EXPORT_INTERVAL"], len(readings), slices.Min(readings), slices.Max(readings), 100*worst, target.Type, scalemath.TargetString(target))
	if near < len(readings)*8/10 {
		t.Errorf("%d of %d polls within 5%% of what the clients held, want at least 80%%", near, len(readings))
	}
	for _, name := range []string{busySeconds, "http_server_active_requests"} {
		series := promSeries(t, prom, name)
		want := map[string]string{"__name__": name, "job": "webapi", "instance": instance}
		if len(series) != 1 || !maps.Equal(series[0], want) {
			t.Errorf("Prometheus holds %v, want exactly one series %v", series, want)
		}
	}

	release()
	r, seen = waitKeda(t, s, time.Second, 2*time.Minute, "no load", func(r kedascaler.Reading) bool { return r.Value == 0 })
	down := desired(r.Value, want)
	t.Logf("released: KEDA reads %v active=%v (values on the way %.2f) -> HPA desired %d from %d", r.Value, r.Active, seen, down, want)
	if r.Active || down != tr.Min {
		t.Errorf("no load: KEDA active=%v, HPA desired %d; want inactive and the minimum %d", r.Active, down, tr.Min)
	}

	writes := proxy.writes()
	if len(writes) == 0 {
		t.Fatal("no remote write reached the AMP endpoint")
	}
	for i, w := range writes {
		m := sigV4.FindStringSubmatch(w.auth)
		if m == nil || !strings.HasPrefix(w.amzDate, m[1]) || !strings.Contains(";"+m[2]+";", ";host;") || !strings.Contains(";"+m[2]+";", ";x-amz-date;") {
			t.Errorf("write %d: Authorization %q (X-Amz-Date %q) is not SigV4 for aps in us-east-1 with the dummy key", i, w.auth, w.amzDate)
		}
		if w.status/100 != 2 {
			t.Errorf("write %d: Prometheus answered %d", i, w.status)
		}
	}
	t.Logf("%d remote writes, all SigV4-signed for aps: %s", len(writes), writes[0].auth[:strings.Index(writes[0].auth, "Signature=")])

	// Prometheus's query log: KEDA ran the overlay's query string, as rendered.
	ran := map[string]int{}
	f, err := os.Open(queryLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var entry struct{ Params struct{ Query string } }
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
			t.Fatalf("query log line %q: %v", sc.Text(), err)
		}
		ran[entry.Params.Query]++
	}
	if ran[tr.Spec.Metadata["query"]] == 0 {
		t.Errorf("Prometheus never ran the overlay's query %q; it ran %v", tr.Spec.Metadata["query"], ran)
	}
	for q := range ran {
		if q != tr.Spec.Metadata["query"] && q != busySeconds && q != "http_server_active_requests" {
			t.Errorf("Prometheus ran %q, neither the overlay's query nor the test's own", q)
		}
	}
	t.Logf("Prometheus query log: %v", ran)
}

// TestAMPRateWindowHoldsFourExportsAPod: the amp trigger's 1 min rate needs
// at least two samples a pod; the amp overlay's webapi exports every 15 s
// (four), the CloudWatch overlays' every 60 s (their SUM needs one a period).
func TestAMPRateWindowHoldsFourExportsAPod(t *testing.T) {
	for overlay, want := range map[string]string{"amp": "15000", "gateway": "60000", "sidecar": "60000", "cloudwatch-direct": "60000"} {
		if got := overlayEnv(t, overlay, "webapi", "OTEL_METRIC_EXPORT_INTERVAL"); got != want {
			t.Errorf("%s: webapi exports every %s ms, want %s", overlay, got, want)
		}
	}
	if q := onlyTrigger(t, "amp", "prometheus").Spec.Metadata["query"]; !strings.Contains(q, "[1m]") {
		t.Errorf("amp query %q: the 15 s export is sized for a 1 min window", q)
	}
}
