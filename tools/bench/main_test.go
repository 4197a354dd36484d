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

func TestClosingLineNamesTheGoalsNotMet(t *testing.T) {
	out := `BenchmarkForecastOverHTTP/bare-2          	   10000	    100000 ns/op
BenchmarkForecastOverHTTP/instrumented-2  	   10000	    117000 ns/op
BenchmarkForecastHandler/bare-2           	  200000	      5000 ns/op	      16 allocs/op
BenchmarkForecastHandler/instrumented-2   	  200000	      9000 ns/op	      30 allocs/op
BenchmarkSQSCallsPerMessage/ours-2        	      10	  29396343 ns/op	   0.3500 calls/msg
BenchmarkSQSCallsPerMessage/seed-2        	      10	  99396343 ns/op	   3.0000 calls/msg
BenchmarkDrain/worker-2                   	      10	         1 ns/op	    900.0 msgs/s
BenchmarkDrain/raw-2                      	      10	         1 ns/op	   1000.0 msgs/s
BenchmarkProduce1000/sequential-2         	      10	   3000000 ns/op
BenchmarkProduce1000/batched-2            	      10	   1000000 ns/op`
	res, err := parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	missed := printRatios(&table, res)
	t.Logf("\n%s", table.String())
	want := []string{
		"webapi instrumented vs bare, loopback HTTP round trip (1.170×, target ≤ 1.10×)",
		"SQS calls per message, ours vs seed (ours 0.350, target ours ≤ 0.33 (floor 0.3))",
		"producer 1000 messages: sequential SendMessage vs batched, time (3.000×, target ≥ 5× (batched faster))",
	}
	if strings.Join(missed, "\n") != strings.Join(want, "\n") {
		t.Errorf("missed:\n%s\nwant:\n%s", strings.Join(missed, "\n"), strings.Join(want, "\n"))
	}
	if n := strings.Count(table.String(), "✗"); n != len(want) {
		t.Errorf("%d ✗ rows, want %d", n, len(want))
	}
	line := verdict(missed)
	if !strings.HasPrefix(line, "3 goal(s) not met in this run") || !strings.Contains(line, want[0]) {
		t.Errorf("closing line %q", line)
	}
	if got := verdict(nil); got != "Every goal met in this run." {
		t.Errorf("closing line with nothing missed: %q", got)
	}
}
