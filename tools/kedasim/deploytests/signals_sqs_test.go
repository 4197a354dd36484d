package deploytests

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/kedacore/keda/v2/pkg/scaling/scaledjob"

	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"

	"github.com/keda-eks-samples/workloads/tools/kedasim/kedascaler"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
	"github.com/keda-eks-samples/workloads/tools/kedasim/scalemath"
)

// The SQS overlays' signal: messages our producer enqueues in the SQS
// emulator, read by KEDA's aws-sqs-queue scaler built from the rendered
// trigger (only awsEndpoint and queueURL point at the emulator, which
// matches whole queue URLs), consumed by our real workers.

// kedaPollEvery stands in for the triggers' pollingInterval (15 s and 10 s
// as rendered): the arithmetic per poll is the same, only faster.
const kedaPollEvery = 200 * time.Millisecond

// produce runs the real producer binary: NUM_MESSAGES encoding requests on
// queueURL; it must exit 0.
func produce(t *testing.T, emu *sqstest.Emulator, queueURL string, n int) {
	t.Helper()
	env := emu.Env(map[string]string{"QUEUE_URL": queueURL, "NUM_MESSAGES": strconv.Itoa(n), "LOG_FORMAT": "text"})
	p := svctest.StartBinary(t, svctest.Build(t, "services/producer"), env)
	if code := p.Wait(t, 60*time.Second); code != 0 {
		t.Fatalf("producer exited %d:\n%s", code, p.Output)
	}
}

// Must-show 4: 200 messages → KEDA reports 200 and the HPA asks for
// min(15, ⌈200/5⌉) = 15 sqsworker replicas; the real sqsworker drains the
// queue → KEDA reports 0, inactive, and the HPA goes back to 1.
func TestSQSWorkerScaledObjectFollowsTheQueue(t *testing.T) {
	emu := sqstest.Start(t)
	q := emu.NewQueue(t)
	tr := onlyTrigger(t, "sqs-worker", "aws-sqs-queue")
	if tr.Kind != "ScaledObject" || tr.Min != 1 || tr.Max != 15 {
		t.Fatalf("%s: min %d max %d; this test expects the sqs-worker ScaledObject with 1..15", tr.Owner, tr.Min, tr.Max)
	}
	s, target, desired := localScaler(t, tr, map[string]string{"awsEndpoint": emu.Endpoint, "queueURL": q.URL})

	r, _ := waitKeda(t, s, kedaPollEvery, 10*time.Second, "an empty queue", func(kedascaler.Reading) bool { return true })
	if r.Value != 0 || r.Active {
		t.Fatalf("empty queue: KEDA reports %v active=%v, want 0 inactive", r.Value, r.Active)
	}

	const messages = 200
	produce(t, emu, q.URL, messages)
	r, _ = waitKeda(t, s, kedaPollEvery, 10*time.Second, "200 messages", func(r kedascaler.Reading) bool { return r.Value == messages })
	if !r.Active {
		t.Errorf("200 messages: KEDA reports inactive")
	}
	got := desired(r.Value, tr.Min)
	t.Logf("queue of %d: KEDA reports %v active=%v; target %s %s -> HPA desired %d (from %d)", messages, r.Value, r.Active, target.Type, scalemath.TargetString(target), got, tr.Min)
	if want := min(tr.Max, int32((messages+4)/5)); got != want || want != 15 {
		t.Errorf("200 messages: HPA desired %d, want min(15, ceil(200/5)) = 15", got)
	}

	// scaleOnInFlight (rendered "true"): messages a worker holds still count.
	client := emu.Client(t)
	recv, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 3})
	if err != nil || len(recv.Messages) == 0 {
		t.Fatalf("receive: %v (%d messages)", err, len(recv.Messages))
	}
	if v, f := emu.Depth(t.Context(), t, q.URL); f != len(recv.Messages) || v+f != messages {
		t.Fatalf("after receiving %d: visible %d in flight %d", len(recv.Messages), v, f)
	}
	r, _ = waitKeda(t, s, kedaPollEvery, 5*time.Second, "a reading", func(kedascaler.Reading) bool { return true })
	if r.Value != messages {
		t.Errorf("%d of 200 in flight: KEDA reports %v, want 200 (scaleOnInFlight)", len(recv.Messages), r.Value)
	}
	for _, m := range recv.Messages { // hand them back to the worker
		if _, err := client.ChangeMessageVisibility(t.Context(), &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(q.URL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
		}); err != nil {
			t.Fatal(err)
		}
	}

	worker := svctest.StartBinary(t, svctest.Build(t, "services/sqsworker"), svctest.Env(t, emu.Env(map[string]string{
		"QUEUE_URL":             q.URL,
		"WORKER_CONCURRENCY":    "20",
		"PROCESS_MIN_DELAY":     "20ms",
		"PROCESS_MAX_DELAY":     "60ms",
		"SQS_WAIT_TIME":         "1s",
		"DELETE_FLUSH_INTERVAL": "100ms",
		"LOG_LEVEL":             "info",
	})))
	r, seen := waitKeda(t, s, kedaPollEvery, 60*time.Second, "a drained queue", func(r kedascaler.Reading) bool { return r.Value == 0 })
	t.Logf("while sqsworker drained the queue KEDA reported %v", seen)
	if r.Active {
		t.Errorf("drained queue: KEDA reports active")
	}
	if got := desired(r.Value, 15); got != tr.Min {
		t.Errorf("drained queue: HPA desired %d from 15, want the minimum %d", got, tr.Min)
	}
	if v, f := emu.Depth(t.Context(), t, q.URL); v != 0 || f != 0 {
		t.Errorf("KEDA reports 0 but the queue holds visible %d in flight %d", v, f)
	}
	select {
	case <-worker.Done():
		t.Fatalf("sqsworker exited while draining:\n%s", worker.Output)
	default:
	}
}

// TestJobDecisionMatchesKedasOwnTests replays KEDA v2.21's own strategy test
// vectors (https://github.com/kedacore/keda/blob/v2.21.0/pkg/scaling/executor/scale_jobs_test.go
// L90-202) through scalemath, plus one worked example: queueLength 1,
// maxReplicaCount 10, 6 messages visible and 2 in flight (maxScale 8), 2
// Jobs running, none pending. default creates 8 - 2 = 6, one per message
// not yet taken; accurate creates 8 (8 + 2 - 0 <= 10, so maxScale -
// pending), two too many, because in-flight messages already have a Job.
func TestJobDecisionMatchesKedasOwnTests(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	cases := []struct {
		st                                         kedav1alpha1.ScalingStrategy
		maxScale, running, pending, maxReps, scale int64
		wantMax, wantScaleTo                       int64
	}{
		{kedav1alpha1.ScalingStrategy{Strategy: "default"}, 3, 2, 0, 5, 1, 1, 1},
		{kedav1alpha1.ScalingStrategy{Strategy: "default"}, 2, 0, 0, 5, 1, 2, 1},
		{kedav1alpha1.ScalingStrategy{Strategy: "custom", CustomScalingQueueLengthDeduction: i32(1), CustomScalingRunningJobPercentage: "0.5"}, 3, 2, 0, 5, 1, 1, 1},
		{kedav1alpha1.ScalingStrategy{Strategy: "custom", CustomScalingQueueLengthDeduction: i32(1), CustomScalingRunningJobPercentage: "0.5"}, 10, 0, 0, 10, 1, 9, 1},
		{kedav1alpha1.ScalingStrategy{Strategy: "custom", CustomScalingQueueLengthDeduction: i32(-2), CustomScalingRunningJobPercentage: "0"}, 3, 2, 0, 4, 1, 4, 1},
		{kedav1alpha1.ScalingStrategy{Strategy: "custom", CustomScalingRunningJobPercentage: "0.5"}, 10, 2, 0, 100, 1, 9, 1},
		{kedav1alpha1.ScalingStrategy{Strategy: "accurate"}, 3, 2, 0, 5, 1, 3, 1},
		{kedav1alpha1.ScalingStrategy{Strategy: "accurate"}, 5, 2, 0, 5, 1, 3, 1},
		{kedav1alpha1.ScalingStrategy{Strategy: "accurate"}, 3, 4, 2, 10, 1, 1, 1},
		{kedav1alpha1.ScalingStrategy{Strategy: "accurate"}, 3, 3, 3, 5, 1, 0, 1},
		{kedav1alpha1.ScalingStrategy{Strategy: "accurate"}, 20, 15, 10, 20, 1, 5, 1},
		{kedav1alpha1.ScalingStrategy{Strategy: "eager"}, 4, 3, 0, 10, 1, 4, 10},
		{kedav1alpha1.ScalingStrategy{Strategy: "eager"}, 4, 7, 0, 10, 1, 3, 10},
		{kedav1alpha1.ScalingStrategy{Strategy: "eager"}, 4, 1, 6, 10, 1, 3, 10},
		{kedav1alpha1.ScalingStrategy{Strategy: "eager"}, 15, 0, 0, 10, 1, 10, 10},
		// The worked example: queueLength 1, max 10, 6 visible + 2 in flight, 2 running.
		{kedav1alpha1.ScalingStrategy{Strategy: "default"}, 8, 2, 0, 10, 8, 6, 8},
		{kedav1alpha1.ScalingStrategy{Strategy: "accurate"}, 8, 2, 0, 10, 8, 8, 8},
	}
	for _, c := range cases {
		gotMax, gotScaleTo := scalemath.EffectiveMaxScale(c.st, c.maxScale, c.running, c.pending, c.maxReps, c.scale)
		if gotMax != c.wantMax || gotScaleTo != c.wantScaleTo {
			t.Errorf("%s GetEffectiveMaxScale(%d, %d, %d, %d, %d) = %d, %d; KEDA's tests want %d, %d",
				c.st.Strategy, c.maxScale, c.running, c.pending, c.maxReps, c.scale, gotMax, gotScaleTo, c.wantMax, c.wantScaleTo)
		}
	}
	// The rest of the decision (min 2, max 10 -> MaxReplicaCount() 8): the
	// minimum first, nothing while inactive, never more than scaleTo.
	two, ten := int32(2), int32(10)
	sj := &kedav1alpha1.ScaledJob{Spec: kedav1alpha1.ScaledJobSpec{MinReplicaCount: &two, MaxReplicaCount: &ten}}
	for _, c := range []struct {
		active                              bool
		running, pending, scaleTo, maxScale int64
		want                                int64
	}{
		{true, 0, 0, 0, 0, 2},  // below the minimum: min - running
		{true, 2, 0, 3, 3, 3},  // default: 3 - (2 running - 2 min)
		{true, 4, 0, 5, 3, 1},  // capped by the effective max: 3 - (4 - 2)
		{false, 0, 0, 5, 5, 0}, // inactive: nothing
		{true, 9, 0, 1, 1, 0},  // negative effective max: nothing
	} {
		if got := scalemath.JobDecision(sj, c.active, c.running, c.pending, c.scaleTo, c.maxScale); got != c.want {
			t.Errorf("jobDecision(active %v, running %d, pending %d, scaleTo %d, maxScale %d) = %d, want %d",
				c.active, c.running, c.pending, c.scaleTo, c.maxScale, got, c.want)
		}
	}
}

// renderedScaledJob is the overlay's one ScaledJob, decoded strictly.
func renderedScaledJob(t *testing.T, overlay string) *kedav1alpha1.ScaledJob {
	t.Helper()
	for _, o := range renderOverlay(t, svctest.RepoRoot(t), overlay) {
		if o.Kind != "ScaledJob" {
			continue
		}
		v, err := manifests.DecodeStrict(o)
		if err != nil {
			t.Fatal(err)
		}
		return v.(*kedav1alpha1.ScaledJob)
	}
	t.Fatalf("overlay %s renders no ScaledJob", overlay)
	return nil
}

// Must-show 5: 10 encoding requests → each poll, KEDA's aws-sqs-queue scaler
// reads the queue, KEDA's ScaledJob metric code turns that into scaleTo and
// maxScale, the executor's decision for the overlay's scalingStrategy (see
// jobDecision) says how many Jobs to create, and the test starts that many
// real videoencoder processes, counting those still running as KEDA counts
// unfinished Jobs. The result analyzer must see every message processed
// exactly once.
func TestVideoEncoderScaledJobProcessesEachMessageOnce(t *testing.T) {
	emu := sqstest.Start(t)
	q := emu.NewQueue(t)
	sj := renderedScaledJob(t, "video-encoder")
	tr := onlyTrigger(t, "video-encoder", "aws-sqs-queue")
	s, _, _ := localScaler(t, tr, map[string]string{"awsEndpoint": emu.Endpoint, "queueURL": q.URL})
	specs := s.GetMetricSpecForScaling(t.Context())
	t.Logf("%s: strategy %q, queueLength %s, scaleOnInFlight %s, replicas %d..%d",
		tr.Owner, sj.Spec.ScalingStrategy.Strategy, tr.Spec.Metadata["queueLength"], tr.Spec.Metadata["scaleOnInFlight"], sj.MinReplicaCount(), sj.MaxReplicaCount())

	raEnv := svctest.Env(t, map[string]string{"LOG_LEVEL": "info"})
	ra := svctest.StartBinary(t, svctest.Build(t, "services/resultanalyzer"), raEnv)
	raURL := "http://127.0.0.1:" + raEnv["PORT"]
	ra.WaitReady(t, raURL)
	encoder := svctest.Build(t, "services/videoencoder")

	const messages = 10
	produce(t, emu, q.URL, messages)

	var jobs []*svctest.Process
	running := func() (n int64) { // KEDA: Jobs of the ScaledJob not finished
		for _, j := range jobs {
			select {
			case <-j.Done():
			default:
				n++
			}
		}
		return n
	}
	start := func() {
		jobs = append(jobs, svctest.StartBinary(t, encoder, emu.Env(map[string]string{
			"QUEUE_URL":              q.URL,
			"RESULT_ANALYZER_URL":    raURL,
			"JOB_ID":                 fmt.Sprintf("videoencoder-%d", len(jobs)+1),
			"PROCESS_SLEEP_TIME":     "0.5",
			"QUALITY_SCALING":        "linear", // 0.25 s (480p) to 2 s (4k)
			"IDLE_TIMEOUT":           "2s",
			"SQS_WAIT_TIME":          "1",
			"SQS_VISIBILITY_TIMEOUT": "30",
			"LOG_FORMAT":             "text",
		})))
	}

	deadline := time.Now().Add(90 * time.Second)
	var peak int64
	for poll := 1; ; poll++ {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		ms, active, err := s.GetMetricsAndActivity(ctx, specs[0].External.Metric.Name)
		cancel()
		if err != nil {
			t.Fatalf("poll %d: KEDA's scaler: %v", poll, err)
		}
		queueLength, maxValue, _ := scaledjob.CalculateQueueLengthAndMaxValue(ms, specs, sj.MaxReplicaCount())
		isActive, scaleTo, maxScale, _ := scaledjob.IsScaledJobActive(
			[]scaledjob.ScalerMetrics{{QueueLength: queueLength, MaxValue: maxValue, IsActive: active}},
			sj.Spec.ScalingStrategy.MultipleScalersCalculation, sj.MinReplicaCount(), sj.MaxReplicaCount())
		// pending: processes start at once, so no Job waits for its pod.
		run := running()
		create := scalemath.JobDecision(sj, isActive, run, 0, scaleTo, maxScale)
		for range create {
			start()
		}
		peak = max(peak, running())
		if create > 0 || poll == 1 {
			t.Logf("poll %d: KEDA queue %v active %v scaleTo %d maxScale %d, running %d -> create %d", poll, queueLength, isActive, scaleTo, maxScale, run, create)
		}
		if poll == 1 && (queueLength != messages || create != messages) {
			t.Fatalf("first poll: KEDA reads %v and creates %d Jobs; want %d and %d (one per message, queueLength 1)", queueLength, create, messages, messages)
		}
		if queueLength == 0 && !isActive && run == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained within 90s: KEDA reads %v, %d jobs running of %d started", queueLength, run, len(jobs))
		}
		time.Sleep(kedaPollEvery)
	}
	t.Logf("%d Jobs started, at most %d running at once", len(jobs), peak)
	if peak > sj.MaxReplicaCount() {
		t.Errorf("%d Jobs ran at once, maxReplicaCount %d", peak, sj.MaxReplicaCount())
	}
	for i, j := range jobs {
		if code := j.Wait(t, time.Second); code != 0 {
			t.Errorf("job %d exited %d:\n%s", i+1, code, j.Output)
		}
	}
	if v, f := emu.Depth(t.Context(), t, q.URL); v != 0 || f != 0 {
		t.Errorf("queue holds visible %d, in flight %d", v, f)
	}
	if v, f := emu.Depth(t.Context(), t, q.DLQURL); v != 0 || f != 0 {
		t.Errorf("dead-letter queue holds %d + %d", v, f)
	}

	var sum struct {
		Processed, Killed int
		Duplicates        []json.RawMessage
	}
	if err := svctest.GetJSON(raURL+"/summary", &sum); err != nil {
		t.Fatal(err)
	}
	var events []struct{ Kind, MessageID string }
	if err := svctest.GetJSON(raURL+"/events", &events); err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for _, e := range events {
		if e.Kind == "processed" {
			distinct[e.MessageID] = true
		}
	}
	var lines []string
	if err := svctest.GetJSON(raURL+"/get/count", &lines); err != nil {
		t.Fatal(err)
	}
	t.Logf("result analyzer: processed %d, killed %d, duplicates %d, distinct messages %d; /get/count %d lines", sum.Processed, sum.Killed, len(sum.Duplicates), len(distinct), len(lines))
	if sum.Processed != messages || sum.Killed != 0 || len(sum.Duplicates) != 0 {
		t.Errorf("summary: processed %d killed %d duplicates %d; want %d, 0, 0", sum.Processed, sum.Killed, len(sum.Duplicates), messages)
	}
	if lost := messages - len(distinct); lost != 0 || distinct[""] {
		t.Errorf("%d of %d messages lost (processed message ids %v)", lost, messages, distinct)
	}
	if len(lines) != messages || !strings.HasSuffix(lines[len(lines)-1], fmt.Sprintf("processed count %d", messages)) {
		t.Errorf("/get/count: %q", lines)
	}
}

// scaleOnInFlight, in two phases, as the shipped trigger has it and with
// it set to false (the counterexample: KEDA's scale-down that ignores the
// messages workers hold). Phase 1: 10 messages, every one received by a
// worker and not yet deleted (visible 0, in flight 10): the shipped trigger
// reads 10 and keeps ⌈10/5⌉ = 2 pods; false reads 0, inactive, and would
// take the workers holding them down to the minimum. Phase 2: 5 more
// arrive: 15 and 3 pods, where false reads 5 and 1.
func TestSQSWorkerCountsTheMessagesWorkersHold(t *testing.T) {
	emu := sqstest.Start(t)
	q := emu.NewQueue(t, sqstest.WithVisibilityTimeout(5*time.Minute))
	tr := onlyTrigger(t, "sqs-worker", "aws-sqs-queue")
	if tr.Spec.Metadata["scaleOnInFlight"] != "true" {
		t.Fatalf("%s: scaleOnInFlight %q, want \"true\"", tr.Owner, tr.Spec.Metadata["scaleOnInFlight"])
	}
	local := map[string]string{"awsEndpoint": emu.Endpoint, "queueURL": q.URL}
	s, _, desired := localScaler(t, tr, local)
	off := maps.Clone(local)
	off["scaleOnInFlight"] = "false"
	sOff, _, _ := localScaler(t, tr, off)

	produce(t, emu, q.URL, 10)
	client := emu.Client(t)
	held := 0
	for held < 10 {
		recv, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		held += len(recv.Messages)
	}
	for _, phase := range []struct {
		send              int
		want, wantOff     float64
		pods, podsOff     int32
		active, activeOff bool
	}{
		{0, 10, 0, 2, tr.Min, true, false},
		{5, 15, 5, 3, 1, true, true},
	} {
		if phase.send > 0 {
			produce(t, emu, q.URL, phase.send)
		}
		v, f := emu.Depth(t.Context(), t, q.URL)
		r, _ := waitKeda(t, s, kedaPollEvery, 10*time.Second, "the queue", func(r kedascaler.Reading) bool { return r.Value == phase.want })
		rOff, _ := waitKeda(t, sOff, kedaPollEvery, 10*time.Second, "the queue without in flight", func(r kedascaler.Reading) bool { return r.Value == phase.wantOff })
		got, gotOff := desired(r.Value, 2), desired(rOff.Value, 2)
		t.Logf("visible %d, in flight %d: shipped reads %v active=%v -> %d pods; scaleOnInFlight false reads %v active=%v -> %d pods",
			v, f, r.Value, r.Active, got, rOff.Value, rOff.Active, gotOff)
		if r.Active != phase.active || got != phase.pods {
			t.Errorf("visible %d, in flight %d: shipped trigger active=%v -> %d pods, want active=%v and %d", v, f, r.Active, got, phase.active, phase.pods)
		}
		if rOff.Active != phase.activeOff || gotOff != phase.podsOff {
			t.Errorf("visible %d, in flight %d: with scaleOnInFlight false active=%v -> %d pods, want active=%v and %d (the counterexample)", v, f, rOff.Active, gotOff, phase.activeOff, phase.podsOff)
		}
	}
}
