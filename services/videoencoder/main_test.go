package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keda-eks-samples/workloads/pkg/cli"
	"github.com/keda-eks-samples/workloads/pkg/testutil/otlptest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/services/videoencoder/internal/job"
)

func TestMain(m *testing.M) { svctest.RunMain(m, main) }

func TestExitStatusPerOutcome(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		outcome job.Outcome
		err     error
		want    int
	}{
		{job.Processed, nil, 0},
		{job.Idle, nil, 0},
		{job.Stopped, nil, 0},
		{job.Poison, boom, ExitPoison},
		{job.Killed, nil, ExitKilled},
		{job.Killed, boom, ExitKilled},
		{job.Failed, boom, 1},
	}
	for _, tt := range tests {
		if got := cli.ExitCode(exitError(tt.outcome, tt.err)); got != tt.want {
			t.Errorf("%s (err %v): exit %d, want %d", tt.outcome, tt.err, got, tt.want)
		}
	}
}

// TestJob runs the encoder as real processes (the test binary re-executed as
// main) against one fauxqs emulator and one real result analyzer shared by
// the subtests; each subtest has its own queue and filters the analyzer's
// events by its own message ids.
func TestJob(t *testing.T) {
	emu := sqstest.Start(t)
	ra := startAnalyzer(t)
	client := emu.Client(t)

	env := func(queueURL string, extra map[string]string) map[string]string {
		e := emu.Env(map[string]string{
			"QUEUE_URL":           queueURL,
			"RESULT_ANALYZER_URL": ra.URL,
			"SQS_WAIT_TIME":       "1",
			"IDLE_TIMEOUT":        "30s",
			"LOG_FORMAT":          "text",
			"LOG_LEVEL":           "debug",
		})
		maps.Copy(e, extra)
		return e
	}
	send := func(t *testing.T, queueURL, body string) string {
		t.Helper()
		out, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)})
		if err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		return aws.ToString(out.MessageId)
	}
	request := func(n int, quality string) string {
		return fmt.Sprintf(`{"id":"req-%d","video":"video-%d.mp4","quality":%q}`, n, n, quality)
	}
	depth := func(t *testing.T, queueURL string) (int, int) {
		t.Helper()
		return emu.Depth(context.Background(), t, queueURL)
	}

	t.Run("ProcessesOneMessageDeletesAndReports", func(t *testing.T) {
		q := emu.NewQueue(t)
		id := send(t, q.URL, request(1, "720p"))
		// The job's outcome counter must reach the collector before the
		// process exits: a job lives seconds, far less than an interval.
		recv := otlptest.New(t)
		extra := recv.Env("3600000") // the only export is the flush at exit
		extra["PROCESS_SLEEP_TIME"], extra["JOB_ID"] = "200ms", "happy-1"
		p := svctest.StartProcess(t, env(q.URL, extra))
		if code := p.Wait(t, svctest.ProcessWait); code != 0 {
			t.Fatalf("exit %d, want 0; output:\n%s", code, p.Output)
		}
		if v, ok := recv.Value(serviceName, "videoencoder.jobs", map[string]string{"outcome": "processed"}); !ok || v != 1 {
			t.Errorf("videoencoder.jobs{outcome=processed} on the wire = %v (exported: %v), want 1", v, ok)
		}
		if v, f := depth(t, q.URL); v != 0 || f != 0 {
			t.Fatalf("queue visible=%d inFlight=%d, want empty (message deleted)", v, f)
		}
		evs := ra.Events(t, id)
		if len(evs) != 1 {
			t.Fatalf("analyzer has %d events for %s, want 1: %+v", len(evs), id, evs)
		}
		e := evs[0]
		if e.Kind != "processed" || e.Outcome != "processed" || e.JobID != "happy-1" ||
			!strings.Contains(e.Detail, "video=video-1.mp4") || !strings.Contains(e.Detail, "quality=720p") ||
			e.Start.IsZero() || e.End.Before(e.Start) {
			t.Fatalf("unexpected event %+v", e)
		}
	})

	t.Run("ParallelJobsEachTakeOneDistinctMessage", func(t *testing.T) {
		const n = 5
		q := emu.NewQueue(t)
		qualities := []string{"480p", "720p", "1080p", "4k"}
		var ids []string
		for i := range n {
			ids = append(ids, send(t, q.URL, request(i, qualities[i%len(qualities)])))
		}
		var procs []*svctest.Process
		for i := range n {
			procs = append(procs, svctest.StartProcess(t, env(q.URL, map[string]string{
				"PROCESS_SLEEP_TIME": "1s", "JOB_ID": "parallel-" + strconv.Itoa(i),
			})))
		}
		for i, p := range procs {
			if code := p.Wait(t, svctest.ProcessWait); code != 0 {
				t.Fatalf("encoder %d: exit %d, want 0; output:\n%s", i, code, p.Output)
			}
			if c := strings.Count(p.Output.String(), `msg="message processed and deleted"`); c != 1 {
				t.Fatalf("encoder %d processed %d messages, want 1; output:\n%s", i, c, p.Output)
			}
		}
		if v, f := depth(t, q.URL); v != 0 || f != 0 {
			t.Fatalf("queue visible=%d inFlight=%d, want empty", v, f)
		}
		evs := ra.Events(t, ids...)
		gotMsgs, gotJobs := map[string]int{}, map[string]int{}
		for _, e := range evs {
			if e.Kind != "processed" {
				t.Fatalf("unexpected event %+v", e)
			}
			gotMsgs[e.MessageID]++
			gotJobs[e.JobID]++
		}
		if len(evs) != n || len(gotMsgs) != n || len(gotJobs) != n {
			t.Fatalf("want %d processed events, one per message and per job; got %d events, %d messages, %d jobs: %+v",
				n, len(evs), len(gotMsgs), len(gotJobs), evs)
		}
		if got := slices.Sorted(maps.Keys(gotMsgs)); !slices.Equal(got, slices.Sorted(slices.Values(ids))) {
			t.Fatalf("processed %v, sent %v", got, ids)
		}
	})

	t.Run("SIGTERMMidEncodeReleasesAndReportsKill", func(t *testing.T) {
		q := emu.NewQueue(t)
		id := send(t, q.URL, request(7, "1080p"))
		p := svctest.StartProcess(t, env(q.URL, map[string]string{"PROCESS_SLEEP_TIME": "10m", "JOB_ID": "killed-1"}))
		waitOutput(t, p, `msg="encoding started"`)
		if v, f := depth(t, q.URL); v != 0 || f != 1 {
			t.Fatalf("while encoding: visible=%d inFlight=%d, want 0 and 1", v, f)
		}
		p.Signal(t, syscall.SIGTERM)
		if code := p.Wait(t, svctest.ProcessWait); code != ExitKilled {
			t.Fatalf("exit %d, want %d; output:\n%s", code, ExitKilled, p.Output)
		}
		if v, f := depth(t, q.URL); v != 1 || f != 0 {
			t.Fatalf("after SIGTERM: visible=%d inFlight=%d, want the message visible again (1, 0)", v, f)
		}
		evs := ra.Events(t, id)
		if len(evs) != 1 || evs[0].Kind != "killed" || evs[0].Outcome != "killed" || evs[0].JobID != "killed-1" {
			t.Fatalf("want one kill event for %s, got %+v", id, evs)
		}
	})

	t.Run("SIGTERMExitsWithinShutdownTimeoutIncludingTheLastFlush", func(t *testing.T) {
		// The collector never answers: the last flush used to add 5s on
		// top of SHUTDOWN_TIMEOUT.
		q := emu.NewQueue(t, sqstest.WithVisibilityTimeout(time.Hour))
		send(t, q.URL, request(12, "480p"))
		collector := otlptest.NewStalled(t)
		const budget = 2 * time.Second
		p := svctest.StartProcess(t, env(q.URL, map[string]string{"PROCESS_SLEEP_TIME": "10m", "SHUTDOWN_TIMEOUT": budget.String(),
			"SQS_VISIBILITY_TIMEOUT": "1h", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
			"OTEL_METRIC_EXPORT_INTERVAL": "3600000"}))
		waitOutput(t, p, `msg="encoding started"`)
		signalled := time.Now()
		p.Signal(t, syscall.SIGTERM)
		code := p.Wait(t, svctest.ProcessWait)
		// A generous bound on the contract, not a measurement.
		if took := time.Since(signalled); took > budget+2*time.Second {
			t.Fatalf("exited %s after SIGTERM, SHUTDOWN_TIMEOUT is %s; output:\n%s", took.Round(time.Millisecond), budget, p.Output)
		}
		if code != ExitKilled || collector.Requests() == 0 {
			t.Fatalf("exit %d (want %d), %d flush attempts (want some); output:\n%s", code, ExitKilled, collector.Requests(), p.Output)
		}
		if v, f := depth(t, q.URL); v != 1 || f != 0 {
			t.Fatalf("after SIGTERM: visible=%d inFlight=%d, want the message released (1, 0)", v, f)
		}
	})

	t.Run("PoisonMessageReachesDLQWithoutCrashLoop", func(t *testing.T) {
		const maxReceiveCount = 2
		q := emu.NewQueue(t, sqstest.WithMaxReceiveCount(maxReceiveCount))
		id := send(t, q.URL, "not json")
		// A ScaledJob starts a job while the message is visible; each run
		// exits ExitPoison until the (maxReceiveCount+1)th receive moves it
		// to the DLQ and that run finds nothing (idle exit 0). The loop cap
		// is far above the bound so a crash loop would show as a failure,
		// not as a hang.
		runs, poisonExits := 0, 0
		for runs < 5*(maxReceiveCount+1) {
			runs++
			p := svctest.StartProcess(t, env(q.URL, map[string]string{"IDLE_TIMEOUT": "1s", "JOB_ID": "poison-" + strconv.Itoa(runs)}))
			code := p.Wait(t, svctest.ProcessWait)
			if code == 0 {
				break
			}
			if code != ExitPoison {
				t.Fatalf("run %d: exit %d, want %d or 0; output:\n%s", runs, code, ExitPoison, p.Output)
			}
			if !strings.Contains(p.Output.String(), "receive_count="+strconv.Itoa(runs)) {
				t.Fatalf("run %d did not log receive_count=%d; output:\n%s", runs, runs, p.Output)
			}
			poisonExits++
		}
		if runs > maxReceiveCount+1 || poisonExits != maxReceiveCount {
			t.Fatalf("%d runs with %d poison exits, want at most %d runs and exactly %d poison exits",
				runs, poisonExits, maxReceiveCount+1, maxReceiveCount)
		}
		if v, f := depth(t, q.URL); v != 0 || f != 0 {
			t.Fatalf("source queue visible=%d inFlight=%d, want empty", v, f)
		}
		if v, f := depth(t, q.DLQURL); v != 1 || f != 0 {
			t.Fatalf("DLQ visible=%d inFlight=%d, want the message (1, 0)", v, f)
		}
		if evs := ra.Events(t, id); len(evs) != 0 {
			t.Fatalf("a poison message must not be reported as processed or killed: %+v", evs)
		}
	})

	t.Run("HeartbeatKeepsLongEncodeInvisible", func(t *testing.T) {
		// 4k with linear scaling: 1.5s × 4 = 6s of work against a 4s
		// visibility timeout, so without the extensions (every 2s) the
		// message would be visible again mid-encode.
		q := emu.NewQueue(t)
		id := send(t, q.URL, request(4, "4k"))
		p := svctest.StartProcess(t, env(q.URL, map[string]string{
			"PROCESS_SLEEP_TIME": "1.5", "QUALITY_SCALING": "linear", "SQS_VISIBILITY_TIMEOUT": "4",
			"JOB_ID": "heartbeat-1",
		}))
		waitOutput(t, p, `msg="encoding started"`)
		polls := 0
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
	watch:
		for {
			v, f := depth(t, q.URL)
			if v != 0 {
				t.Fatalf("message visible again mid-encode (visible=%d inFlight=%d); output:\n%s", v, f, p.Output)
			}
			polls++
			select {
			case <-p.Done():
				break watch
			case <-tick.C:
			}
		}
		if code := p.Wait(t, svctest.ProcessWait); code != 0 {
			t.Fatalf("exit %d, want 0; output:\n%s", code, p.Output)
		}
		out := p.Output.String()
		if n := strings.Count(out, `msg="visibility extended"`); n < 2 {
			t.Fatalf("%d visibility extensions, want at least 2 (at 2s and 4s); output:\n%s", n, out)
		}
		if !strings.Contains(out, "duration=6s") {
			t.Fatalf("encode was not scaled to 6s; output:\n%s", out)
		}
		if v, f := depth(t, q.URL); v != 0 || f != 0 {
			t.Fatalf("queue visible=%d inFlight=%d, want empty", v, f)
		}
		if evs := ra.Events(t, id); len(evs) != 1 || evs[0].Kind != "processed" {
			t.Fatalf("want exactly one processed event (no duplicate delivery), got %+v", evs)
		}
		t.Logf("queue depth checked %d times during the encode", polls)
	})

	t.Run("IdleQueueExitsZero", func(t *testing.T) {
		q := emu.NewQueue(t)
		p := svctest.StartProcess(t, env(q.URL, map[string]string{"IDLE_TIMEOUT": "1s"}))
		if code := p.Wait(t, svctest.ProcessWait); code != 0 {
			t.Fatalf("exit %d, want 0; output:\n%s", code, p.Output)
		}
		if !strings.Contains(p.Output.String(), "no message within the idle timeout") {
			t.Fatalf("no idle log line; output:\n%s", p.Output)
		}
	})

	t.Run("SIGTERMWhileWaitingExitsZero", func(t *testing.T) {
		q := emu.NewQueue(t)
		p := svctest.StartProcess(t, env(q.URL, map[string]string{"IDLE_TIMEOUT": "10m"}))
		waitOutput(t, p, `msg="waiting for a message"`)
		p.Signal(t, syscall.SIGTERM)
		if code := p.Wait(t, svctest.ProcessWait); code != 0 {
			t.Fatalf("exit %d, want 0; output:\n%s", code, p.Output)
		}
		if !strings.Contains(p.Output.String(), "stopped while waiting for a message") {
			t.Fatalf("no stop log line; output:\n%s", p.Output)
		}
	})

	t.Run("MessageDeliveredByThePollOpenAtSIGTERMIsReleasedAtOnce", func(t *testing.T) {
		q := emu.NewQueue(t, sqstest.WithVisibilityTimeout(time.Hour))
		px := emu.Proxy(t)
		p := svctest.StartProcess(t, env(q.URL, map[string]string{"AWS_ENDPOINT_URL_SQS": px.Endpoint,
			"SQS_WAIT_TIME": "10", "SQS_VISIBILITY_TIMEOUT": "1h", "IDLE_TIMEOUT": "10m", "PROCESS_SLEEP_TIME": "10m"}))
		px.WaitCalls(t, "ReceiveMessage", 1, 20*time.Second) // the poll is open: the queue is empty
		p.Signal(t, syscall.SIGTERM)
		waitOutput(t, p, `msg="stop requested while waiting`) // the process knows before the message comes
		id := send(t, q.URL, request(11, "720p"))
		if code := p.Wait(t, svctest.ProcessWait); code != 0 {
			t.Fatalf("exit %d, want 0; output:\n%s", code, p.Output)
		}
		if v, f := depth(t, q.URL); v != 1 || f != 0 {
			t.Fatalf("right after exit: visible=%d inFlight=%d, want the message visible (1, 0); output:\n%s", v, f, p.Output)
		}
		// The open poll did receive it (this is its second receive).
		out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL),
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount}})
		if err != nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].MessageId) != id {
			t.Fatalf("receive: %v, %+v", err, out)
		}
		if n := out.Messages[0].Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]; n != "2" {
			t.Fatalf("receive count %s, want 2: the poll open at SIGTERM never got the message; output:\n%s", n, p.Output)
		}
		if evs := ra.Events(t, id); len(evs) != 0 {
			t.Fatalf("an unworked message must not be reported: %+v", evs)
		}
	})

	t.Run("UnreachableAnalyzerIsNotFatal", func(t *testing.T) {
		q := emu.NewQueue(t)
		send(t, q.URL, request(9, "480p"))
		dead := "http://127.0.0.1:" + strconv.Itoa(svctest.FreePort(t))
		p := svctest.StartProcess(t, env(q.URL, map[string]string{"PROCESS_SLEEP_TIME": "0", "RESULT_ANALYZER_URL": dead}))
		if code := p.Wait(t, svctest.ProcessWait); code != 0 {
			t.Fatalf("exit %d, want 0; output:\n%s", code, p.Output)
		}
		if !strings.Contains(p.Output.String(), "could not report to the result analyzer") {
			t.Fatalf("the failed report was not logged; output:\n%s", p.Output)
		}
		if v, f := depth(t, q.URL); v != 0 || f != 0 {
			t.Fatalf("queue visible=%d inFlight=%d, want empty", v, f)
		}
	})
}
