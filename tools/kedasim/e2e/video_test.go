//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/pkg/videojob"
	"github.com/keda-eks-samples/workloads/tools/kedasim/timeline"
)

// TestVideoEncoderJobsPerMessageSurviveAKill: the video-encoder overlay on
// the local control plane. Its producer Job enqueues 10 encoding requests;
// KEDA's ScaledJob (aws-sqs-queue, queueLength 1, in-flight counted,
// strategy default) creates one Job per message; each Job's pod runs the
// real videoencoder, which takes one message. One encoder is sent SIGTERM
// mid-encode, as a node drain or a spot reclaim would: it releases its
// message and reports the kill to the resultanalyzer, exits 143, and the
// podFailurePolicy's Ignore rule has the Job controller start a new pod
// without counting a failure; that pod encodes the released message. In the
// end the resultanalyzer counts 10 processed, 1 killed, no message twice,
// and the queue and its DLQ are empty.
func TestVideoEncoderJobsPerMessageSurviveAKill(t *testing.T) {
	ctx := scenario(t, 10*time.Minute)
	const messages = 10
	v := startVideo(t, ctx, "video-encoder: 10 messages, queueLength 1, one Job per message, one encoder killed", "")
	e, emu, q, tl, applied := v.e, v.emu, v.q, v.tl, v.applied
	listJobs := func() []batchv1.Job { return v.jobs(ctx) }
	tl.Expect("Jobs", messages, messages, "one Job a message: 10")

	// KEDA creates one Job per message; every message is taken by an
	// encoder. (Not all held at once: a 480p encode, 4 s here, can end
	// before the last pod starts on a loaded machine.)
	if err := localproc.PollContext(ctx, 500*time.Millisecond, 3*time.Minute, func() (bool, error) {
		visible, _ := emu.Depth(ctx, t, q.URL)
		return len(listJobs()) >= messages && visible == 0, nil
	}); err != nil {
		t.Fatalf("%d Jobs taking %d messages: %v (jobs %d)", messages, messages, err, len(listJobs()))
	}
	// queueLength 1 and the default strategy: one Job per message, counted
	// exactly. KEDA wrote the ScaledJob back unchanged when it added its
	// finalizer (generation 1), so its scale loop ran once from the start
	// and was not restarted while it created Jobs.
	all := listJobs()
	jobs := len(all)
	if jobs > 0 {
		first := all[0].CreationTimestamp.Time
		for _, j := range all {
			if j.CreationTimestamp.Time.Before(first) {
				first = j.CreationTimestamp.Time
			}
		}
		// The first Job's creation (whole seconds) after the apply.
		e.noteScale(first.Sub(applied.Truncate(time.Second)))
	}
	if jobs != messages {
		t.Errorf("KEDA created %d Jobs for %d messages, want exactly one per message", jobs, messages)
	}
	sj, err := e.kedaClient(t).Resource(schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledjobs"}).Namespace(namespace).Get(ctx, "videoencoder", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g := sj.GetGeneration(); g != 1 {
		t.Errorf("ScaledJob generation %d after KEDA added its finalizer, want 1 (a spec KEDA writes back otherwise restarts its scale loop)", g)
	}
	t.Logf("%d Jobs for %d messages, every message taken by an encoder, %s after apply", jobs, messages, time.Since(applied).Round(time.Second))

	// Kill one encoder mid-encode: one whose log says it started encoding.
	// A 4k encode (32 s here) is still running when the signal lands.
	victim := e.runningPod(t, ctx, "scaledjob.keda.sh/name=videoencoder", func(p corev1.Pod) bool {
		log, _ := os.ReadFile(filepath.Join(e.out, "pods", namespace+"_"+p.Name+"_videoencoder.log"))
		return bytes.Contains(log, []byte(`"msg":"encoding started"`)) && bytes.Contains(log, []byte(`"quality":"`+videojob.Q4K+`"`))
	})
	tl.Mark("SIGTERM " + victim.Name)
	if err := e.runner.Signal(namespace, victim.Name, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	victimJob := victim.Labels["job-name"]

	// Every message processed, every Job done.
	summary := v.waitProcessed(t, ctx, messages, 5*time.Minute)
	tl.Mark("all processed")
	t.Logf("resultanalyzer: %+v", summary)
	if summary.Processed != messages || summary.Killed != 1 || len(summary.Duplicates) != 0 {
		t.Errorf("resultanalyzer counts %d processed, %d killed, %d processed twice; want %d, 1, 0",
			summary.Processed, summary.Killed, len(summary.Duplicates), messages)
	}
	if v, f := emu.Depth(ctx, t, q.DLQURL); v+f != 0 {
		t.Errorf("DLQ holds %d messages, want 0", v+f)
	}

	// The killed Job: the 143 was ignored (podFailurePolicy), a new pod
	// finished its work, and the Job completed with no failure counted.
	j, err := e.client.BatchV1().Jobs(namespace).Get(ctx, victimJob, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := e.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + victimJob})
	if err != nil {
		t.Fatal(err)
	}
	var exit143 bool
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 143 {
				exit143 = true
			}
		}
	}
	if !finished(*j, batchv1.JobComplete) || j.Status.Failed != 0 || !exit143 {
		t.Errorf("killed Job %s: complete %v, failed %d, a pod with exit 143 %v; want true, 0, true (podFailurePolicy Ignore on 143)",
			victimJob, finished(*j, batchv1.JobComplete), j.Status.Failed, exit143)
	}
	for _, j := range listJobs() {
		if finished(j, batchv1.JobFailed) {
			t.Errorf("Job %s failed", j.Name)
		}
	}
	if got := len(listJobs()); got != messages {
		t.Errorf("%d Jobs in the end for %d messages, want exactly %d (the killed one restarts its pod, not a Job)", got, messages, messages)
	}
	t.Logf("whole run %s", time.Since(e.started).Round(time.Second))
}

// finished reports whether a Job has condition c True.
func finished(j batchv1.Job, c batchv1.JobConditionType) bool {
	for _, cond := range j.Status.Conditions {
		if cond.Type == c && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// runningPod returns a Running pod matching selector for which ok holds.
func (e *env) runningPod(t *testing.T, ctx context.Context, selector string, ok func(corev1.Pod) bool) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	if err := localproc.PollContext(ctx, 250*time.Millisecond, time.Minute, func() (bool, error) {
		pods, err := e.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && ok(p) {
				pod = p
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("a running pod %s: %v", selector, err)
	}
	return pod
}

// videoRun is the video-encoder overlay on a local cluster: its queue on the
// SQS emulator, the resultanalyzer forwarded, a timeline of Jobs and queue.
type videoRun struct {
	e        *env
	emu      *sqstest.Emulator
	q        sqstest.Queue
	analyzer string // the resultanalyzer's base URL
	tl       *timeline.Timeline
	applied  time.Time
	stop     func() // stops the timeline's sampling
}

// analyzerSummary is the part of the resultanalyzer's /summary the
// scenarios check.
type analyzerSummary struct {
	Processed, Killed, Total int
	Duplicates               []any
}

// startVideo applies the video-encoder overlay (its producer Job enqueues
// 10 messages). hold, if not empty, is a pod selector the node takes no
// pods of from the start (podrunner Hold).
func startVideo(t *testing.T, ctx context.Context, title, hold string) *videoRun {
	t.Helper()
	v := &videoRun{emu: sqstest.Start(t)}
	v.q = v.emu.NewQueue(t, sqstest.WithVisibilityTimeout(120*time.Second))
	v.e = start(t, ctx)
	if hold != "" {
		if err := v.e.runner.Hold(hold); err != nil {
			t.Fatal(err)
		}
	}
	v.analyzer = v.e.forward(t, "app.kubernetes.io/name=resultanalyzer", 0)
	v.tl = timeline.New(title,
		timeline.Series{Name: "jobs", Panel: "Jobs"}, timeline.Series{Name: "running", Panel: "Jobs"},
		timeline.Series{Name: "complete", Panel: "Jobs"}, timeline.Series{Name: "visible", Panel: "queue"},
		timeline.Series{Name: "in flight", Panel: "queue"})
	// The samples read with a context of their own: the test's is canceled
	// before its cleanups, this one only once sampling has stopped.
	readCtx, readDone := context.WithCancel(context.WithoutCancel(ctx))
	v.stop = v.e.sample(ctx, v.tl, func() []float64 {
		ctx := readCtx
		jobs := v.jobs(ctx)
		var running, complete float64
		for _, j := range jobs {
			running += float64(j.Status.Active)
			if finished(j, batchv1.JobComplete) {
				complete++
			}
		}
		visible, inFlight := v.emu.Depth(ctx, t, v.q.URL)
		return []float64{float64(len(jobs)), running, complete, float64(visible), float64(inFlight)}
	})
	t.Cleanup(func() {
		v.stop()
		readDone()
		saveTimeline(t, v.tl, v.e.out)
	})
	v.applied = time.Now()
	v.e.apply(t, ctx, "video-encoder", v.e.localValues(t, map[string]string{
		"SQS_ENDPOINT":        v.emu.Endpoint,
		"VIDEO_QUEUE_URL":     v.q.URL,
		"RESULT_ANALYZER_URL": v.analyzer,
	}))
	v.tl.Mark("applied (producer Job enqueues 10)")
	return v
}

// jobs lists the ScaledJob's Jobs (nil when the API does not answer).
func (v *videoRun) jobs(ctx context.Context) []batchv1.Job {
	jobs, err := v.e.client.BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{LabelSelector: "scaledjob.keda.sh/name=videoencoder"})
	if err != nil {
		return nil
	}
	return jobs.Items
}

// waitProcessed waits until the resultanalyzer counts n processed, the
// queue is empty and no Job is active, and returns its summary.
func (v *videoRun) waitProcessed(t *testing.T, ctx context.Context, n int, timeout time.Duration) analyzerSummary {
	t.Helper()
	var summary analyzerSummary
	if err := localproc.PollContext(ctx, time.Second, timeout, func() (bool, error) {
		if err := svctest.GetJSON(v.analyzer+"/summary", &summary); err != nil {
			return false, nil
		}
		visible, inFlight := v.emu.Depth(ctx, t, v.q.URL)
		active := 0
		for _, j := range v.jobs(ctx) {
			active += int(j.Status.Active)
		}
		return summary.Processed >= n && visible+inFlight == 0 && active == 0, nil
	}); err != nil {
		t.Fatalf("%d processed and the Jobs finished: %v (summary %+v)", n, err, summary)
	}
	return summary
}
