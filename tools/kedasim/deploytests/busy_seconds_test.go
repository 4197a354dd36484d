package deploytests

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
)

// TestBusySecondsAddUpWhereSnapshotsDoNot: why the HTTP triggers read
// busy seconds, not the in-flight level the seeds read. It replays the
// e2e's load — L clients, each re-issuing its request when the answer
// comes, handed out round robin over N pods, answers of 0-1.5 s at random
// as webapi ships (services/webapi: WEATHER_MIN_DELAY, WEATHER_MAX_DELAY,
// which no overlay sets) — in simulated time, and reads it the two ways a
// trigger can, each pod's export at its own instant within one minute:
//   - the sum of N level snapshots: wanders around L, and a share of the
//     readings asks for more than ⌈L/2⌉+1 or fewer than ⌈L/2⌉-1 pods;
//   - the sum of N busy-seconds deltas (each pod's answer durations over
//     the 60 s before its export) / 60: within 10 % of L on every reading.
func TestBusySecondsAddUpWhereSnapshotsDoNot(t *testing.T) {
	const load, pods, target = 16, 8, 2
	const lo, hi = 0, 1500 * time.Millisecond
	want := int(math.Ceil(float64(load) / target))
	for _, overlay := range []string{"amp", "sidecar", "gateway"} {
		if v, ok := manifests.DeploymentEnv(renderOverlay(t, svctest.RepoRoot(t), overlay), "webapi", "WEATHER_MAX_DELAY"); ok {
			t.Fatalf("%s sets webapi's WEATHER_MAX_DELAY=%s: this replays the default answer times", overlay, v)
		}
	}
	outside := func(readings []float64) int {
		n := 0
		for _, r := range readings {
			if d := min(10, int(math.Ceil(r/target))); d < want-1 || d > want+1 {
				n++
			}
		}
		return n
	}
	snaps, busy := simulate(load, pods, lo, hi)
	worst := 0.0
	for _, b := range busy {
		worst = max(worst, math.Abs(b-load)/load)
	}
	t.Logf("%d in flight over %d pods, answers %s-%s: snapshot sums %.0f..%.0f (%.0f%% of readings outside %d±1 pods); busy seconds %.2f..%.2f (at worst %.1f%% off, %d outside)",
		load, pods, time.Duration(lo), hi, slices.Min(snaps), slices.Max(snaps), 100*float64(outside(snaps))/float64(len(snaps)), want,
		slices.Min(busy), slices.Max(busy), 100*worst, outside(busy))
	if outside(snaps) == 0 {
		t.Error("random answer times never moved the sum of snapshots past ±1 pod: the reason for busy seconds is gone")
	}
	if worst > 0.1 || outside(busy) > 0 {
		t.Errorf("busy seconds read %.2f..%.2f for %d in flight (at worst %.1f%% off, %d readings outside %d±1 pods): want within 10%% and ±1 pod",
			slices.Min(busy), slices.Max(busy), load, 100*worst, outside(busy), want)
	}
	// On the way up five pods share 16 (3 or 4 each): busy seconds still add up.
	_, five := simulate(load, 5, lo, hi)
	t.Logf("on 5 pods: busy seconds %.2f..%.2f", slices.Min(five), slices.Max(five))
	if slices.Min(five) < 0.9*load || slices.Max(five) > 1.1*load {
		t.Errorf("on 5 pods busy seconds read %.2f..%.2f for %d in flight, want within 10%%", slices.Min(five), slices.Max(five), load)
	}
}

// simulate runs load clients over pods for an hour, each request lasting a
// uniform random time in [lo, hi] and going to the next pod in turn. It
// returns 2000 readings of each kind, every pod exported at its own instant
// within the same minute: the sum of the pods' in-flight counts, and the
// sum of their busy seconds over the 60 s before each export / 60 (a
// request counts when it is answered, as otelhttp records it).
func simulate(load, pods int, lo, hi time.Duration) (snapshots, busy []float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	answer := func() float64 { return (lo + time.Duration(rng.Int64N(int64(hi-lo)+1))).Seconds() }
	type change struct {
		at    float64
		count int
	}
	history := make([][]change, pods)
	answered := make([][]change, pods) // at: answer time, count: duration in µs
	inFlight := make([]int, pods)
	next := 0
	send := func(at float64, q *ends) {
		p := next % pods
		next++
		inFlight[p]++
		history[p] = append(history[p], change{at, inFlight[p]})
		heap.Push(q, end{at + answer(), at, p})
	}
	const hour = 3600.0
	q := &ends{}
	for range load {
		send(0, q)
	}
	for q.Len() > 0 {
		e := heap.Pop(q).(end)
		if e.at > hour {
			break
		}
		inFlight[e.pod]--
		history[e.pod] = append(history[e.pod], change{e.at, inFlight[e.pod]})
		answered[e.pod] = append(answered[e.pod], change{e.at, int((e.at - e.sent) * 1e6)})
		send(e.at, q)
	}
	countAt := func(p int, at float64) int {
		i := sort.Search(len(history[p]), func(i int) bool { return history[p][i].at > at }) - 1
		return history[p][i].count
	}
	busyBefore := func(p int, at float64) float64 {
		s := 0.0
		i := sort.Search(len(answered[p]), func(i int) bool { return answered[p][i].at > at-60 })
		for ; i < len(answered[p]) && answered[p][i].at <= at; i++ {
			s += float64(answered[p][i].count) / 1e6
		}
		return s
	}
	for range 2000 {
		base := 70 + rng.Float64()*(hour-200)
		snap, b := 0, 0.0
		for p := range pods {
			at := base + rng.Float64()*60
			snap += countAt(p, at)
			b += busyBefore(p, at)
		}
		snapshots, busy = append(snapshots, float64(snap)), append(busy, b/60)
	}
	return snapshots, busy
}

// end is a request's answer: when, when it was sent, and on which pod.
type end struct {
	at, sent float64
	pod      int
}

// ends is a min-heap of answers by time.
type ends []end

func (h ends) Len() int           { return len(h) }
func (h ends) Less(i, j int) bool { return h[i].at < h[j].at }
func (h ends) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *ends) Push(x any)        { *h = append(*h, x.(end)) }
func (h *ends) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// TestBusySecondsTemporalityFitsEachPath: the CloudWatch in-flight triggers
// sum busy-seconds deltas, so their webapi exports with the SDK's delta
// preference; amp's rate() needs a cumulative counter (the collector's
// remote write drops delta sums), so its webapi must not, though amp also
// uses collector-gateway (deploy/README.md, "Why the HTTP triggers read
// busy seconds").
func TestBusySecondsTemporalityFitsEachPath(t *testing.T) {
	const key = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
	for overlay, want := range map[string]string{"sidecar": "delta", "gateway": "delta", "amp": ""} {
		got, _ := manifests.DeploymentEnv(renderOverlay(t, svctest.RepoRoot(t), overlay), "webapi", key)
		if got != want {
			t.Errorf("%s: webapi %s=%q, want %q", overlay, key, got, want)
		}
	}
}
