// Package video is the time a simulated encode takes. The request itself,
// the contract with the producer, is pkg/videojob.
package video

import (
	"strings"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/videojob"
)

// Factor is how much longer than a 720p encode quality q takes: 480p ×0.5,
// 720p ×1, 1080p ×2, 4k ×4 (roughly the pixel count, halved per step).
func Factor(q videojob.Quality) float64 {
	switch q {
	case videojob.Q480p:
		return 0.5
	case videojob.Q1080p:
		return 2
	case videojob.Q4K:
		return 4
	default:
		return 1
	}
}

// Scaling says whether the encode time depends on the quality.
type Scaling string

const (
	// ScalingNone: every request takes PROCESS_SLEEP_TIME (the seed).
	ScalingNone Scaling = "none"
	// ScalingLinear: PROCESS_SLEEP_TIME × Factor(quality).
	ScalingLinear Scaling = "linear"
)

// ParseScaling reads QUALITY_SCALING: none (also false, off, no, 0, or
// empty) or linear (also true, on, yes, 1), in any letter case.
func ParseScaling(s string) (Scaling, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none", "false", "off", "no", "0":
		return ScalingNone, true
	case "linear", "true", "on", "yes", "1":
		return ScalingLinear, true
	}
	return "", false
}

// EncodeTime is how long encoding a request of quality q takes given the
// base time.
func EncodeTime(base time.Duration, q videojob.Quality, s Scaling) time.Duration {
	if s != ScalingLinear {
		return base
	}
	return time.Duration(float64(base) * Factor(q))
}
