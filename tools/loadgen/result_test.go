package loadgen

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPercentileInterpolatesBetweenClosestRanks(t *testing.T) {
	for _, tt := range []struct {
		vals []float64
		p    float64
		want float64
	}{
		{nil, 95, 0},
		{[]float64{7}, 95, 7},
		{[]float64{1, 2, 3, 4}, 50, 2.5},
		{[]float64{1, 2, 3, 4}, 0, 1},
		{[]float64{1, 2, 3, 4}, 100, 4},
		{[]float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 95, 95},
	} {
		if got := Percentile(tt.vals, tt.p); got != tt.want {
			t.Errorf("p(%v) of %v = %v, want %v", tt.p, tt.vals, got, tt.want)
		}
	}
}

func result(samples ...Sample) *Result {
	r := &Result{Elapsed: 10 * time.Second}
	for _, s := range samples {
		r.add(s)
	}
	return r
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestCheckEvaluatesK6Thresholds(t *testing.T) {
	var samples []Sample
	for i := range 20 { // slow: 100..2000 ms, p(95) = 1905
		samples = append(samples, Sample{Name: "slow", Status: 200, Expected: 200, Duration: ms(100 * (i + 1))})
	}
	for range 19 {
		samples = append(samples, Sample{Name: "fast", Status: 200, Expected: 200, Duration: ms(5)})
	}
	samples = append(samples, Sample{Name: "fast", Status: 503, Expected: 200, Duration: ms(5)})
	r := result(samples...)
	for _, tt := range []struct {
		metric, expr string
		ok           bool
	}{
		{"http_req_failed", "rate<0.05", true}, // 1 of 40
		{"http_req_failed", "rate<0.01", false},
		{"http_req_failed{name:slow}", "rate==0", true},
		{"checks", "rate>0.99", false},
		{"checks{name:slow}", "rate>0.99", true},
		{"http_req_duration{name:slow}", "p(95)<2000", true},
		{"http_req_duration{name:slow}", "p(95)<1900", false},
		{"http_req_duration{name:fast}", "max<=5", true},
		{"http_req_duration", "med<50", false}, // 20 at 5 ms, 20 from 100 ms: (5+100)/2 = 52.5
		{"http_reqs", "count>=40", true},
		{"http_reqs", "rate>5", false}, // 40 in 10 s
		{"http_req_duration{name:nothing}", "p(95)<1", false},
	} {
		out, err := r.Check(map[string][]string{tt.metric: {tt.expr}})
		if err != nil {
			t.Fatalf("%s %s: %v", tt.metric, tt.expr, err)
		}
		if len(out) != 1 || out[0].OK != tt.ok {
			t.Errorf("%s %s: %v, want ok=%v", tt.metric, tt.expr, out, tt.ok)
		}
	}
}

func TestThresholdsK6WouldRejectAreRejected(t *testing.T) {
	for _, tt := range []struct{ metric, expr, want string }{
		{"http_req_duraton", "p(95)<1", "not one of k6's built-in metrics"},
		{"http_req_failed", "p(95)<1", "takes rate"},
		{"http_req_duration", "p95<1", "not of the form"},
		{"http_req_duration{status:200}", "p(95)<1", "not of the form"},
	} {
		_, err := parseThreshold(tt.metric, tt.expr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %s: %v, want an error containing %q", tt.metric, tt.expr, err, tt.want)
		}
	}
	// Valid for k6, but not measured by a Go run: Check says so.
	if _, err := result(Sample{Name: "x"}).Check(map[string][]string{"dropped_iterations": {"count<10"}}); err == nil {
		t.Error("Check accepted a metric it does not measure")
	}
}

func TestFailedFollowsK6sExpectedStatuses(t *testing.T) {
	for _, tt := range []struct {
		s      Sample
		failed bool
	}{
		{Sample{Status: 200}, false},
		{Sample{Status: 302}, false},
		{Sample{Status: 404}, true},
		{Sample{Status: 0, Err: errors.New("refused")}, true},
	} {
		if tt.s.Failed() != tt.failed {
			t.Errorf("%+v: failed=%v", tt.s, !tt.failed)
		}
	}
}
