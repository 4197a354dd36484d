package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	benchOut := fs.String("bench-out", "", "go test -bench output to summarise")
	bin := fs.String("bin", "bin", "directory with the service binaries")
	runs := fs.Int("runs", 5, "start-ups per binary")
	repo := fs.String("repo", ".", "repository root (for tools/fauxqs)")
	services := fs.String("services", "webapi sqsworker videoencoder resultanalyzer producer", "the service binaries in -bin to measure")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var missed []string
	if *benchOut != "" {
		results, err := parseFile(*benchOut)
		if err != nil {
			return err
		}
		missed = printRatios(stdout, results)
	}
	m, err := measureBinaries(ctx, stdout, *bin, strings.Fields(*services), *repo, *runs)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\n"+verdict(append(missed, m...)))
	return nil
}

// verdict is the closing line: which goals this run did not meet.
func verdict(missed []string) string {
	if len(missed) == 0 {
		return "Every goal met in this run."
	}
	return fmt.Sprintf("%d goal(s) not met in this run (a report, not a gate): %s.", len(missed), strings.Join(missed, "; "))
}

// results maps "BenchmarkName/sub" (without the -GOMAXPROCS suffix) and a
// unit ("ns/op", "allocs/op", "calls/msg", ...) to every value measured.
type results map[string]map[string][]float64

func parseFile(path string) (results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parse(f)
}

func parse(r io.Reader) (results, error) {
	res := results{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			if res[name] == nil {
				res[name] = map[string][]float64{}
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res, sc.Err()
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// goal is one ratio the issues ask for: candidate ÷ baseline of a unit.
type goal struct {
	what                string
	candidate, baseline string
	unit                string
	target              string
	ok                  func(ratio float64) bool
}

var goals = []goal{
	// The cost a caller sees (issue 12): a real loopback round trip.
	{"webapi instrumented vs bare, loopback HTTP round trip", "BenchmarkForecastOverHTTP/instrumented", "BenchmarkForecastOverHTTP/bare", "ns/op", "≤ 1.10×", func(r float64) bool { return r <= 1.10 }},
	{"webapi instrumented vs bare handler alone, time", "BenchmarkForecastHandler/instrumented", "BenchmarkForecastHandler/bare", "ns/op", "context: no network", nil},
	{"webapi instrumented vs bare handler alone, allocs", "BenchmarkForecastHandler/instrumented", "BenchmarkForecastHandler/bare", "allocs/op", "context: no network", nil},
	{"SQS calls per message, ours vs seed", "BenchmarkSQSCallsPerMessage/ours", "BenchmarkSQSCallsPerMessage/seed", "calls/msg", "ours ≤ 0.33 (floor 0.3)", nil},
	{"sqsworker drain rate vs raw receive+delete loop", "BenchmarkDrain/worker", "BenchmarkDrain/raw", "msgs/s", "≥ 0.8×", func(r float64) bool { return r >= 0.8 }},
	{"producer 1000 messages: sequential SendMessage vs batched, time", "BenchmarkProduce1000/sequential", "BenchmarkProduce1000/batched", "ns/op", "≥ 5× (batched faster)", func(r float64) bool { return r >= 5 }},
}

// printRatios prints every goal's ratio and returns the goals not met, each
// as "what (ratio, target)".
func printRatios(w io.Writer, res results) (missed []string) {
	fmt.Fprintln(w, "\nGoals (medians of this run):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "what\tcandidate\tbaseline\tratio\ttarget\t")
	for _, g := range goals {
		c, b := res[g.candidate][g.unit], res[g.baseline][g.unit]
		if len(c) == 0 || len(b) == 0 {
			fmt.Fprintf(tw, "%s\t(not run)\t\t\t%s\t\n", g.what, g.target)
			continue
		}
		mc, mb := median(c), median(b)
		ratio := mc / mb
		mark := ""
		switch {
		case g.unit == "calls/msg":
			mark = fmt.Sprintf("ours %.3f, %.3f above the 0.3 floor", mc, mc-0.3)
			if mc <= 0.33 {
				mark += " ✓"
			} else {
				mark += " ✗"
				missed = append(missed, fmt.Sprintf("%s (ours %.3f, target %s)", g.what, mc, g.target))
			}
		case g.ok == nil:
		case g.ok(ratio):
			mark = "✓"
		default:
			mark = "✗"
			missed = append(missed, fmt.Sprintf("%s (%.3f×, target %s)", g.what, ratio, g.target))
		}
		fmt.Fprintf(tw, "%s\t%.4g %s\t%.4g %s\t%.3f×\t%s %s\t\n", g.what, mc, g.unit, mb, g.unit, ratio, g.target, mark)
	}
	tw.Flush()
	return missed
}
