package cwexporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/encoding/cbor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// The wire tests run a real aws-sdk-go-v2 CloudWatch client against an
// httptest server that speaks Smithy RPC v2 CBOR, the protocol the SDK uses
// for CloudWatch. What the SDK sends for one datum (observed with
// TestWireExportDirect -v):
//
//	POST /service/GraniteServiceVersion20100801/operation/PutMetricData
//	Content-Type: application/cbor, Accept: application/cbor,
//	Smithy-Protocol: rpc-v2-cbor, X-Amzn-Query-Mode: true,
//	Amz-Sdk-Request: attempt=1; max=5, SigV4 for service "monitoring"
//	body (indefinite-length CBOR maps/lists):
//	{"MetricData": [{"Dimensions": [{"Name": "Host", "Value": "pod-1"}],
//	  "MetricName": "RequestPerSecond", "Timestamp": 1(<float64 epoch s>),
//	  "Unit": "Count/Second", "Value": 2.5}],
//	 "Namespace": "MyApiNamespace"}

const putMetricDataPath = "/service/GraniteServiceVersion20100801/operation/PutMetricData"

type wireRequest struct {
	header http.Header
	raw    []byte // body as sent (gunzipped if compressed)
	body   cbor.Map
}

// fakeCloudWatch records PutMetricData requests. respond picks the HTTP
// status for the n-th request (1-based); nil means always 200.
type fakeCloudWatch struct {
	t       *testing.T
	srv     *httptest.Server
	respond func(n int, r *http.Request) int

	mu   sync.Mutex
	reqs []wireRequest
}

func newFakeCloudWatch(t *testing.T, respond func(n int, r *http.Request) int) *fakeCloudWatch {
	t.Helper()
	f := &fakeCloudWatch{t: t, respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCloudWatch) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// Only t.Errorf here: this runs on the server's goroutine.
	if r.Method != http.MethodPost || r.URL.Path != putMetricDataPath {
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Smithy-Protocol"); got != "rpc-v2-cbor" {
		f.t.Errorf("Smithy-Protocol = %q, want rpc-v2-cbor", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/cbor" {
		f.t.Errorf("Content-Type = %q, want application/cbor", got)
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" { // SDK compresses bodies ≥ 10 KiB
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			f.t.Errorf("gzip: %v", err)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		f.t.Errorf("read body: %v", err)
		return
	}
	v, err := cbor.Decode(raw)
	if err != nil {
		f.t.Errorf("decode CBOR body: %v", err)
	}
	m, _ := v.(cbor.Map)

	f.mu.Lock()
	f.reqs = append(f.reqs, wireRequest{header: r.Header.Clone(), raw: raw, body: m})
	n := len(f.reqs)
	f.mu.Unlock()

	status := http.StatusOK
	if f.respond != nil {
		status = f.respond(n, r)
	}
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	if status == http.StatusOK {
		w.WriteHeader(status)
		_, _ = w.Write(cbor.Encode(cbor.Map{})) // PutMetricDataOutput has no members
		return
	}
	w.Header().Set("X-Amzn-Query-Error", "InternalServiceError;Receiver")
	w.WriteHeader(status)
	_, _ = w.Write(cbor.Encode(cbor.Map{
		"__type":  cbor.String("com.amazonaws.cloudwatch#InternalServiceFault"),
		"message": cbor.String("injected failure"),
	}))
}

func (f *fakeCloudWatch) requests() []wireRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wireRequest(nil), f.reqs...)
}

// newWireClient builds a client the way the service does (LoadDefaultConfig
// + NewClient) with static credentials and the fake as BaseEndpoint, which
// is what AWS_ENDPOINT_URL_CLOUDWATCH does in a deployment.
func newWireClient(t *testing.T, endpoint string, optFns ...func(*cloudwatch.Options)) *cloudwatch.Client {
	t.Helper()
	// Keep the developer's AWS environment out of the test.
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	for _, k := range []string{
		"AWS_PROFILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_NEW_RETRIES_2026",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
		"AWS_DISABLE_REQUEST_COMPRESSION", "AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES",
	} {
		t.Setenv(k, "")
	}
	cfg, err := config.LoadDefaultConfig(t.Context(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		config.WithBaseEndpoint(endpoint),
	)
	if err != nil {
		t.Fatal(err)
	}
	return NewClient(cfg, optFns...)
}

// fastRetries keeps NewClient's retryer (and its MaxAttempts) but shortens
// the backoff so retry tests do not sleep for seconds.
func fastRetries(o *cloudwatch.Options) {
	o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, time.Millisecond)
}

// onlyDatum returns the single datum of a request and checks the envelope.
func onlyDatum(t *testing.T, req wireRequest) cbor.Map {
	t.Helper()
	if ns := req.body["Namespace"]; ns != cbor.String(DefaultNamespace) {
		t.Errorf("Namespace = %#v, want %q", ns, DefaultNamespace)
	}
	list, ok := req.body["MetricData"].(cbor.List)
	if !ok || len(list) != 1 {
		t.Fatalf("MetricData = %#v, want a list with one datum", req.body["MetricData"])
	}
	d, ok := list[0].(cbor.Map)
	if !ok {
		t.Fatalf("datum is %T, want a map", list[0])
	}
	if got := d["MetricName"]; got != cbor.String(DefaultMetricName) {
		t.Errorf("MetricName = %#v, want %q", got, DefaultMetricName)
	}
	if got := d["Unit"]; got != cbor.String("Count/Second") {
		t.Errorf("Unit = %#v, want Count/Second", got)
	}
	dims, _ := d["Dimensions"].(cbor.List)
	if len(dims) != 1 {
		t.Fatalf("Dimensions = %#v, want one", d["Dimensions"])
	}
	if dim, _ := dims[0].(cbor.Map); dim["Name"] != cbor.String("Host") || dim["Value"] != cbor.String("pod-1") {
		t.Errorf("dimension = %#v, want Host=pod-1", dims[0])
	}
	return d
}

func cborFloat(t *testing.T, v cbor.Value) float64 {
	t.Helper()
	switch n := v.(type) {
	case cbor.Float64:
		return float64(n)
	case cbor.Float32:
		return float64(n)
	case cbor.Uint:
		return float64(n)
	case cbor.NegInt:
		return -1 - float64(n)
	}
	t.Fatalf("%#v is not a CBOR number", v)
	return 0
}

// cborTime decodes a Smithy timestamp: tag 1 around epoch seconds.
func cborTime(t *testing.T, v cbor.Value) time.Time {
	t.Helper()
	tag, ok := v.(*cbor.Tag)
	if !ok || tag.ID != 1 {
		t.Fatalf("timestamp %#v is not CBOR tag 1", v)
	}
	sec, frac := math.Modf(cborFloat(t, tag.Value))
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond))
}

func newWireExporter(t *testing.T, client PutMetricDataAPI) *Exporter {
	t.Helper()
	e, err := New(Config{Client: client, Host: "pod-1"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestWireExportDirect(t *testing.T) {
	fake := newFakeCloudWatch(t, nil)
	e := newWireExporter(t, newWireClient(t, fake.srv.URL))

	end := tA.Add(250 * time.Millisecond)
	rm := rmOf(hist(DefaultSourceMetric, hp(25, end.Add(-10*time.Second), end)))
	if err := e.Export(t.Context(), rm); err != nil {
		t.Fatal(err)
	}

	reqs := fake.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d PutMetricData requests, want 1", len(reqs))
	}
	t.Logf("headers: %v", reqs[0].header)
	t.Logf("body (%d bytes): %x\ndecoded: %#v", len(reqs[0].raw), reqs[0].raw, reqs[0].body)
	if got := reqs[0].header.Get("Amz-Sdk-Request"); got != "attempt=1; max=5" {
		t.Errorf("Amz-Sdk-Request = %q, want attempt=1; max=5 (NewClient's retryer)", got)
	}
	d := onlyDatum(t, reqs[0])
	if got := cborFloat(t, d["Value"]); got != 2.5 {
		t.Errorf("Value = %v, want 2.5", got)
	}
	if got := cborTime(t, d["Timestamp"]); !got.Equal(end) {
		t.Errorf("Timestamp = %v, want %v", got, end)
	}
}

func TestWireMeterProvider(t *testing.T) {
	fake := newFakeCloudWatch(t, nil)
	e := newWireExporter(t, newWireClient(t, fake.srv.URL))

	// A long interval: only ForceFlush and Shutdown export.
	reader := sdkmetric.NewPeriodicReader(e, sdkmetric.WithInterval(time.Hour))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	hist, err := mp.Meter("otelhttp-stand-in").Float64Histogram(DefaultSourceMetric, metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	record := func(n int) {
		routes := []string{"/orders", "/orders/{id}", "/healthz"}
		for i := range n {
			hist.Record(t.Context(), 0.01*float64(i+1), metric.WithAttributes(
				attribute.String("http.route", routes[i%len(routes)]),
				attribute.Int("http.response.status_code", 200+100*(i%4)),
			))
		}
	}
	lastValue := func(wantRequests int) float64 {
		t.Helper()
		reqs := fake.requests()
		if len(reqs) != wantRequests {
			t.Fatalf("got %d PutMetricData requests, want %d", len(reqs), wantRequests)
		}
		return cborFloat(t, onlyDatum(t, reqs[len(reqs)-1])["Value"])
	}

	record(7)
	if err := mp.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := lastValue(1); v <= 0 {
		t.Errorf("first flush: Value = %v, want > 0", v)
	}

	record(3)
	if err := mp.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := lastValue(2); v <= 0 {
		t.Errorf("second flush: Value = %v, want > 0", v)
	}

	// No requests since the last flush: the delta stream is dropped by the
	// SDK and the exporter reports 0 so the autoscaler sees traffic stop.
	if err := mp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := lastValue(3); v != 0 {
		t.Errorf("idle shutdown flush: Value = %v, want 0", v)
	}

	// The reader shut the exporter down.
	if err := e.Export(t.Context(), nil); !errors.Is(err, sdkmetric.ErrExporterShutdown) {
		t.Fatalf("Export after Shutdown: err = %v, want ErrExporterShutdown", err)
	}
	lastValue(3)
}

func TestWireRetriesServerError(t *testing.T) {
	const failures = 2
	fake := newFakeCloudWatch(t, func(n int, _ *http.Request) int {
		if n <= failures {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	e := newWireExporter(t, newWireClient(t, fake.srv.URL, fastRetries))

	if err := e.Export(t.Context(), rmOf(hist(DefaultSourceMetric, hp(25, t0, tA)))); err != nil {
		t.Fatalf("Export: %v", err)
	}
	reqs := fake.requests()
	if len(reqs) != failures+1 {
		t.Fatalf("got %d attempts, want %d", len(reqs), failures+1)
	}
	for i, r := range reqs {
		if !bytes.Equal(r.raw, reqs[0].raw) {
			t.Errorf("attempt %d body differs from the first", i+1)
		}
		if got := cborFloat(t, onlyDatum(t, r)["Value"]); got != 2.5 {
			t.Errorf("attempt %d Value = %v, want 2.5", i+1, got)
		}
	}
	if got := reqs[failures].header.Get("Amz-Sdk-Request"); !strings.HasPrefix(got, "attempt=3;") {
		t.Errorf("last Amz-Sdk-Request = %q, want attempt=3", got)
	}
}

func TestWireGivesUpAfterMaxAttempts(t *testing.T) {
	fake := newFakeCloudWatch(t, func(int, *http.Request) int { return http.StatusInternalServerError })
	e := newWireExporter(t, newWireClient(t, fake.srv.URL, fastRetries))

	err := e.Export(t.Context(), rmOf(hist(DefaultSourceMetric, hp(25, t0, tA))))
	var fault *types.InternalServiceFault
	if !errors.As(err, &fault) {
		t.Fatalf("err = %v, want it to wrap *types.InternalServiceFault", err)
	}
	if n := len(fake.requests()); n != ClientMaxAttempts {
		t.Fatalf("got %d attempts, want %d", n, ClientMaxAttempts)
	}
}

func TestWireContextCanceledStopsRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The first attempt cancels the export's context and fails. Without
	// fastRetries the SDK would back off for up to ClientMaxBackoff; it must
	// notice the cancellation instead of sleeping or retrying.
	fake := newFakeCloudWatch(t, func(int, *http.Request) int {
		cancel()
		return http.StatusInternalServerError
	})
	e := newWireExporter(t, newWireClient(t, fake.srv.URL))

	err := e.Export(ctx, rmOf(hist(DefaultSourceMetric, hp(25, t0, tA))))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := len(fake.requests()); n != 1 {
		t.Fatalf("got %d attempts after cancellation, want 1", n)
	}
}

func TestWireExportAfterShutdown(t *testing.T) {
	fake := newFakeCloudWatch(t, nil)
	e := newWireExporter(t, newWireClient(t, fake.srv.URL))
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	err := e.Export(t.Context(), rmOf(hist(DefaultSourceMetric, hp(25, t0, tA))))
	if !errors.Is(err, sdkmetric.ErrExporterShutdown) {
		t.Fatalf("err = %v, want ErrExporterShutdown", err)
	}
	if n := len(fake.requests()); n != 0 {
		t.Fatalf("got %d requests after Shutdown, want 0", n)
	}
}

// TestWireSizeEstimateIsUpperBound checks datumSize/requestOverhead, which
// drive chunking, against what the SDK actually puts on the wire.
func TestWireSizeEstimateIsUpperBound(t *testing.T) {
	fake := newFakeCloudWatch(t, nil)
	client := newWireClient(t, fake.srv.URL, func(o *cloudwatch.Options) {
		o.DisableRequestCompression = true // measure the plain CBOR body
	})
	e := newWireExporter(t, client)

	small := e.datum(2.5, tA)
	for name, data := range map[string][]types.MetricDatum{
		"one small datum":   {small},
		"20 large datums":   repeat(bigDatum(), 20),
		"mixed and sparse":  {small, {MetricName: aws.String("x")}, bigDatum(), small},
		"1000 small datums": repeat(small, maxDatumsPerCall),
	} {
		before := len(fake.requests())
		if err := e.publish(t.Context(), data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		reqs := fake.requests()[before:]
		if len(reqs) != 1 {
			t.Fatalf("%s: got %d requests, want 1", name, len(reqs))
		}
		est := requestOverhead(e.namespace)
		for _, d := range data {
			est += datumSize(d)
		}
		got := len(reqs[0].raw)
		t.Logf("%s: wire %d bytes, estimate %d", name, got, est)
		if est < got {
			t.Errorf("%s: estimate %d is below the wire size %d", name, est, got)
		}
	}
}

func repeat(d types.MetricDatum, n int) []types.MetricDatum {
	out := make([]types.MetricDatum, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestNewClientRetrySettings(t *testing.T) {
	c := newWireClient(t, "http://127.0.0.1:1")
	r := c.Options().Retryer
	if got := r.MaxAttempts(); got != ClientMaxAttempts {
		t.Errorf("MaxAttempts = %d, want %d", got, ClientMaxAttempts)
	}
	// Far past the cap, the standard backoff returns exactly MaxBackoff.
	if got, err := r.RetryDelay(30, errors.New("x")); err != nil || got != ClientMaxBackoff {
		t.Errorf("RetryDelay(30) = %v, %v; want %v", got, err, ClientMaxBackoff)
	}
}
