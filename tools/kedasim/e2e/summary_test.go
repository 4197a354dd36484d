//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/tools/kedasim/localcluster"
	"github.com/keda-eks-samples/workloads/tools/kedasim/timeline"
)

// result is one scenario's outcome for the run's summary.
type result struct {
	test       string
	out        string        // bin/e2e/<test>
	firstScale time.Duration // from the load to the first scale-out; -1: none
	whole      time.Duration // from start to everything stopped
	failed     bool
	phases     []phase
	faults     []faultRow
}

// phase is one load of a scenario as measured.
type phase struct {
	load             string        // "16 in flight", "7 req/s", "none"
	want             int32         // the replica count the load needs
	first            time.Duration // load start to the first scale-out (first load only; -1: not this phase)
	toTarget         time.Duration // load change to replicas within want ± 1 (-1: not measured)
	floor            time.Duration // the settings' chain from a load to a reading that shows it, at worst (0: none)
	readMin, readMax float64       // the HPA's readings during the hold, in the load's unit (NaN: none)
	replMin, replMax int32         // replicas during the hold
}

// dur formats a measured duration; "-" when there is none.
func dur(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return d.Round(time.Second).String()
}

// cells are a phase's summary columns.
func (p phase) cells() []string {
	reads, repl, floor := "-", "-", "-"
	if !math.IsNaN(p.readMin) && !math.IsInf(p.readMin, 0) {
		reads = fmt.Sprintf("%.1f-%.1f", p.readMin, p.readMax)
	}
	if p.replMax > 0 {
		repl = fmt.Sprintf("%d-%d", p.replMin, p.replMax)
	}
	if p.floor > 0 {
		floor = p.floor.String()
	}
	return []string{p.load, strconv.Itoa(int(p.want)), reads, repl, dur(p.first), dur(p.toTarget), floor}
}

var phaseColumns = []string{"load", "want", "HPA reads (hold)", "replicas (hold)", "first scale-out", "to target", "floor"}

// results collects every scenario's result; TestMain prints them. Test-only
// state: the scenarios run in parallel.
var results struct {
	sync.Mutex
	rows []result
}

func record(r result) {
	results.Lock()
	defer results.Unlock()
	results.rows = append(results.rows, r)
}

// runMarker is set in the environment of every process a scenario starts
// (inherited by kwokctl and the control plane, KEDA and the emulator;
// given to Prometheus, whose environment is otherwise PATH and HOME, and to
// every pod's process by the runner), with this test process's pid as its
// value.
const runMarker = "KEDA_SAMPLES_E2E_RUN"

// marker is runMarker=<this process's pid>.
func marker() string { return runMarker + "=" + strconv.Itoa(os.Getpid()) }

// TestMain runs the scenarios, then prints each one's start-to-first-scale
// and whole-run times, writes bin/e2e/index.html linking their timelines,
// and fails the run if any process a scenario started is still running.
func TestMain(m *testing.M) {
	started := time.Now()
	os.Setenv(runMarker, strconv.Itoa(os.Getpid()))
	code := m.Run()
	if left := leftovers(10 * time.Second); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: %d processes left running after the scenarios (now killed):\n", len(left))
		for pid, cmd := range left {
			fmt.Fprintf(os.Stderr, "  %d %s\n", pid, cmd)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		code = 1
	} else {
		fmt.Println("e2e: nothing left running (no process with " + marker() + ")")
	}
	results.Lock()
	rows := results.rows
	results.Unlock()
	if len(rows) > 0 {
		sort.Slice(rows, func(i, j int) bool { return rows[i].test < rows[j].test })
		writeSummary(os.Stdout, rows, time.Since(started))
		if err := writeIndex(filepath.Dir(rows[0].out), rows, time.Since(started)); err != nil {
			fmt.Fprintln(os.Stderr, "e2e index:", err)
		}
	}
	os.Exit(code)
}

func status(r result) string {
	if r.failed {
		return "FAIL"
	}
	return "ok"
}

func firstScale(r result) string {
	if r.firstScale < 0 {
		return "-"
	}
	return r.firstScale.Round(time.Second).String()
}

// leftovers returns the processes (pid → command line) whose environment
// carries marker(), waiting up to timeout for them to go.
func leftovers(timeout time.Duration) map[int]string {
	var left map[int]string
	_ = localproc.PollContext(context.Background(), 200*time.Millisecond, timeout, func() (bool, error) {
		left = localcluster.Processes(func(_, environ []string) bool { return slices.Contains(environ, marker()) })
		return len(left) == 0, nil
	})
	return left
}

// writeSummary prints the table every make e2e ends with: a line per
// scenario, then one per load it ran (HTTP scenarios).
func writeSummary(w io.Writer, rows []result, all time.Duration) {
	fmt.Fprintf(w, "\ne2e summary (scenarios in parallel, %s in all)\n", all.Round(time.Second))
	fmt.Fprintf(w, "  %-52s %-5s %12s %10s\n", "scenario", "", "first scale", "whole run")
	for _, r := range rows {
		fmt.Fprintf(w, "  %-52s %-5s %12s %10s\n", r.test, status(r), firstScale(r), r.whole.Round(time.Second))
	}
	writeTable(w, rows, phaseColumns, func(r result) [][]string { return cellsOf(r.phases) }, "(HPA reads: the metric the HPA read during the hold, in the load's unit; floor: export + period + offset + HPA sync at worst)")
	writeTable(w, rows, faultColumns, func(r result) [][]string { return cellsOf(r.faults) }, "(from..to: the fault, since the load or the apply; noticed: fault start to KEDA's Fallback condition, or to the HPA's ScalingActive False; recovered: fault end to the trigger read again and the replicas the load needs, or to every message processed)")
}

// cellsOf is the summary cells of each item.
func cellsOf[T interface{ cells() []string }](items []T) [][]string {
	var out [][]string
	for _, it := range items {
		out = append(out, it.cells())
	}
	return out
}

// writeTable prints one line per scenario row cells gives (nothing, not
// even the header, when there is none), then note.
func writeTable(w io.Writer, rows []result, columns []string, cells func(result) [][]string, note string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	lines := 0
	for _, r := range rows {
		for _, c := range cells(r) {
			if lines++; lines == 1 {
				fmt.Fprintf(tw, "\n  scenario\t%s\n", strings.Join(columns, "\t"))
			}
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimPrefix(r.test, "Test"), strings.Join(c, "\t"))
		}
	}
	_ = tw.Flush()
	if lines > 0 {
		fmt.Fprintln(w, "  "+note)
	}
}

// writeIndex writes dir/index.html: one row per scenario, linking its
// timeline page.
func writeIndex(dir string, rows []result, all time.Duration) error {
	var out []timeline.IndexRow
	for _, r := range rows {
		out = append(out, timeline.IndexRow{Name: r.test, Page: r.test + "/timeline.html", Failed: r.failed,
			Cells: []string{firstScale(r), r.whole.Round(time.Second).String()}})
	}
	return timeline.WriteIndex(filepath.Join(dir, "index.html"), "make e2e",
		fmt.Sprintf("%s, %s in all (scenarios in parallel). Each scenario links to its timeline.", time.Now().UTC().Format(time.RFC3339), all.Round(time.Second)),
		[]string{"first scale-out", "whole run"}, out)
}

// saveTimeline logs tl's table and writes its page under dir.
func saveTimeline(t *testing.T, tl *timeline.Timeline, dir string) {
	t.Helper()
	t.Log("\n" + tl.Table())
	page, err := tl.Save(dir)
	if err != nil {
		t.Error(err)
		return
	}
	t.Logf("timeline: %s", page)
}
