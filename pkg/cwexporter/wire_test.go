package cwexporter

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
	"github.com/keda-eks-samples/workloads/pkg/testutil/cwtest"
)

// The wire tests run a real aws-sdk-go-v2 CloudWatch client against
// cwstandin's fake endpoint, which decodes the Smithy RPC v2 CBOR requests the
// SDK sends (see the cwstandin package documentation for what one looks like).

// newWireClient builds a client the way the service does (LoadDefaultConfig
// + NewClient) with static credentials and the fake as BaseEndpoint, which
// is what AWS_ENDPOINT_URL_CLOUDWATCH does in a deployment.
func newWireClient(t *testing.T, endpoint string, optFns ...func(*cloudwatch.Options)) *cloudwatch.Client {
	t.Helper()
	cwtest.ClearAWSEnv(t) // keep the developer's AWS environment out of the test
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

// failFirst answers the first n calls with 500, then 200.
func failFirst(n int) cwstandin.Option {
	return cwstandin.WithStatus(func(call int) int {
		if call <= n {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
}

// onlyDatum returns the single datum of a call and checks the envelope.
func onlyDatum(t *testing.T, c cwstandin.Call) cwstandin.Datum {
	t.Helper()
	if c.Namespace != DefaultNamespace {
		t.Errorf("Namespace = %q, want %q", c.Namespace, DefaultNamespace)
	}
	if len(c.Data) != 1 {
		t.Fatalf("MetricData = %+v, want one datum", c.Data)
	}
	d := c.Data[0]
	if d.MetricName != DefaultMetricName {
		t.Errorf("MetricName = %q, want %q", d.MetricName, DefaultMetricName)
	}
	if d.Unit != "Count/Second" {
		t.Errorf("Unit = %q, want Count/Second", d.Unit)
	}
	if want := map[string]string{"Host": "pod-1"}; !maps.Equal(d.Dimensions, want) {
		t.Errorf("Dimensions = %v, want %v", d.Dimensions, want)
	}
	return d
}

func TestWireExportDirect(t *testing.T) {
	fake := cwtest.New(t)
	e := newTestExporter(t, newWireClient(t, fake.URL))

	end := tA.Add(250 * time.Millisecond)
	rm := rmOf(hist(DefaultSourceMetric, hp(25, end.Add(-10*time.Second), end)))
	if err := e.Export(t.Context(), rm); err != nil {
		t.Fatal(err)
	}

	calls := fake.Calls()
	if len(calls) != 1 {
		t.Fatalf("got %d PutMetricData requests, want 1", len(calls))
	}
	t.Logf("headers: %v", calls[0].Header)
	t.Logf("body (%d bytes): %x\ndecoded: %s %+v", len(calls[0].Raw), calls[0].Raw, calls[0].Namespace, calls[0].Data)
	if got := calls[0].Header.Get("Amz-Sdk-Request"); got != "attempt=1; max=5" {
		t.Errorf("Amz-Sdk-Request = %q, want attempt=1; max=5 (NewClient's retryer)", got)
	}
	d := onlyDatum(t, calls[0])
	if d.Value != 2.5 {
		t.Errorf("Value = %v, want 2.5", d.Value)
	}
	if !d.Timestamp.Equal(end) {
		t.Errorf("Timestamp = %v, want %v", d.Timestamp, end)
	}
}

func TestWireMeterProvider(t *testing.T) {
	fake := cwtest.New(t)
	e := newTestExporter(t, newWireClient(t, fake.URL))

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
		calls := fake.Calls()
		if len(calls) != wantRequests {
			t.Fatalf("got %d PutMetricData requests, want %d", len(calls), wantRequests)
		}
		return onlyDatum(t, calls[len(calls)-1]).Value
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
	fake := cwtest.New(t, failFirst(failures))
	e := newTestExporter(t, newWireClient(t, fake.URL, fastRetries))

	if err := e.Export(t.Context(), rmOf(hist(DefaultSourceMetric, hp(25, t0, tA)))); err != nil {
		t.Fatalf("Export: %v", err)
	}
	calls := fake.Calls()
	if len(calls) != failures+1 {
		t.Fatalf("got %d attempts, want %d", len(calls), failures+1)
	}
	for i, c := range calls {
		if !bytes.Equal(c.Raw, calls[0].Raw) {
			t.Errorf("attempt %d body differs from the first", i+1)
		}
		if got := onlyDatum(t, c).Value; got != 2.5 {
			t.Errorf("attempt %d Value = %v, want 2.5", i+1, got)
		}
	}
	if got := calls[failures].Header.Get("Amz-Sdk-Request"); !strings.HasPrefix(got, "attempt=3;") {
		t.Errorf("last Amz-Sdk-Request = %q, want attempt=3", got)
	}
}

func TestWireGivesUpAfterMaxAttempts(t *testing.T) {
	fake := cwtest.New(t, cwstandin.WithStatus(func(int) int { return http.StatusInternalServerError }))
	e := newTestExporter(t, newWireClient(t, fake.URL, fastRetries))

	err := e.Export(t.Context(), rmOf(hist(DefaultSourceMetric, hp(25, t0, tA))))
	var fault *types.InternalServiceFault
	if !errors.As(err, &fault) {
		t.Fatalf("err = %v, want it to wrap *types.InternalServiceFault", err)
	}
	if n := len(fake.Calls()); n != ClientMaxAttempts {
		t.Fatalf("got %d attempts, want %d", n, ClientMaxAttempts)
	}
}

func TestWireContextCanceledStopsRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The first attempt cancels the export's context and fails. Without
	// fastRetries the SDK would back off for up to ClientMaxBackoff; it must
	// notice the cancellation instead of sleeping or retrying.
	fake := cwtest.New(t, cwstandin.WithStatus(func(int) int {
		cancel()
		return http.StatusInternalServerError
	}))
	e := newTestExporter(t, newWireClient(t, fake.URL))

	err := e.Export(ctx, rmOf(hist(DefaultSourceMetric, hp(25, t0, tA))))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := len(fake.Calls()); n != 1 {
		t.Fatalf("got %d attempts after cancellation, want 1", n)
	}
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
