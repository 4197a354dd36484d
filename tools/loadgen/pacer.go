package loadgen

import (
	"math"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// StagesPacer is k6's ramping-arrival-rate as a vegeta.Pacer: the rate
// starts at a start rate and moves linearly to each stage's target over the
// stage's duration; rates are iterations per time unit.
type StagesPacer struct {
	start  float64
	unit   time.Duration
	stages []Stage
}

var _ vegeta.Pacer = StagesPacer{}

// Stages returns the pacer for a ramping-arrival-rate profile.
func Stages(start float64, unit time.Duration, stages []Stage) StagesPacer {
	return StagesPacer{start: start, unit: unit, stages: stages}
}

// Duration is the stages' total duration.
func (p StagesPacer) Duration() time.Duration {
	var d time.Duration
	for _, s := range p.stages {
		d += time.Duration(s.Duration)
	}
	return d
}

// segments calls f with each stage's start (seconds), length (seconds) and
// rates per second at both ends, until f returns false.
func (p StagesPacer) segments(f func(t0, d, r0, r1 float64) bool) {
	per := p.unit.Seconds()
	t0, r0 := 0.0, p.start/per
	for _, s := range p.stages {
		d, r1 := time.Duration(s.Duration).Seconds(), s.Target/per
		if !f(t0, d, r0, r1) {
			return
		}
		t0, r0 = t0+d, r1
	}
}

// Rate is the arrival rate per second at elapsed (0 after the last stage).
func (p StagesPacer) Rate(elapsed time.Duration) float64 {
	t, rate := elapsed.Seconds(), 0.0
	p.segments(func(t0, d, r0, r1 float64) bool {
		if t < t0+d {
			rate = r0 + (r1-r0)*(t-t0)/d
			return false
		}
		return true
	})
	return rate
}

// Hits is the number of arrivals due by elapsed: the integral of the rate.
func (p StagesPacer) Hits(elapsed time.Duration) float64 {
	t, n := elapsed.Seconds(), 0.0
	p.segments(func(t0, d, r0, r1 float64) bool {
		s := math.Min(t-t0, d)
		n += r0*s + (r1-r0)/(2*d)*s*s
		return t > t0+d
	})
	return n
}

// at returns when the n-th arrival is due, or false if the stages end first.
func (p StagesPacer) at(n float64) (time.Duration, bool) {
	var when float64
	found, done := false, 0.0
	p.segments(func(t0, d, r0, r1 float64) bool {
		seg := (r0 + r1) / 2 * d
		if done+seg < n {
			done += seg
			return true
		}
		// Solve a s² + b s = n - done for the first s ≥ 0 in the stage, in
		// the form that stays exact when a is 0 or tiny.
		a, b, c := (r1-r0)/(2*d), r0, done-n
		when = t0 - 2*c/(b+math.Sqrt(math.Max(0, b*b-4*a*c)))
		found = true
		return false
	})
	return time.Duration(when * float64(time.Second)), found
}

// Pace implements vegeta.Pacer: hit number hits+1 is sent once that many
// arrivals are due; the attack stops when the stages have none left.
func (p StagesPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	next := float64(hits + 1)
	if p.Hits(elapsed) >= next {
		return 0, false
	}
	t, ok := p.at(next)
	if !ok {
		return 0, true
	}
	return t - elapsed, false
}
