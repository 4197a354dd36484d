package main

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/cwtest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

// These tests run webapi in process with OTEL_METRICS_EXPORTER=cloudwatch
// against cwstandin's fake CloudWatch and check what KEDA's aws-cloudwatch
// trigger would read: one RequestPerSecond datum per export interval whose
// Value, multiplied by its window, is the number of requests the app handler
// served in that window.
//
// What the wire tells and how precisely (cwexporter and the OTel SDK):
//   - Each PutMetricData carries one datum. With traffic, its Timestamp is the
//     end of the window (the SDK's collection time) and Value is the request
//     count divided by the exact window; the delta windows are chained, each
//     starting where the previous collection ended, the first at the creation
//     of otelhttp's histogram, which run does before it listens.
//   - Without traffic the datum is 0, timestamped when the exporter runs,
//     just after the collection.
//   - The SDK truncates timestamps to whole milliseconds on the wire, so a
//     window taken from two timestamps is only known to within ±1ms. Value ×
//     window therefore matches the count to within Value × 1ms, not to 1e-6;
//     the count being a whole number is what makes the check exact.

const (
	testNamespace = "TestNamespace"
	testPod       = "pod-under-test"
	wireTick      = time.Millisecond // timestamp resolution on the wire
	relTolerance  = 1e-6             // floating-point slack on Value × window
)

// startWithCloudWatch runs webapi with the CloudWatch exporter pointed at a
// fresh fake, and returns the times just before starting it and just after
// it answered /readyz.
func startWithCloudWatch(t *testing.T, intervalMillis string) (s *svctest.Service, cw *cwtest.Server, beforeStart, started time.Time) {
	t.Helper()
	cw = cwtest.New(t)
	cwtest.ClearAWSEnv(t) // the SDK reads AWS_CONFIG_FILE, AWS_PROFILE, AWS_MAX_ATTEMPTS, ... from the process
	t.Setenv("OTEL_METRICS_EXPORTER", "cloudwatch")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", intervalMillis)
	t.Setenv("OTEL_METRIC_EXPORT_TIMEOUT", "")
	env := svctest.Env(t, map[string]string{
		"AWS_ENDPOINT_URL_CLOUDWATCH": cw.URL,
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"POD_NAME":                    testPod,
		"CLOUDWATCH_NAMESPACE":        testNamespace,
		"WEATHER_MAX_DELAY":           "0s",
	})
	beforeStart = time.Now()
	s = svctest.Start(t, run, env)
	return s, cw, beforeStart, time.Now()
}

// request sends one request and checks its status.
func request(t *testing.T, method, url string, want int) {
	t.Helper()
	if got, body := svctest.Do(t, method, url, "", nil); got != want {
		t.Fatalf("%s %s: %d %q, want %d", method, url, got, body, want)
	}
}

// probe hits both probes, which are served outside the app handler and must
// not count as traffic.
func probe(t *testing.T, s *svctest.Service) {
	t.Helper()
	request(t, http.MethodGet, s.URL+"/healthz", http.StatusOK)
	request(t, http.MethodGet, s.URL+"/readyz", http.StatusOK)
}

// requestRate checks the envelope of a call and returns its datum.
func requestRate(t *testing.T, i int, c cwstandin.Call) cwstandin.Datum {
	t.Helper()
	if c.Namespace != testNamespace {
		t.Errorf("call %d: Namespace = %q, want %q", i+1, c.Namespace, testNamespace)
	}
	if len(c.Data) != 1 {
		t.Fatalf("call %d: %d datums %+v, want exactly one", i+1, len(c.Data), c.Data)
	}
	d := c.Data[0]
	if d.MetricName != "RequestPerSecond" || d.Unit != "Count/Second" {
		t.Errorf("call %d: %s in %q, want RequestPerSecond in Count/Second", i+1, d.MetricName, d.Unit)
	}
	if want := map[string]string{"Host": testPod}; !maps.Equal(d.Dimensions, want) {
		t.Errorf("call %d: Dimensions = %v, want %v", i+1, d.Dimensions, want)
	}
	if math.IsNaN(d.Value) || d.Value < 0 {
		t.Errorf("call %d: Value = %v, want a rate >= 0", i+1, d.Value)
	}
	return d
}

func TestRequestPerSecondReachesCloudWatchOncePerInterval(t *testing.T) {
	// One interval of an hour: the only export is the flush at shutdown.
	s, cw, beforeStart, started := startWithCloudWatch(t, "3600000")

	// Every request through the app handler counts, whatever its status;
	// the probes in between do not.
	first := time.Now()
	requests := 0
	for range 40 {
		request(t, http.MethodGet, s.URL+"/weatherforecast", http.StatusOK)
		requests++
		probe(t, s)
	}
	for range 3 {
		request(t, http.MethodGet, s.URL+"/", http.StatusOK)
		requests++
	}
	request(t, http.MethodGet, s.URL+"/nope", http.StatusNotFound)
	request(t, http.MethodPost, s.URL+"/weatherforecast", http.StatusMethodNotAllowed)
	requests += 2
	last := time.Now()

	if n := len(cw.Calls()); n != 0 {
		t.Fatalf("%d PutMetricData calls before the interval ended, want 0", n)
	}
	if err := s.Stop(t); err != nil { // cancelling run's ctx is the SIGTERM path
		t.Fatalf("stop: %v\n%s", err, s.Output)
	}
	afterStop := time.Now()

	calls := cw.Calls()
	if len(calls) != 1 {
		t.Fatalf("got %d PutMetricData calls, want exactly 1 (one interval)\n%s", len(calls), s.Output)
	}
	d := requestRate(t, 0, calls[0])

	// The window runs from the histogram's creation (during start-up) to
	// the collection at shutdown, so it contains [first, last] and lies in
	// [beforeStart, afterStop].
	lo := float64(requests) / afterStop.Sub(beforeStart).Seconds()
	hi := float64(requests) / last.Sub(first).Seconds()
	t.Logf("%d requests: Value %.3f/s, bounds [%.3f, %.3f]", requests, d.Value, lo, hi)
	if d.Value < lo*(1-relTolerance) || d.Value > hi*(1+relTolerance) {
		t.Errorf("Value = %v/s, want %d requests over a window of %v..%v: [%v, %v]",
			d.Value, requests, last.Sub(first), afterStop.Sub(beforeStart), lo, hi)
	}
	// The Timestamp is the end of that window (truncated to the ms), which
	// narrows Value × window down further. Start-up still dominates the
	// uncertainty (tens of requests at in-process speed), so this test cannot
	// tell whether svctest.Start's readiness polls were counted;
	// TestCloudWatchWindowsCountEveryRequestOnce shows exactly that they
	// are not.
	if d.Timestamp.Before(last.Truncate(wireTick)) || d.Timestamp.After(afterStop) {
		t.Errorf("Timestamp = %v, want the shutdown collection in [%v, %v]", d.Timestamp, last, afterStop)
	}
	minCount := d.Value * d.Timestamp.Sub(started).Seconds()
	maxCount := d.Value * d.Timestamp.Add(wireTick).Sub(beforeStart).Seconds()
	t.Logf("Value × window: [%.3f, %.3f]", minCount, maxCount)
	if f := float64(requests); f < minCount*(1-relTolerance) || f > maxCount*(1+relTolerance) {
		t.Errorf("Value × window = [%.3f, %.3f], want it to contain the %d requests", minCount, maxCount, requests)
	}
}

// window is what the calls say about the requests counted in one export
// window: between minCount and maxCount, both derived from Value × window.
type window struct {
	value              float64
	stamp              time.Time
	minCount, maxCount float64
}

// integers returns the whole numbers in [w.minCount, w.maxCount], widened by
// the floating-point tolerance.
func (w window) integers() (lo, hi int) {
	return int(math.Ceil(w.minCount - relTolerance*math.Max(1, w.minCount))),
		int(math.Floor(w.maxCount + relTolerance*math.Max(1, w.maxCount)))
}

// exact reports whether the window pins its request count down to one
// whole number.
func (w window) exact() bool { lo, hi := w.integers(); return lo == hi }

// windows bounds the request count of every call's window. The end of
// window k (collection time c_k) is known to lie in [cLo, cHi]:
//   - c_0, the histogram's creation, is in [beforeStart, started];
//   - with traffic, c_k is the Timestamp, truncated on the wire: [T, T+1ms);
//   - without traffic, the Timestamp is taken just after the collection, so
//     c_k < T+1ms, and c_k is after c_{k-1}; a periodic export (all calls but
//     the shutdown flush) also runs no earlier than k intervals after the
//     reader was created, since a time.Ticker never fires early.
//
// A window's count is then Value × (c_k - c_{k-1}) for c_{k-1} and c_k
// anywhere in those ranges.
func windows(calls []cwstandin.Call, beforeStart, started time.Time, interval time.Duration, lastIsShutdown bool) []window {
	cLo, cHi := beforeStart, started
	ws := make([]window, 0, len(calls))
	for k, c := range calls {
		d := c.Data[0]
		w := window{value: d.Value, stamp: d.Timestamp}
		if d.Value == 0 {
			next := cLo
			if tick := beforeStart.Add(time.Duration(k+1) * interval); tick.After(next) && (k < len(calls)-1 || !lastIsShutdown) {
				next = tick
			}
			cLo, cHi = next, d.Timestamp.Add(wireTick)
		} else {
			w.minCount = d.Value * d.Timestamp.Sub(cHi).Seconds()
			w.maxCount = d.Value * d.Timestamp.Add(wireTick).Sub(cLo).Seconds()
			cLo, cHi = d.Timestamp, d.Timestamp.Add(wireTick)
		}
		ws = append(ws, w)
	}
	return ws
}

func describe(ws []window) string {
	var b strings.Builder
	for k, w := range ws {
		lo, hi := w.integers()
		fmt.Fprintf(&b, "  call %d: %s Value %.4f/s -> %.3f..%.3f requests (whole: %d..%d)\n",
			k+1, w.stamp.Format("15:04:05.000"), w.value, w.minCount, w.maxCount, lo, hi)
	}
	return b.String()
}

func TestCloudWatchWindowsCountEveryRequestOnce(t *testing.T) {
	const interval = 200 * time.Millisecond
	s, cw, beforeStart, started := startWithCloudWatch(t, "200")
	poll := func(what string, cond func() bool) {
		t.Helper()
		if err := localproc.Poll(30*time.Second, func() (bool, error) { return cond(), nil }); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, s.Output)
		}
	}

	// Until the first export only probes arrive, on top of svctest.Start's
	// readiness polls: the first window has no app traffic and publishes 0.
	poll("first export", func() bool {
		probe(t, s)
		return len(cw.Calls()) >= 1
	})
	if d := requestRate(t, 0, cw.Calls()[0]); d.Value != 0 {
		t.Fatalf("first interval (probes only): Value = %v, want 0", d.Value)
	}

	// The second window starts at that idle export, whose collection time is
	// known only to within the start-up time (see windows). One request alone
	// keeps that window's Value, and so Value × the uncertainty, small.
	request(t, http.MethodGet, s.URL+"/weatherforecast", http.StatusOK)
	requests := 1
	poll("second export", func() bool {
		probe(t, s)
		return len(cw.Calls()) >= 2
	})

	// Then app traffic, one request per poll round (Poll pauses 20ms between
	// rounds, which keeps the rate low enough for Value × 1ms to stay well
	// below one request), until two more windows pin their count down.
	paths := []struct {
		path   string
		status int
	}{{"/weatherforecast", 200}, {"/", 200}, {"/weatherforecast", 200}, {"/nope", 404}}
	poll("two exactly counted windows", func() bool {
		p := paths[requests%len(paths)]
		request(t, http.MethodGet, s.URL+p.path, p.status)
		requests++
		probe(t, s)
		calls := cw.Calls()
		for i, c := range calls {
			requestRate(t, i, c)
		}
		exact := 0
		for _, w := range windows(calls, beforeStart, started, interval, false)[2:] {
			if w.value > 0 && w.exact() {
				exact++
			}
		}
		return exact >= 2
	})
	if err := s.Stop(t); err != nil {
		t.Fatalf("stop: %v\n%s", err, s.Output)
	}

	calls := cw.Calls()
	for i, c := range calls {
		requestRate(t, i, c)
		// Two collections can fall into one millisecond (a tick just before
		// the shutdown flush), so only order, not strict order.
		if i > 0 && c.Data[0].Timestamp.Before(calls[i-1].Data[0].Timestamp) {
			t.Errorf("call %d: Timestamp %v before the previous %v", i+1, c.Data[0].Timestamp, calls[i-1].Data[0].Timestamp)
		}
	}
	ws := windows(calls, beforeStart, started, interval, true)
	t.Logf("%d requests in %d calls:\n%s", requests, len(calls), describe(ws))

	// Each window holds a whole number of requests, and together they hold
	// every request exactly once.
	minTotal, maxTotal, exact := 0, 0, 0
	for k, w := range ws {
		lo, hi := w.integers()
		if lo > hi {
			t.Errorf("call %d: Value × window = %.4f..%.4f holds no whole number of requests", k+1, w.minCount, w.maxCount)
		}
		if w.value > 0 && lo == hi {
			exact++
		}
		minTotal += lo
		maxTotal += hi
	}
	if requests < minTotal || requests > maxTotal {
		t.Errorf("the windows hold %d..%d requests, want the %d made", minTotal, maxTotal, requests)
	}
	if exact < 2 {
		t.Errorf("%d windows with traffic and an exact count, want at least 2", exact)
	}
}
