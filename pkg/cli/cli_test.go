package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/config"
)

func TestExitCodeMapsErrorsToStatuses(t *testing.T) {
	cfgErr := &config.Error{Name: "PORT", Value: "x", Want: "a port"}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"runtime failure", errors.New("boom"), 1},
		{"bad config", cfgErr, 2},
		{"bad config, wrapped and joined", fmt.Errorf("start: %w", errors.Join(cfgErr, errors.New("other"))), 2},
		{"explicit", &ExitError{Code: 143, Err: errors.New("terminated")}, 143},
		{"explicit wins over config", &ExitError{Code: 65, Err: cfgErr}, 65},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("%s: ExitCode(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}
