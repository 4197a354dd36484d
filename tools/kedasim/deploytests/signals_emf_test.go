package deploytests

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/cwtest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/kedascaler"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
	"github.com/keda-eks-samples/workloads/tools/kedasim/scalemath"
)

// The sidecar and gateway overlays' signals: webapi's OTLP (http/protobuf)
// → our collector running the shipped deploy/collector/cloudwatch.yaml →
// awsemf's PutLogEvents with EMF records → the loopback CloudWatch stand-in
// (cwstandin) → KEDA's aws-cloudwatch scaler built from the gateway overlay's
// rendered trigger, only awsEndpoint pointed at the stand-in.
//
// The trigger reads busy seconds (TestEMFBusySeconds...). The in-flight
// level is still written, for dashboards and the seeds' trigger: one webapi
// feeds two collectors through a tee that also decodes what webapi sent,
// the shipped config and the shipped config minus its Sum→Gauge fix
// (convert_sum_to_gauge removed, nothing else changed). Both see the same
// exports, so the EMF values can be compared export by export.

// The two metrics cloudwatch.yaml writes.
const (
	activeRequests = "http.server.active_requests"
	busySecondsEMF = "http.server.request.duration_sum"
)

// otlpExport is what one OTLP export of webapi said about active requests:
// the collection time and the value per http.request.method.
type otlpExport struct {
	at       time.Time
	byMethod map[string]int64
}

func (e otlpExport) sum() int64 {
	var n int64
	for _, v := range e.byMethod {
		n += v
	}
	return n
}

// otlpTee receives webapi's OTLP/HTTP metrics, records the active-requests
// datapoints and forwards the request to every collector; webapi gets the
// first collector's answer.
type otlpTee struct {
	URL     string
	mu      sync.Mutex
	exports []otlpExport
	errs    []string
}

func startOTLPTee(t *testing.T, collectors ...string) *otlpTee {
	t.Helper()
	tee := &otlpTee{}
	client := &http.Client{Timeout: 10 * time.Second}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tee.record(r.Header.Get("Content-Encoding"), body)
		var first *http.Response
		var firstBody []byte
		for i, c := range collectors {
			req, _ := http.NewRequestWithContext(r.Context(), r.Method, c+r.URL.RequestURI(), bytes.NewReader(body))
			req.Header = r.Header.Clone()
			resp, err := client.Do(req)
			if err != nil {
				tee.fail("forward to %s: %v", c, err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				tee.fail("collector %s answered %d: %s", c, resp.StatusCode, b)
			}
			if i == 0 {
				first, firstBody = resp, b
			}
		}
		if first == nil {
			http.Error(w, "collector unreachable", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", first.Header.Get("Content-Type"))
		w.WriteHeader(first.StatusCode)
		_, _ = w.Write(firstBody)
	})}
	tee.URL = serveLoopback(t, srv)
	return tee
}

func (tee *otlpTee) record(encoding string, body []byte) {
	if encoding == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			tee.fail("gzip: %v", err)
			return
		}
		if body, err = io.ReadAll(zr); err != nil {
			tee.fail("gzip: %v", err)
			return
		}
	}
	var req colmetricspb.ExportMetricsServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		tee.fail("OTLP body: %v", err)
		return
	}
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				if m.GetName() != activeRequests {
					continue
				}
				e := otlpExport{byMethod: map[string]int64{}}
				for _, dp := range m.GetSum().GetDataPoints() {
					e.at = time.Unix(0, int64(dp.GetTimeUnixNano())).UTC()
					for _, kv := range dp.GetAttributes() {
						if kv.GetKey() == "http.request.method" {
							e.byMethod[kv.GetValue().GetStringValue()] += dp.GetAsInt()
						}
					}
				}
				tee.mu.Lock()
				tee.exports = append(tee.exports, e)
				tee.mu.Unlock()
			}
		}
	}
}

func (tee *otlpTee) fail(format string, args ...any) {
	tee.mu.Lock()
	defer tee.mu.Unlock()
	tee.errs = append(tee.errs, fmt.Sprintf(format, args...))
}

func (tee *otlpTee) snapshot() ([]otlpExport, []string) {
	tee.mu.Lock()
	defer tee.mu.Unlock()
	return slices.Clone(tee.exports), slices.Clone(tee.errs)
}

// emfRecord is one EMF log event as the stand-in kept it, decoded.
type emfRecord struct {
	at         time.Time
	namespace  string
	dimensions [][]string
	metrics    []struct{ Name, Unit string }
	fields     map[string]any
	value      float64
	hasValue   bool
}

// emfRecords are the EMF records of metric in group (awsemf writes one
// record per metric type: the level's and busy seconds' apart).
func emfRecords(t *testing.T, cw *cwtest.Server, group, metric string) []emfRecord {
	t.Helper()
	var out []emfRecord
	for _, ev := range cw.LogEvents() {
		if !ev.EMF || ev.EMFError != "" || ev.Group != group {
			t.Errorf("log event in %s: EMF %v (error %q), want EMF records in %s only:\n%s", ev.Group, ev.EMF, ev.EMFError, group, ev.Message)
			continue
		}
		var meta struct {
			AWS struct {
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name, Unit string }
				}
			} `json:"_aws"`
		}
		rec := emfRecord{at: ev.Timestamp}
		if err := json.Unmarshal([]byte(ev.Message), &meta); err != nil {
			t.Fatalf("EMF record: %v\n%s", err, ev.Message)
		}
		if err := json.Unmarshal([]byte(ev.Message), &rec.fields); err != nil {
			t.Fatalf("EMF record: %v\n%s", err, ev.Message)
		}
		if len(meta.AWS.CloudWatchMetrics) != 1 {
			t.Errorf("EMF record with %d metric directives, want 1:\n%s", len(meta.AWS.CloudWatchMetrics), ev.Message)
			continue
		}
		d := meta.AWS.CloudWatchMetrics[0]
		if !slices.ContainsFunc(d.Metrics, func(m struct{ Name, Unit string }) bool { return m.Name == metric }) {
			continue
		}
		rec.namespace, rec.dimensions, rec.metrics = d.Namespace, d.Dimensions, d.Metrics
		rec.value, rec.hasValue = rec.fields[metric].(float64)
		out = append(out, rec)
	}
	return out
}

// checkEMFShape: namespace, the one metric in its unit, exactly the
// dimension set [Service] with Service=webapi, and no method or scheme left.
func checkEMFShape(t *testing.T, recs []emfRecord, namespace, metric, unit string) {
	t.Helper()
	for _, r := range recs {
		if r.namespace != namespace {
			t.Errorf("EMF namespace %q, want %q", r.namespace, namespace)
		}
		if want := [][]string{{"Service"}}; !reflect.DeepEqual(r.dimensions, want) {
			t.Errorf("EMF dimensions %v, want exactly %v", r.dimensions, want)
		}
		if len(r.metrics) != 1 || r.metrics[0].Name != metric || r.metrics[0].Unit != unit {
			t.Errorf("EMF metrics %+v, want one %s in %s", r.metrics, metric, unit)
		}
		if r.fields["Service"] != "webapi" {
			t.Errorf("EMF Service = %v, want webapi", r.fields["Service"])
		}
		for _, gone := range []string{"http.request.method", "url.scheme", "http.route", "http.response.status_code"} {
			if v, ok := r.fields[gone]; ok {
				t.Errorf("EMF record still carries %s=%v", gone, v)
			}
		}
		if !r.hasValue {
			t.Errorf("EMF record without a numeric %s: %v", metric, r.fields)
		}
	}
}

// webapiEnv is a webapi process's env with every OTEL_* variable the
// overlay renders for it, exporting to endpoint as instance (traces and
// logs off), plus extra.
func webapiEnv(t *testing.T, rendered map[string]string, endpoint, instance string, extra map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{"LOG_LEVEL": "info"}
	for k, v := range rendered {
		if strings.HasPrefix(k, "OTEL_") {
			env[k] = v
		}
	}
	env["OTEL_EXPORTER_OTLP_ENDPOINT"], env["OTEL_RESOURCE_ATTRIBUTES"] = endpoint, "service.instance.id="+instance
	env["OTEL_TRACES_EXPORTER"], env["OTEL_LOGS_EXPORTER"] = "none", "none"
	maps.Copy(env, extra)
	return svctest.Env(t, env)
}

// gatewaySignal is the gateway overlay's one aws-cloudwatch trigger, the
// CloudWatch namespace it reads and webapi's env, as rendered. The tests'
// time shift depends on the trigger's 60 s period read 60 s late.
func gatewaySignal(t *testing.T) (manifests.Trigger, string, map[string]string) {
	t.Helper()
	objs := renderOverlay(t, svctest.RepoRoot(t), "gateway")
	tr := onlyTrigger(t, "gateway", "aws-cloudwatch")
	if tr.Spec.Metadata["metricStatPeriod"] != "60" || tr.Spec.Metadata["metricEndTimeOffset"] != "60" {
		t.Fatalf("gateway trigger changed (%v): revisit the time shift", tr.Spec.Metadata)
	}
	_, params := readParams(t, filepath.Join(svctest.RepoRoot(t), "deploy", "kustomize", "params", "params.env"))
	namespace := params["CLOUDWATCH_NAMESPACE"]
	if !strings.Contains(tr.Spec.Metadata["expression"], `"`+namespace+`"`) {
		t.Fatalf("trigger expression %q does not read namespace %s", tr.Spec.Metadata["expression"], namespace)
	}
	return tr, namespace, containerEnv(t, objs, "webapi", "webapi")
}

// containerEnv is the plain-value env of a container of a rendered
// Deployment (valueFrom entries are left out).
func containerEnv(t *testing.T, objs []manifests.Object, deployment, container string) map[string]string {
	t.Helper()
	for _, o := range objs {
		if o.Kind != "Deployment" || o.Name != deployment {
			continue
		}
		var d struct {
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Name string
							Env  []struct{ Name, Value string }
						}
					}
				}
			}
		}
		if err := yaml.Unmarshal(o.YAML, &d); err != nil {
			t.Fatal(err)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == container {
				env := map[string]string{}
				for _, e := range c.Env {
					env[e.Name] = e.Value
				}
				return env
			}
		}
	}
	t.Fatalf("no container %s in Deployment %s", container, deployment)
	return nil
}

// withoutSumToGauge is a collector override that is the shipped
// transform/active_requests minus convert_sum_to_gauge(): everything else
// as shipped (a list replaces the whole list when configs merge).
func withoutSumToGauge(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(svctest.RepoRoot(t), "deploy", "collector", "cloudwatch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Processors map[string]struct {
			MetricStatements []map[string]any `json:"metric_statements"`
		}
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	stmts := cfg.Processors["transform/active_requests"].MetricStatements
	removed := 0
	for _, group := range stmts {
		list, _ := group["statements"].([]any)
		var kept []any
		for _, s := range list {
			if s == "convert_sum_to_gauge()" {
				removed++
				continue
			}
			kept = append(kept, s)
		}
		group["statements"] = kept
	}
	if removed != 1 {
		t.Fatalf("the shipped transform/active_requests has %d convert_sum_to_gauge() statements, want 1", removed)
	}
	b, err := yaml.Marshal(map[string]any{"processors": map[string]any{
		"transform/active_requests": map[string]any{"metric_statements": stmts},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return "# test only: the shipped statements minus convert_sum_to_gauge()\n" + string(b)
}

// postBurst sends n POSTs at once to webapi. webapi routes only GET
// /weatherforecast; a POST goes through the active-requests middleware
// (method POST) to the router's 405, so it is in flight next to the held
// GETs for a moment and leaves a POST datapoint (0) in every export after.
func postBurst(t *testing.T, url string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			resp, err := http.Post(url, "application/json", strings.NewReader(`{"city":"Seattle"}`))
			if err != nil {
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for _, c := range codes {
		if c != http.StatusMethodNotAllowed {
			t.Fatalf("POST %s answered %v, want 405 each", url, codes)
		}
	}
}

// The level: N GETs held in webapi (plus POSTs through the same middleware)
// → the shipped cloudwatch.yaml writes EMF records of
// http.server.active_requests whose value is N under exactly [Service];
// KEDA's aws-cloudwatch scaler, built from the gateway overlay's trigger
// with the seeds' expression (the SUM of the level), reads N for the one
// pod and the HPA asks ⌈N/2⌉. The same exports through the config minus its
// Sum→Gauge fix give no record for the first export and 0 after it, and
// KEDA reads 0.
//
// Time: the trigger reads the newest whole minute ending
// metricEndTimeOffset (60 s) before now. The stand-ins store every
// datapoint one minute earlier than sent (cwstandin.WithTimeShift, test-only),
// so a poll at T reads the minute that ended at T's minute start: complete,
// whatever the export interval (≤ 60 s) and whether the expression averages
// or sums the pod's samples. The test waits for the first whole minute
// under steady load to end and polls 10 s later (the batch processor holds
// data up to 5 s).
func TestEMFInFlightLevelFromWebapiThroughCollectorToKeda(t *testing.T) {
	if testing.Short() {
		t.Skip("runs webapi under load for up to ~2.5 minutes")
	}
	t.Parallel() // minutes of waiting each: the long signal tests overlap
	tr, namespace, rendered := gatewaySignal(t)
	if rendered["OTEL_METRICS_EXPORTER"] != "otlp" || rendered["OTEL_EXPORTER_OTLP_PROTOCOL"] != "http/protobuf" {
		t.Fatalf("gateway webapi exports %q over %q, want otlp http/protobuf", rendered["OTEL_METRICS_EXPORTER"], rendered["OTEL_EXPORTER_OTLP_PROTOCOL"])
	}
	interval, err := time.ParseDuration(rendered["OTEL_METRIC_EXPORT_INTERVAL"] + "ms")
	if err != nil || interval <= 0 || interval > time.Minute {
		t.Fatalf("gateway webapi OTEL_METRIC_EXPORT_INTERVAL %q: want 1..60000 ms (%v)", rendered["OTEL_METRIC_EXPORT_INTERVAL"], err)
	}

	cw := cwtest.New(t, cwstandin.WithTimeShift(-time.Minute))
	cwNoFix := cwtest.New(t, cwstandin.WithTimeShift(-time.Minute))
	cwEnv := map[string]string{"CLOUDWATCH_NAMESPACE": namespace}
	shipped := startCollector(t, "cloudwatch.yaml", "exporters:\n  awsemf:\n    endpoint: "+cw.URL+"\n", cwEnv)
	noFix := startCollector(t, "cloudwatch.yaml", "exporters:\n  awsemf:\n    endpoint: "+cwNoFix.URL+"\n"+withoutSumToGauge(t), cwEnv)
	tee := startOTLPTee(t, shipped, noFix)

	// A 60 s exporter ticks once a minute from webapi's start: keep the
	// ticks away from minute boundaries so each minute holds exactly one.
	if s := time.Now().Second(); s >= 55 || s < 2 {
		time.Sleep(time.Until(time.Now().Truncate(time.Minute).Add(time.Minute + 3*time.Second)))
	}
	webEnv := webapiEnv(t, rendered, tee.URL, "webapi-0", map[string]string{
		// Held until the client leaves; 20-30 s spreads the moments a GET
		// is answered and re-issued.
		"WEATHER_MIN_DELAY": "20s",
		"WEATHER_MAX_DELAY": "30s",
	})
	web := svctest.StartBinary(t, svctest.Build(t, "services/webapi"), webEnv)
	started := time.Now()
	webURL := "http://127.0.0.1:" + webEnv["PORT"]
	web.WaitReady(t, webURL)

	const inFlight, posts = 5, 3
	release, _ := holdRequests(t, webURL, []string{"/weatherforecast", "/weatherforecast?city=Seattle"}, inFlight)
	time.Sleep(300 * time.Millisecond) // the GETs reach the handler
	postBurst(t, webURL+"/weatherforecast", posts)
	steady := time.Now()
	if steady.Sub(started) >= interval {
		t.Logf("load steady %v after start, after the first export (interval %v)", steady.Sub(started), interval)
	}

	// The first minute wholly under steady load, and the poll after it.
	minute := steady.Truncate(time.Minute).Add(time.Minute)
	poll := minute.Add(time.Minute + 10*time.Second)
	if err := localproc.Poll(time.Until(poll)+10*time.Second, func() (bool, error) {
		select {
		case <-web.Done():
			return false, fmt.Errorf("webapi exited:\n%s", web.Output.String())
		default:
			return !time.Now().Before(poll), nil
		}
	}); err != nil {
		t.Fatal(err)
	}
	level := fmt.Sprintf(`SELECT SUM("%s") FROM SCHEMA("%s", Service)`, activeRequests, namespace)
	s, target, desired := localScaler(t, tr, map[string]string{"awsEndpoint": cw.URL, "expression": level, "targetMetricValue": "2"})
	sNoFix, _, _ := localScaler(t, tr, map[string]string{"awsEndpoint": cwNoFix.URL, "expression": level, "targetMetricValue": "2"})
	r, _ := waitKeda(t, s, time.Second, 5*time.Second, "a reading", func(kedascaler.Reading) bool { return true })
	rNoFix, _ := waitKeda(t, sNoFix, time.Second, 5*time.Second, "a reading", func(kedascaler.Reading) bool { return true })
	if now := time.Now(); !now.Truncate(time.Minute).Equal(minute.Add(time.Minute)) {
		t.Fatalf("poll at %v slipped out of the minute after %v (machine too slow)", now, minute)
	}
	exports, teeErrs := tee.snapshot()
	recs := emfRecords(t, cw, "/metrics/"+namespace, activeRequests)
	recsNoFix := emfRecords(t, cwNoFix, "/metrics/"+namespace, activeRequests)
	// Exports of the last seconds may still sit in the batch processor:
	// compare what was exported before the cutoff only.
	cutoff := time.Now().Add(-8 * time.Second)
	exports = slices.DeleteFunc(exports, func(e otlpExport) bool { return e.at.After(cutoff) })
	recs = slices.DeleteFunc(recs, func(r emfRecord) bool { return r.at.After(cutoff) })
	recsNoFix = slices.DeleteFunc(recsNoFix, func(r emfRecord) bool { return r.at.After(cutoff) })
	release()
	for _, e := range teeErrs {
		t.Error(e)
	}

	// What webapi sent: every export after the load was steady holds the
	// GETs and the POSTs' 0 as two datapoints.
	var steadyAt []time.Time
	for _, e := range exports {
		t.Logf("OTLP export %s: %s by method %v", e.at.Format(time.TimeOnly), activeRequests, e.byMethod)
		if e.at.After(steady) {
			steadyAt = append(steadyAt, e.at)
			if want := map[string]int64{"GET": inFlight, "POST": 0}; !reflect.DeepEqual(e.byMethod, want) {
				t.Errorf("export at %s: %v, want %v", e.at.Format(time.TimeOnly), e.byMethod, want)
			}
		}
	}
	if len(steadyAt) == 0 {
		t.Fatal("no OTLP export under steady load")
	}

	t.Run("shipped", func(t *testing.T) {
		checkEMFShape(t, recs, namespace, activeRequests, "Count")
		var values []float64
		for _, rec := range recs {
			values = append(values, rec.value)
			i := slices.IndexFunc(exports, func(e otlpExport) bool { return e.at.UnixMilli() == rec.at.UnixMilli() })
			if i < 0 {
				t.Errorf("EMF record at %s matches no OTLP export", rec.at.Format(time.TimeOnly))
			} else if rec.value != float64(exports[i].sum()) {
				t.Errorf("EMF record at %s: %v, want the level webapi sent, %d (%v)", rec.at.Format(time.TimeOnly), rec.value, exports[i].sum(), exports[i].byMethod)
			}
		}
		steadyRecs := 0
		for _, rec := range recs {
			if slices.ContainsFunc(steadyAt, func(at time.Time) bool { return at.UnixMilli() == rec.at.UnixMilli() }) {
				steadyRecs++
				if rec.value != inFlight {
					t.Errorf("EMF value %v under steady load, want %d in flight", rec.value, inFlight)
				}
			}
		}
		if steadyRecs != len(steadyAt) {
			t.Errorf("%d EMF records for %d steady exports, want one each", steadyRecs, len(steadyAt))
		}
		var bucket []float64
		for _, p := range cw.Datapoints() {
			if p.MetricName == activeRequests && !p.Timestamp.Before(minute.Add(-time.Minute)) && p.Timestamp.Before(minute) {
				bucket = append(bucket, p.Sum)
			}
		}
		up := desired(r.Value, 1)
		t.Logf("EMF values %v; minute KEDA read holds %v; KEDA (%s, %s %s) reads %v active=%v -> HPA desired %d from 1 pod",
			values, bucket, level, target.Type, scalemath.TargetString(target), r.Value, r.Active, up)
		if len(bucket) == 0 {
			t.Errorf("no datapoint in the minute KEDA read")
		}
		if r.Value != inFlight || !r.Active {
			t.Errorf("KEDA reads %v active=%v for %d in flight on one pod, want %d and active", r.Value, r.Active, inFlight, inFlight)
		}
		if want := int32(math.Ceil(inFlight / 2.0)); up != want {
			t.Errorf("HPA desired %d, want ceil(%d/2) = %d", up, inFlight, want)
		}
	})

	t.Run("without Sum to Gauge fix", func(t *testing.T) {
		checkEMFShape(t, recsNoFix, namespace, activeRequests, "Count")
		byTime := map[int64]float64{}
		var values []float64
		for _, rec := range recsNoFix {
			byTime[rec.at.UnixMilli()] = rec.value
			values = append(values, rec.value)
		}
		first := exports[0]
		if v, ok := byTime[first.at.UnixMilli()]; ok {
			t.Errorf("first export (level %d): EMF record %v, want none (awsemf drops the first point of a cumulative sum)", first.sum(), v)
		}
		if len(recsNoFix) != len(recs)-1 {
			t.Errorf("%d EMF records without the fix, %d with it; want one fewer", len(recsNoFix), len(recs))
		}
		for _, at := range steadyAt[1:] {
			v, ok := byTime[at.UnixMilli()]
			if !ok || v != 0 {
				t.Errorf("steady export at %s (%d in flight): EMF value %v (present %v), want the delta 0", at.Format(time.TimeOnly), inFlight, v, ok)
			}
		}
		bad := desired(rNoFix.Value, 1)
		t.Logf("EMF values without the fix %v (with it %d records); KEDA reads %v active=%v -> HPA desired %d for %d in flight",
			values, len(recs), rNoFix.Value, rNoFix.Active, bad, inFlight)
		if rNoFix.Value != 0 || rNoFix.Active {
			t.Errorf("KEDA reads %v active=%v without the fix, want the garbage 0", rNoFix.Value, rNoFix.Active)
		}
		if bad != tr.Min {
			t.Errorf("HPA desired %d without the fix, want the minimum %d", bad, tr.Min)
		}
	})
}
