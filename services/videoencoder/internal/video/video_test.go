package video

import (
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/videojob"
)

func TestEncodeTime(t *testing.T) {
	base := 60 * time.Second
	tests := []struct {
		q       videojob.Quality
		scaling Scaling
		want    time.Duration
	}{
		{videojob.Q480p, ScalingNone, base},
		{videojob.Q4K, ScalingNone, base},
		{videojob.Q480p, ScalingLinear, 30 * time.Second},
		{videojob.Q720p, ScalingLinear, 60 * time.Second},
		{videojob.Q1080p, ScalingLinear, 120 * time.Second},
		{videojob.Q4K, ScalingLinear, 240 * time.Second},
	}
	for _, tt := range tests {
		t.Run(string(tt.q)+"/"+string(tt.scaling), func(t *testing.T) {
			if got := EncodeTime(base, tt.q, tt.scaling); got != tt.want {
				t.Fatalf("EncodeTime(%v, %s, %s) = %v, want %v", base, tt.q, tt.scaling, got, tt.want)
			}
		})
	}
}

func TestParseScaling(t *testing.T) {
	for want, words := range map[Scaling][]string{
		ScalingNone:   {"", "none", "FALSE", "off", "0"},
		ScalingLinear: {"linear", "Linear", "true", "on", "1"},
	} {
		for _, in := range words {
			if got, ok := ParseScaling(in); got != want || !ok {
				t.Errorf("ParseScaling(%q) = %q, %v; want %q, true", in, got, ok, want)
			}
		}
	}
	for _, in := range []string{"cubic", "2"} {
		if got, ok := ParseScaling(in); got != "" || ok {
			t.Errorf("ParseScaling(%q) = %q, %v; want \"\", false", in, got, ok)
		}
	}
}

// TestFactorCoversTheContract fails when pkg/videojob gains a quality this
// package does not know: every quality has its own factor, rising with it.
func TestFactorCoversTheContract(t *testing.T) {
	prev := 0.0
	for _, q := range videojob.Qualities() {
		f := Factor(q)
		if f <= prev {
			t.Errorf("Factor(%s) = %v, want more than %v (the quality below)", q, f, prev)
		}
		prev = f
	}
}
