package main

import (
	"strings"
	"testing"
)

func TestParseKeepsEveryUnitAndDropsTheProcsSuffix(t *testing.T) {
	out := `goos: linux
BenchmarkForecastHandler/bare-2         	  203116	      5220 ns/op	    1695 B/op	      16 allocs/op
BenchmarkForecastHandler/bare-2         	  245026	      6000 ns/op	    1695 B/op	      16 allocs/op
BenchmarkSQSCallsPerMessage/ours-2      	      10	  29396343 ns/op	   0.1000 DeleteMessageBatch/msg	   0.3050 calls/msg
PASS`
	res, err := parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, unit string
		want       float64
	}{
		{"BenchmarkForecastHandler/bare", "ns/op", 5610},
		{"BenchmarkForecastHandler/bare", "allocs/op", 16},
		{"BenchmarkSQSCallsPerMessage/ours", "calls/msg", 0.305},
		{"BenchmarkSQSCallsPerMessage/ours", "DeleteMessageBatch/msg", 0.1},
	}
	for _, tt := range tests {
		if got := median(res[tt.name][tt.unit]); got != tt.want {
			t.Errorf("%s %s = %v, want %v", tt.name, tt.unit, got, tt.want)
		}
	}
}
