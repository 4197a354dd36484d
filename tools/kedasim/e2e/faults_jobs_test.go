//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/videojob"
)

// The ScaledJob's faults. Its promise, from the shipped settings (queueLength
// 1, scaleOnInFlight, strategy default, maxReplicaCount 100): each poll
// creates min(visible + in flight, 100) - unfinished Jobs, and a Job whose
// pod is Pending is unfinished. So the Jobs never exceed the messages (nor
// 100), whether their pods run or not, and a message an encoder holds is
// never given a second Job.

// jobsBound is what the ScaledJob's settings promise for n messages.
func jobsBound(n int) string {
	return fmt.Sprintf("Jobs <= min(%d messages, maxReplicaCount 100) = %d", n, min(n, 100))
}

// messageCells is the summary's messages column for a video run.
func messageCells(s analyzerSummary, sent, dlq int) string {
	return fmt.Sprintf("%d processed / %d lost / %d twice / %d DLQ", s.Processed, sent-s.Processed, len(s.Duplicates), dlq)
}

// TestFaultVideoPodsPendingJobsStayBounded: the node takes no encoder pods
// (full), so every Job KEDA creates stays Pending while its message stays
// visible. For a minute (12 of KEDA's 5 s polls) the Jobs must stay at 10
// for 10 messages; then the node takes pods again and every message is
// encoded once, by those same 10 Jobs.
func TestFaultVideoPodsPendingJobsStayBounded(t *testing.T) {
	ctx := scenario(t, 10*time.Minute)
	const messages = 10
	const encoders = "scaledjob.keda.sh/name=videoencoder"
	v := startVideo(t, ctx, "video-encoder: the node takes no encoder pods for a minute, then does", encoders)
	e, tl := v.e, v.tl
	tl.Fault("encoder pods Pending (the node takes none)")
	tl.Expect("Jobs", 0, messages, jobsBound(messages))

	if err := localproc.PollContext(ctx, 500*time.Millisecond, 3*time.Minute, func() (bool, error) {
		visible, _ := v.emu.Depth(ctx, t, v.q.URL)
		return len(v.jobs(ctx)) >= messages && visible == messages, nil
	}); err != nil {
		t.Fatalf("%d Jobs for %d visible messages: %v (jobs %d)", messages, messages, err, len(v.jobs(ctx)))
	}
	// Every Job's pod exists and is Pending before the minute starts: on a
	// loaded machine the Job controller creates the last pods late.
	if err := localproc.PollContext(ctx, time.Second, 2*time.Minute, func() (bool, error) {
		return e.pendingPods(ctx, encoders) >= messages, nil
	}); err != nil {
		t.Fatalf("%d encoder pods never all Pending: %v (pending %d)", messages, err, e.pendingPods(ctx, encoders))
	}
	held := time.Now()
	maxJobs, minPending := 0, messages
	_ = localproc.PollContext(ctx, time.Second, time.Minute, func() (bool, error) {
		maxJobs = max(maxJobs, len(v.jobs(ctx)))
		minPending = min(minPending, e.pendingPods(ctx, encoders))
		return false, nil
	})
	t.Logf("a minute with every encoder pod Pending: at most %d Jobs, at least %d pods Pending", maxJobs, minPending)
	if maxJobs > messages {
		t.Errorf("%d Jobs for %d messages while their pods were Pending; the settings promise %s", maxJobs, messages, jobsBound(messages))
	}
	if minPending < messages {
		t.Errorf("only %d encoder pods Pending at one point: the fault did not hold every pod", minPending)
	}

	e.runner.Release()
	released := time.Now()
	tl.Mark("the node takes pods again")
	summary := v.waitProcessed(t, ctx, messages, 5*time.Minute)
	tl.Mark("all processed")
	dlqV, dlqF := v.emu.Depth(ctx, t, v.q.DLQURL)
	jobs := len(v.jobs(ctx))
	if summary.Processed != messages || len(summary.Duplicates) != 0 || dlqV+dlqF != 0 || jobs != messages {
		t.Errorf("after the hold: %d processed, %d twice, %d in the DLQ, %d Jobs; want %d, 0, 0, %d",
			summary.Processed, len(summary.Duplicates), dlqV+dlqF, jobs, messages, messages)
	}
	e.addFault(faultRow{
		fault: "encoder pods Pending (node full), 1 min", from: held.Sub(v.applied), to: released.Sub(v.applied),
		promised: jobsBound(messages), during: fmt.Sprintf("Jobs %d, Pending pods >= %d", maxJobs, minPending),
		noticed: -1, recovered: time.Since(released), messages: messageCells(summary, messages, dlqV+dlqF),
	})
}

// TestFaultVideoOperatorKilledNoJobTwice: every message is taken by an
// encoder when KEDA's operator is killed (SIGKILL); 10 more arrive while
// it is down. The restarted operator starts from an empty cache: it must
// count the 10 running Jobs and create 10, not 20, and every message is
// encoded once.
func TestFaultVideoOperatorKilledNoJobTwice(t *testing.T) {
	ctx := scenario(t, 10*time.Minute)
	const first, more = 10, 10
	v := startVideo(t, ctx, "video-encoder: KEDA's operator killed with 10 messages taken, 10 more sent while it is down", "")
	e, tl := v.e, v.tl

	// Every message taken by an encoder (a short encode may be done).
	if err := localproc.PollContext(ctx, 500*time.Millisecond, 3*time.Minute, func() (bool, error) {
		visible, _ := v.emu.Depth(ctx, t, v.q.URL)
		return len(v.jobs(ctx)) >= first && visible == 0, nil
	}); err != nil {
		t.Fatalf("%d Jobs taking %d messages: %v (jobs %d)", first, first, err, len(v.jobs(ctx)))
	}
	if err := e.cluster.Kill("keda-operator"); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	tl.Fault("KEDA operator SIGKILL")
	sendVideoRequests(t, ctx, v, more)
	tl.Mark(fmt.Sprintf("%d more messages sent", more))
	// Down for three of KEDA's polls: nothing may create a Job meanwhile.
	down := 0
	_ = localproc.PollContext(ctx, time.Second, 15*time.Second, func() (bool, error) {
		down = max(down, len(v.jobs(ctx)))
		return false, nil
	})
	if err := e.cluster.Restart(ctx, "keda-operator"); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	tl.Mark("operator restarted")
	tl.Expect("Jobs", first+more, first+more, "one Job a message: 20")

	summary := v.waitProcessed(t, ctx, first+more, 5*time.Minute)
	tl.Mark("all processed")
	dlqV, dlqF := v.emu.Depth(ctx, t, v.q.DLQURL)
	jobs := len(v.jobs(ctx))
	if down != first {
		t.Errorf("%d Jobs while the operator was down, want the %d it had made", down, first)
	}
	if jobs != first+more || summary.Processed != first+more || len(summary.Duplicates) != 0 || dlqV+dlqF != 0 {
		t.Errorf("after the restart: %d Jobs, %d processed, %d twice, %d in the DLQ; want %d, %d, 0, 0",
			jobs, summary.Processed, len(summary.Duplicates), dlqV+dlqF, first+more, first+more)
	}
	e.addFault(faultRow{
		fault: "KEDA operator SIGKILL, 10 messages taken, 10 sent while down", from: killed.Sub(v.applied), to: restarted.Sub(v.applied),
		promised: "no second Job for a held message: 20 Jobs", during: fmt.Sprintf("Jobs %d (none created while down), %d in the end", down, jobs),
		noticed: -1, recovered: time.Since(restarted), messages: messageCells(summary, first+more, dlqV+dlqF),
	})
}

// sendVideoRequests enqueues n encoding requests on the run's queue, as the
// producer does.
func sendVideoRequests(t *testing.T, ctx context.Context, v *videoRun, n int) {
	t.Helper()
	id := 0
	bodies, err := videojob.Build(n, func() string { id++; return fmt.Sprintf("%s-%d", t.Name(), id) })
	if err != nil {
		t.Fatal(err)
	}
	send(t, ctx, v.emu, v.q.URL, bodies)
}

// pendingPods counts the pods matching selector whose phase is Pending.
func (e *env) pendingPods(ctx context.Context, selector string) int {
	pods, err := e.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return 0
	}
	n := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodPending || p.Status.Phase == "" {
			n++
		}
	}
	return n
}
