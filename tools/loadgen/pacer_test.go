package loadgen

import (
	"math"
	"testing"
	"time"
)

// simulate drives a pacer the way vegeta's attack loop does, on a virtual
// clock, and returns when each hit was sent.
func simulate(t *testing.T, p StagesPacer) []time.Duration {
	t.Helper()
	var at []time.Duration
	var el time.Duration
	for hits := uint64(0); ; hits++ {
		wait, stop := p.Pace(el, hits)
		if stop {
			return at
		}
		if wait > 0 {
			el += wait
		}
		at = append(at, el)
		if len(at) > 1e6 {
			t.Fatal("pacer never stops")
		}
	}
}

func TestStagesPacerSendsTheIntegralOfTheRampAtTheRightTimes(t *testing.T) {
	sec := func(s float64) Duration { return Duration(s * float64(time.Second)) }
	// 0 -> 10/s over 10 s: H(t) = t²/2, so hit n is due at sqrt(2n) s; then
	// 10/s held 5 s (50 more), then down to 0 over 2 s (10 more).
	p := Stages(0, time.Second, []Stage{{10, sec(10)}, {10, sec(5)}, {0, sec(2)}})
	at := simulate(t, p)
	if len(at) != 50+50+10 {
		t.Fatalf("%d hits, want 110", len(at))
	}
	for _, n := range []int{1, 8, 18, 50} {
		want := math.Sqrt(2 * float64(n))
		if got := at[n-1].Seconds(); math.Abs(got-want) > 1e-6 {
			t.Errorf("hit %d at %.6f s, want %.6f", n, got, want)
		}
	}
	if got := at[99].Seconds(); math.Abs(got-15) > 1e-6 { // 50 + 10/s × 5 s
		t.Errorf("hit 100 at %.6f s, want 15", got)
	}
	if got, want := at[109].Seconds(), 17.0; math.Abs(got-want) > 1e-6 {
		t.Errorf("last hit at %.6f s, want %v (the ramp down's integral ends exactly there)", got, want)
	}
	if r := p.Rate(16 * time.Second); math.Abs(r-5) > 1e-9 {
		t.Errorf("rate at 16 s = %v, want 5 (half way down from 10)", r)
	}
	if p.Duration() != 17*time.Second {
		t.Errorf("duration %v", p.Duration())
	}
}

func TestStagesPacerTimeUnitScalesTheRate(t *testing.T) {
	// 60 per minute for 1 minute is 60 hits, one a second.
	at := simulate(t, Stages(60, time.Minute, []Stage{{60, Duration(time.Minute)}}))
	if len(at) != 60 || at[0] != time.Second || at[59] != time.Minute {
		t.Fatalf("%d hits, first %v last %v; want 60, 1s, 1m0s", len(at), at[0], at[len(at)-1])
	}
}
