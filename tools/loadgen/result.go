package loadgen

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sample is one request as k6 would record it.
type Sample struct {
	Name     string        // the request's name tag
	Status   int           // 0 when the request failed before a response
	Duration time.Duration // http_req_duration
	Err      error
	Expected int // the status the profile's check expects
}

// Failed is k6's http_req_failed: an error or a status outside 200–399 (k6's
// default expected statuses).
func (s Sample) Failed() bool { return s.Err != nil || s.Status < 200 || s.Status > 399 }

// CheckOK is the script's check: the status the profile expects.
func (s Sample) CheckOK() bool { return s.Err == nil && s.Status == s.Expected }

// Result is every request of a run.
type Result struct {
	mu      sync.Mutex
	samples []Sample
	Elapsed time.Duration
}

func (r *Result) add(s Sample) {
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

// Samples returns a copy of the samples, optionally only those named name.
func (r *Result) Samples(name string) []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Sample
	for _, s := range r.samples {
		if name == "" || s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Count is the number of requests named name ("" for all).
func (r *Result) Count(name string) int { return len(r.Samples(name)) }

// Outcome is one threshold evaluated.
type Outcome struct {
	Metric string  // as written in the profile, e.g. http_req_duration{name:hello}
	Expr   string  // e.g. p(95)<2000
	Value  float64 // the measured left-hand side (ms for durations)
	N      int     // samples it was computed from
	OK     bool
}

func (o Outcome) String() string {
	verdict := "ok"
	if !o.OK {
		verdict = "FAILED"
	}
	return fmt.Sprintf("%s %s: %.4g over %d samples: %s", o.Metric, o.Expr, o.Value, o.N, verdict)
}

// Check evaluates k6 thresholds on the result. Supported: http_req_failed
// and checks (rate), http_req_duration (avg, min, med, max, p(N); in ms),
// http_reqs (count, rate), each optionally restricted to a name tag
// ({name:x}). Unlike k6, a threshold on a metric without samples fails:
// a replay that never sent a request proves nothing.
func (r *Result) Check(thresholds map[string][]string) ([]Outcome, error) {
	var out []Outcome
	metrics := make([]string, 0, len(thresholds))
	for m := range thresholds {
		metrics = append(metrics, m)
	}
	slices.Sort(metrics)
	for _, metric := range metrics {
		for _, expr := range thresholds[metric] {
			th, err := parseThreshold(metric, expr)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(measured, th.metric) {
				return nil, fmt.Errorf("threshold %s: the Go load generator measures only %s", metric, strings.Join(measured, ", "))
			}
			samples := r.Samples(th.tag)
			v := th.value(samples, r.Elapsed)
			out = append(out, Outcome{Metric: metric, Expr: expr, Value: v, N: len(samples), OK: len(samples) > 0 && th.holds(v)})
		}
	}
	return out, nil
}

// threshold is one parsed k6 threshold expression: agg op limit.
type threshold struct {
	metric string // without the tag selector
	tag    string // name tag value, "" for all
	agg    string // rate, count, avg, min, med, max, p
	pct    float64
	op     string
	limit  float64
}

var (
	metricRE = regexp.MustCompile(`^([a-z_]+)(?:\{name:([^}]+)\})?$`)
	exprRE   = regexp.MustCompile(`^\s*(rate|count|value|avg|min|med|max|p\(([0-9.]+)\))\s*(<=|>=|==|!=|<|>)\s*(-?[0-9.]+)\s*$`)
)

// The aggregations of k6's metric types.
var (
	counter = []string{"count", "rate"}
	rate    = []string{"rate"}
	trend   = []string{"avg", "min", "med", "max", "p"}
	gauge   = []string{"value", "min", "max"}
)

// k6Metrics is k6's built-in metrics and their types: a threshold on any
// other name makes k6 refuse to start, so Validate rejects it too.
var k6Metrics = map[string][]string{
	"checks": rate, "data_received": counter, "data_sent": counter,
	"dropped_iterations": counter, "iteration_duration": trend, "iterations": counter,
	"vus": gauge, "vus_max": gauge,
	"http_reqs": counter, "http_req_failed": rate, "http_req_duration": trend,
	"http_req_blocked": trend, "http_req_connecting": trend, "http_req_tls_handshaking": trend,
	"http_req_sending": trend, "http_req_waiting": trend, "http_req_receiving": trend,
}

// measured is what Check can evaluate from a Go run.
var measured = []string{"checks", "http_req_duration", "http_req_failed", "http_reqs"}

func parseThreshold(metric, expr string) (threshold, error) {
	m := metricRE.FindStringSubmatch(metric)
	e := exprRE.FindStringSubmatch(expr)
	if m == nil || e == nil {
		return threshold{}, fmt.Errorf("threshold %s %q: not of the form metric[{name:x}] agg<op>number", metric, expr)
	}
	th := threshold{metric: m[1], tag: m[2], agg: e[1], op: e[3]}
	if e[2] != "" {
		th.agg = "p"
		th.pct, _ = strconv.ParseFloat(e[2], 64)
		if th.pct < 0 || th.pct > 100 {
			return threshold{}, fmt.Errorf("threshold %s %q: percentile out of 0..100", metric, expr)
		}
	}
	var err error
	if th.limit, err = strconv.ParseFloat(e[4], 64); err != nil {
		return threshold{}, fmt.Errorf("threshold %s %q: %w", metric, expr, err)
	}
	ok, known := k6Metrics[th.metric]
	if !known {
		return threshold{}, fmt.Errorf("threshold %s: not one of k6's built-in metrics", metric)
	}
	if !slices.Contains(ok, th.agg) {
		return threshold{}, fmt.Errorf("threshold %s %q: %s takes %s", metric, expr, th.metric, strings.Join(ok, ", "))
	}
	return th, nil
}

func (th threshold) value(samples []Sample, elapsed time.Duration) float64 {
	switch th.metric {
	case "http_req_failed", "checks":
		if len(samples) == 0 {
			return 0
		}
		n := 0
		for _, s := range samples {
			if (th.metric == "http_req_failed" && s.Failed()) || (th.metric == "checks" && s.CheckOK()) {
				n++
			}
		}
		return float64(n) / float64(len(samples))
	case "http_reqs":
		if th.agg == "rate" {
			if elapsed <= 0 {
				return 0
			}
			return float64(len(samples)) / elapsed.Seconds()
		}
		return float64(len(samples))
	}
	ms := make([]float64, len(samples))
	for i, s := range samples {
		ms[i] = float64(s.Duration) / float64(time.Millisecond)
	}
	slices.Sort(ms)
	switch th.agg {
	case "avg":
		sum := 0.0
		for _, v := range ms {
			sum += v
		}
		return sum / math.Max(1, float64(len(ms)))
	case "min":
		return Percentile(ms, 0)
	case "max":
		return Percentile(ms, 100)
	case "med":
		return Percentile(ms, 50)
	default:
		return Percentile(ms, th.pct)
	}
}

func (th threshold) holds(v float64) bool {
	switch th.op {
	case "<":
		return v < th.limit
	case "<=":
		return v <= th.limit
	case ">":
		return v > th.limit
	case ">=":
		return v >= th.limit
	case "==":
		return v == th.limit
	default:
		return v != th.limit
	}
}

// Percentile of sorted values, interpolated linearly between the closest
// ranks (the definition k6's trend metrics use): p(50) of 1, 2, 3, 4 is 2.5.
func Percentile(sorted []float64, p float64) float64 {
	switch len(sorted) {
	case 0:
		return 0
	case 1:
		return sorted[0]
	}
	i := p / 100 * float64(len(sorted)-1)
	lo, hi := sorted[int(math.Floor(i))], sorted[int(math.Ceil(i))]
	return lo + (hi-lo)*(i-math.Floor(i))
}
