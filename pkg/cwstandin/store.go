package cwstandin

import (
	"maps"
	"math"
	"slices"
	"time"
)

// Sources of a Datapoint.
const (
	SourcePutMetricData = "PutMetricData"
	SourceEMF           = "EMF" // extracted from a PutLogEvents record
)

// Datapoint is one stored observation of a metric, as CloudWatch keeps it:
// a statistic set. A PutMetricData Value v is {SampleCount 1, Sum v,
// Minimum v, Maximum v}; Values/Counts and StatisticValues add up the way
// CloudWatch documents; an EMF metric value is one sample per number (an
// array of numbers gives one sample each).
type Datapoint struct {
	Namespace  string
	MetricName string
	Dimensions map[string]string // nil when there are none
	Unit       string            // "None" when the producer gave none
	// Timestamp is the datum's timestamp plus the server's time shift (see
	// WithTimeShift); the time the stand-in received it when the datum had
	// none.
	Timestamp time.Time
	Stats
	Source string // SourcePutMetricData or SourceEMF
}

// Stats is a statistic set.
type Stats struct {
	SampleCount, Sum, Minimum, Maximum float64
}

// stats accumulates a statistic set (the zero value is empty).
type stats struct {
	Count, Sum, Min, Max float64
}

func (s *stats) add(o stats) {
	if o.Count == 0 {
		return
	}
	if s.Count == 0 {
		*s = o
		return
	}
	s.Count += o.Count
	s.Sum += o.Sum
	s.Min = math.Min(s.Min, o.Min)
	s.Max = math.Max(s.Max, o.Max)
}

func (s stats) public() Stats {
	return Stats{SampleCount: s.Count, Sum: s.Sum, Minimum: s.Min, Maximum: s.Max}
}

func (p Datapoint) stats() stats {
	return stats{Count: p.SampleCount, Sum: p.Sum, Min: p.Minimum, Max: p.Maximum}
}

// sameDimensionSet reports whether d has exactly the dimension names keys.
func sameDimensionSet(d map[string]string, keys []string) bool {
	if len(d) != len(keys) {
		return false
	}
	for _, k := range keys {
		if _, ok := d[k]; !ok {
			return false
		}
	}
	return true
}

// window is the time range and bucketing of one GetMetricData query.
type window struct {
	start, end time.Time // start rounded as CloudWatch does; end exclusive
	period     time.Duration
	descending bool
}

// newWindow rounds StartTime the way the GetMetricData reference says
// CloudWatch does for data less than 15 days old: down to the whole minute,
// or, for a period under a minute, down to a multiple of the period within
// the minute ("If you set Period to 5, 10, 20, or 30, the start time of
// your request is rounded down ..."; StartTime in
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html).
// Buckets are [start + k*period, start + (k+1)*period), each labelled with
// its start time, and only data before EndTime (exclusive) counts. KEDA's
// StartTime and EndTime are multiples of the period, so its buckets are the
// period-aligned ones.
func newWindow(start, end time.Time, periodSec int32, descending bool) window {
	period := time.Duration(periodSec) * time.Second
	round := time.Minute
	if period < time.Minute {
		round = period
	}
	return window{start: start.Truncate(round), end: end, period: period, descending: descending}
}

// aggregate buckets the datapoints that match into w and returns each
// non-empty bucket's statistic set with its timestamp, in w's order
// (CloudWatch returns no value for a period without data).
func (w window) aggregate(points []Datapoint, match func(Datapoint) bool) ([]time.Time, []stats) {
	buckets := map[int64]*stats{}
	for _, p := range points {
		if p.Timestamp.Before(w.start) || !p.Timestamp.Before(w.end) || !match(p) {
			continue
		}
		k := int64(p.Timestamp.Sub(w.start) / w.period)
		if buckets[k] == nil {
			buckets[k] = &stats{}
		}
		buckets[k].add(p.stats())
	}
	keys := slices.Sorted(maps.Keys(buckets))
	if w.descending {
		slices.Reverse(keys)
	}
	times := make([]time.Time, len(keys))
	out := make([]stats, len(keys))
	for i, k := range keys {
		times[i] = w.start.Add(time.Duration(k) * w.period)
		out[i] = *buckets[k]
	}
	return times, out
}
