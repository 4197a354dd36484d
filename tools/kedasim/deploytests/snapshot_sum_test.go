package deploytests

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/tools/kedasim/internal/localoverlay"
)

// TestLocalE2EWebapiAnswerTimeMakesTheSnapshotSumExact: why
// components/local-e2e fixes webapi's answer time (work-webapi.yaml). The
// in-flight triggers add each pod's level as exported once a minute, a
// snapshot at the pod's own instant. This replays the e2e's load — L
// clients, each re-issuing its request when the answer comes, handed out
// round robin over N pods — in simulated time, and sums N snapshots, each
// pod's at its own instant within one minute, as the trigger sees them.
// With the answer time local-e2e sets and N = ⌈L/2⌉ pods (N divides L),
// every sum is L and every reading asks for ⌈L/2⌉ pods; with webapi's shipped default (0–1.5 s at random,
// services/webapi/run.go) the sums wander around L and a share of the
// readings asks for more than ⌈L/2⌉+1 or fewer than ⌈L/2⌉-1.
func TestLocalE2EWebapiAnswerTimeMakesTheSnapshotSumExact(t *testing.T) {
	const load, pods, target = 16, 8, 2
	want := int(math.Ceil(float64(load) / target))

	root := repoRoot(t)
	values, err := localoverlay.ReadEnv(filepath.Join(root, "deploy/kustomize/components/local-e2e", localoverlay.EnvFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err := localoverlay.Render(t.TempDir(), filepath.Join(root, "deploy/kustomize/overlays/gateway"),
		filepath.Join(root, "deploy/kustomize/components/local-e2e"), values)
	if err != nil {
		t.Fatal(err)
	}
	var minDelay, maxDelay time.Duration
	for _, o := range objectsOf(t, m) {
		if o.Kind != "Deployment" || o.Name != "webapi" {
			continue
		}
		for p, v := range flatten(o.Map) {
			s, _ := v.(string)
			switch {
			case strings.HasSuffix(p, "env[WEATHER_MIN_DELAY].value"):
				minDelay, err = time.ParseDuration(s)
			case strings.HasSuffix(p, "env[WEATHER_MAX_DELAY].value"):
				maxDelay, err = time.ParseDuration(s)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if maxDelay == 0 {
		t.Fatal("local-e2e sets no WEATHER_MAX_DELAY for webapi")
	}

	local := snapshotSums(load, pods, minDelay, maxDelay)
	for _, s := range local {
		if s != load {
			t.Fatalf("answers of %s-%s: a sum of snapshots read %d for %d in flight", minDelay, maxDelay, s, load)
		}
	}
	t.Logf("answers of %s-%s: every sum of %d snapshots is %d -> %d pods", minDelay, maxDelay, pods, load, want)

	// On the way up (1 → 5 → 8) five pods share 16: each holds 3 or 4 at
	// any instant, so for the minute a reading from that step lasts the
	// sum is not exact either (logged, not required: the e2e's 5-pod step
	// lasts one HPA sync).
	five := snapshotSums(load, 5, minDelay, maxDelay)
	sort.Ints(five)
	t.Logf("answers of %s-%s on 5 pods: sums %d..%d", minDelay, maxDelay, five[0], five[len(five)-1])

	seeds := snapshotSums(load, pods, 0, 1500*time.Millisecond)
	outside := 0
	for _, s := range seeds {
		if r := min(10, int(math.Ceil(float64(s)/target))); r < want-1 || r > want+1 {
			outside++
		}
	}
	sort.Ints(seeds)
	t.Logf("answers of 0-1.5s (shipped): sums %d..%d (median %d), %.0f%% of readings outside %d±1 pods",
		seeds[0], seeds[len(seeds)-1], seeds[len(seeds)/2], 100*float64(outside)/float64(len(seeds)), want)
	if outside == 0 {
		t.Error("random answer times never moved the sum of snapshots past ±1 pod: the reason for work-webapi.yaml is gone")
	}
}

// snapshotSums simulates load clients over pods for an hour, each request
// lasting a uniform random time in [lo, hi] and going to the next pod in
// turn, and returns 2000 sums of the pods' in-flight counts, each pod's
// taken at its own instant within the same minute.
func snapshotSums(load, pods int, lo, hi time.Duration) []int {
	rng := rand.New(rand.NewPCG(1, 2))
	answer := func() float64 { return (lo + time.Duration(rng.Int64N(int64(hi-lo)+1))).Seconds() }
	type change struct {
		at    float64
		count int
	}
	history := make([][]change, pods)
	inFlight := make([]int, pods)
	next := 0
	send := func(at float64, q *ends) {
		p := next % pods
		next++
		inFlight[p]++
		history[p] = append(history[p], change{at, inFlight[p]})
		heap.Push(q, end{at + answer(), p})
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
		send(e.at, q)
	}
	countAt := func(p int, at float64) int {
		i := sort.Search(len(history[p]), func(i int) bool { return history[p][i].at > at }) - 1
		return history[p][i].count
	}
	sums := make([]int, 2000)
	for i := range sums {
		base := 10 + rng.Float64()*(hour-100)
		for p := range pods {
			sums[i] += countAt(p, base+rng.Float64()*60)
		}
	}
	return sums
}

// end is a request's answer: when, and on which pod.
type end struct {
	at  float64
	pod int
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
