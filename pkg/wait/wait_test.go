package wait

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleepReturnsEarlyOnlyWhenCancelled(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{"elapses", context.Background(), time.Millisecond, nil},
		{"zero", context.Background(), 0, nil},
		{"negative", context.Background(), -time.Second, nil},
		{"cancelled before", cancelled, time.Hour, context.Canceled},
		{"cancelled, zero", cancelled, 0, context.Canceled},
	}
	for _, tt := range tests {
		if err := Sleep(tt.ctx, tt.d); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestUniformIncludesBothEnds(t *testing.T) {
	// Three values: 1000 draws miss one of them with probability ~3·(2/3)^1000.
	const lo, hi = 5 * time.Nanosecond, 7 * time.Nanosecond
	seen := map[time.Duration]int{}
	for range 1000 {
		seen[Uniform(lo, hi)]++
	}
	if len(seen) != 3 || seen[lo] == 0 || seen[lo+1] == 0 || seen[hi] == 0 {
		t.Fatalf("Uniform(%d, %d) drew %v, want each of 5, 6 and 7", lo, hi, seen)
	}
}

// TestUniformSpreadsOverTheRange fails for a constant, a half range or a
// skew: each tenth of [lo, hi] must get a fair share of the draws. Expected
// 1000 per tenth (sd ~30), so 700 is a margin no fair draw misses.
func TestUniformSpreadsOverTheRange(t *testing.T) {
	for _, r := range []struct{ lo, hi time.Duration }{
		{0, 1500 * time.Millisecond},           // webapi's WEATHER_*_DELAY defaults
		{time.Second, 2500 * time.Millisecond}, // sqsworker's PROCESS_*_DELAY defaults
	} {
		var tenths [10]int
		for range 10_000 {
			d := Uniform(r.lo, r.hi)
			if d < r.lo || d > r.hi {
				t.Fatalf("Uniform(%s, %s) = %s, outside the range", r.lo, r.hi, d)
			}
			tenths[10*(d-r.lo)/(r.hi-r.lo+1)]++
		}
		for i, n := range tenths {
			if n < 700 {
				t.Errorf("Uniform(%s, %s): tenth %d got %d of 10000 draws, want about 1000: %v", r.lo, r.hi, i, n, tenths)
			}
		}
	}
}

func TestUniformWithoutARangeIsLo(t *testing.T) {
	for _, r := range []struct{ lo, hi time.Duration }{{0, 0}, {time.Second, time.Second}, {time.Second, 0}} {
		if d := Uniform(r.lo, r.hi); d != r.lo {
			t.Errorf("Uniform(%s, %s) = %s, want %s", r.lo, r.hi, d, r.lo)
		}
	}
}
