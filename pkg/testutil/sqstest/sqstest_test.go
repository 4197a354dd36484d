package sqstest_test

// These tests run aws-sdk-go-v2 (service/sqs v1.52.10) against the real
// emulator and pin the behaviour code under test may rely on. Facts about
// fauxqs 1.9.2 behind tools/fauxqs/serve.mjs (each is asserted below):
//
//  1. Queue URLs are http://127.0.0.1:PORT/000000000000/NAME (serve.mjs makes
//     the URL host the CreateQueue request's Host header; stock fauxqs would
//     say sqs.us-east-1.localhost:PORT, which doesn't resolve here). Queues
//     are looked up by the exact URL string: use the URL CreateQueue or
//     GetQueueUrl returned, never one assembled from the endpoint.
//     ARNs are arn:aws:sqs:us-east-1:000000000000:NAME; the region comes from
//     the request signature.
//  2. RedrivePolicy is stored and returned verbatim (the JSON we sent, with
//     maxReceiveCount as a number). The DLQ need not exist; it is not
//     checked. ListDeadLetterSourceQueues, StartMessageMoveTask and the other
//     message-move and permission actions do not exist (error, code
//     "InvalidAction"): move messages back from a DLQ by hand.
//  3. ReceiveMessage returns as many messages as are visible, up to
//     MaxNumberOfMessages, in one call (10 sent → 10 received at once; real
//     SQS may return fewer). (Not asserted: messages come out in send order;
//     one that becomes visible again goes to the back.)
//  4. ReceiveMessage honours MessageSystemAttributeNames (and the deprecated
//     AttributeNames): ApproximateReceiveCount (counts 1, 2, 3, ...),
//     SentTimestamp, ApproximateFirstReceiveTimestamp, SenderId.
//     MessageAttributes are returned with their MD5, which the SDK verifies.
//  5. Long polling: a ReceiveMessage with WaitTimeSeconds on an empty queue
//     waits the full WaitTimeSeconds and returns no messages; a message sent
//     meanwhile ends the wait at once.
//  6. ChangeMessageVisibility(0) makes the message visible at once (counts
//     move from NotVisible to visible); the next receive gives the same
//     MessageId with a new ReceiptHandle and ApproximateReceiveCount+1.
//     ChangeMessageVisibility with a stale receipt handle fails with
//     *types.MessageNotInflight (see fact 11).
//  7. DeleteMessage/DeleteMessageBatch with a stale (superseded) receipt
//     handle succeed but delete nothing, as in AWS. DeleteMessageBatch never
//     reports Failed entries for unknown handles.
//  8. GetQueueAttributes ApproximateNumberOfMessages / ...NotVisible are
//     exact and immediate (no "approximate" lag). With serve.mjs, a message
//     whose visibility timeout ran out is counted as visible again without
//     anybody receiving (stock fauxqs only notices inside ReceiveMessage).
//  9. Dead-lettering happens during a ReceiveMessage, like AWS: with
//     maxReceiveCount N the message is delivered N times; the (N+1)th receive
//     moves it to the DLQ and returns nothing for it (and, if the queue is
//     then empty, long-polls its full WaitTimeSeconds). The DLQ copy keeps
//     MessageId, body and attributes, and its ApproximateReceiveCount carries
//     on from the source queue: the first receive from the DLQ reports N+2.
// 10. aws-sdk-go-v2 omits ReceiveMessageInput.VisibilityTimeout when it is 0,
//     so "receive with visibility 0" needs a queue VisibilityTimeout of 0
//     (sqstest.WithVisibilityTimeout(0)) or ChangeMessageVisibility(0).
// 11. Errors: modelled ones arrive typed as in AWS (errors.As with
//     *types.QueueDoesNotExist, *types.MessageNotInflight, ...), and because
//     fauxqs sends the x-amzn-query-error header like SQS does, ErrorCode()
//     is the legacy query code, e.g. "AWS.SimpleQueueService.NonExistentQueue"
//     or "AWS.SimpleQueueService.MessageNotInflight" (the latter has an empty
//     message). Unknown actions fail with plain code "InvalidAction". Match
//     errors with errors.As on the types, not on code strings.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
)

func TestEmulator(t *testing.T) {
	emu := sqstest.Start(t)
	client := emu.Client(t)

	// Not parallel (t.Setenv); runs before the parallel subtests resume.
	t.Run("EnvWorksWithLoadDefaultConfig", func(t *testing.T) {
		for k, v := range emu.Env(nil) {
			t.Setenv(k, v)
		}
		none := filepath.Join(t.TempDir(), "none")
		t.Setenv("AWS_CONFIG_FILE", none)
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
		for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
			t.Setenv(k, "")
		}
		cfg, err := config.LoadDefaultConfig(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		out, err := sqs.NewFromConfig(cfg).CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String("env-check")})
		if err != nil {
			t.Fatal(err)
		}
		if want := emu.Endpoint + "/000000000000/env-check"; aws.ToString(out.QueueUrl) != want {
			t.Errorf("QueueUrl = %q, want %q", aws.ToString(out.QueueUrl), want)
		}

		getenv := emu.Getenv(map[string]string{"QUEUE_URL": "u", "AWS_REGION": "eu-west-1"})
		for k, want := range map[string]string{
			"QUEUE_URL": "u", "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_SQS": emu.Endpoint,
			"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "HOME": "",
		} {
			if got := getenv(k); got != want {
				t.Errorf("Getenv(%s) = %q, want %q", k, got, want)
			}
		}
	})

	t.Run("CreateQueueWithRedrivePolicy", func(t *testing.T) {
		t.Parallel()
		q := emu.NewQueue(t, sqstest.WithMaxReceiveCount(5), sqstest.WithVisibilityTimeout(7*time.Second))
		if want := emu.Endpoint + "/000000000000/" + q.Name; q.URL != want { // fact 1
			t.Errorf("URL = %q, want %q", q.URL, want)
		}
		if want := "arn:aws:sqs:us-east-1:000000000000:" + q.Name; q.ARN != want {
			t.Errorf("ARN = %q, want %q", q.ARN, want)
		}
		if q.DLQARN != q.ARN+"-dlq" || q.DLQURL != q.URL+"-dlq" {
			t.Errorf("DLQ = %q %q, want the queue's + -dlq", q.DLQURL, q.DLQARN)
		}
		got, err := client.GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{QueueName: aws.String(q.Name)})
		if err != nil || aws.ToString(got.QueueUrl) != q.URL {
			t.Errorf("GetQueueUrl = %v, %v; want %q", got, err, q.URL)
		}

		_, err = client.GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{QueueName: aws.String(q.Name + "-missing")})
		var notExist *types.QueueDoesNotExist // fact 11
		if code := errorCode(err); !errors.As(err, &notExist) || code != "AWS.SimpleQueueService.NonExistentQueue" {
			t.Errorf("GetQueueUrl(missing): %v (code %q), want *types.QueueDoesNotExist", err, code)
		}

		attrs, err := client.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(q.URL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("attributes: %v", attrs.Attributes)
		for name, want := range map[string]string{
			"QueueArn": q.ARN, "VisibilityTimeout": "7", "ApproximateNumberOfMessages": "0",
			"ApproximateNumberOfMessagesNotVisible": "0", "ApproximateNumberOfMessagesDelayed": "0",
		} {
			if attrs.Attributes[name] != want {
				t.Errorf("attribute %s = %q, want %q", name, attrs.Attributes[name], want)
			}
		}
		var policy struct { // fact 2: returned as sent, maxReceiveCount a JSON number
			DeadLetterTargetArn string `json:"deadLetterTargetArn"`
			MaxReceiveCount     int    `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &policy); err != nil {
			t.Fatalf("RedrivePolicy %q: %v", attrs.Attributes["RedrivePolicy"], err)
		}
		if policy.DeadLetterTargetArn != q.DLQARN || policy.MaxReceiveCount != 5 {
			t.Errorf("RedrivePolicy = %+v, want DLQ %s and 5", policy, q.DLQARN)
		}

		orphan, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{ // fact 2: DLQ not checked
			QueueName:  aws.String(q.Name + "-orphan"),
			Attributes: map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:no-such-queue","maxReceiveCount":1}`},
		})
		if err != nil {
			t.Errorf("CreateQueue with a RedrivePolicy to a missing DLQ: %v", err)
		} else {
			t.Logf("created %s with a dangling RedrivePolicy", aws.ToString(orphan.QueueUrl))
		}

		_, err = client.ListDeadLetterSourceQueues(t.Context(), &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(q.DLQURL)})
		if code := errorCode(err); code != "InvalidAction" { // fact 2
			t.Errorf("ListDeadLetterSourceQueues: error code %q (%v), want InvalidAction", code, err)
		}
	})

	t.Run("BatchReceiveVisibilityDelete", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		q := emu.NewQueue(t)

		entries := make([]types.SendMessageBatchRequestEntry, 10)
		for i := range entries {
			entries[i] = types.SendMessageBatchRequestEntry{
				Id:          aws.String(fmt.Sprintf("m%d", i)),
				MessageBody: aws.String(fmt.Sprintf(`{"n":%d}`, i)),
				MessageAttributes: map[string]types.MessageAttributeValue{
					"kind": {DataType: aws.String("String"), StringValue: aws.String("test")},
				},
			}
		}
		sent, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries})
		if err != nil {
			t.Fatal(err)
		}
		if len(sent.Successful) != 10 || len(sent.Failed) != 0 {
			t.Fatalf("SendMessageBatch: %d successful, %v failed", len(sent.Successful), sent.Failed)
		}
		emu.WaitDepth(t, q.URL, func(v, f int) bool { return v == 10 && f == 0 }, 5*time.Second)

		start := time.Now()
		got, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(q.URL),
			MaxNumberOfMessages:         10,
			WaitTimeSeconds:             5,
			VisibilityTimeout:           60,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("received %d messages in %v", len(got.Messages), time.Since(start))
		if len(got.Messages) != 10 { // fact 3
			t.Fatalf("received %d messages in one call, want 10", len(got.Messages))
		}
		msgs := got.Messages
		var bodies []string
		for _, m := range msgs {
			bodies = append(bodies, aws.ToString(m.Body))
			if m.Attributes["ApproximateReceiveCount"] != "1" || m.Attributes["SentTimestamp"] == "" || // fact 4
				m.Attributes["ApproximateFirstReceiveTimestamp"] == "" || m.Attributes["SenderId"] != "000000000000" {
				t.Errorf("message %s system attributes %v", aws.ToString(m.MessageId), m.Attributes)
			}
			if a := m.MessageAttributes["kind"]; aws.ToString(a.StringValue) != "test" {
				t.Errorf("message %s attribute kind = %+v", aws.ToString(m.MessageId), a)
			}
		}
		slices.Sort(bodies)
		for i, b := range bodies {
			if want := fmt.Sprintf(`{"n":%d}`, i); b != want {
				t.Errorf("bodies[%d] = %s, want %s", i, b, want)
			}
		}
		if v, f := emu.Depth(ctx, t, q.URL); v != 0 || f != 10 { // fact 8
			t.Errorf("after receive: depth %d/%d, want 0/10", v, f)
		}

		start = time.Now() // fact 5: nothing visible → waits WaitTimeSeconds, returns none
		empty, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil || len(empty.Messages) != 0 {
			t.Errorf("long poll on empty queue: %d messages, err %v; want 0", len(empty.Messages), err)
		}
		checkFullWait(t, "a long poll on an empty queue", time.Since(start), time.Second)

		// fact 6: visibility 0 → visible again, same message, new handle, count 2.
		first := msgs[0]
		if _, err := client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(q.URL), ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 0,
		}); err != nil {
			t.Fatal(err)
		}
		if v, f := emu.Depth(ctx, t, q.URL); v != 1 || f != 9 {
			t.Errorf("after ChangeMessageVisibility(0): depth %d/%d, want 1/9", v, f)
		}
		again, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(again.Messages) != 1 {
			t.Fatalf("received %d messages after ChangeMessageVisibility(0), want 1", len(again.Messages))
		}
		re := again.Messages[0]
		if aws.ToString(re.MessageId) != aws.ToString(first.MessageId) || aws.ToString(re.ReceiptHandle) == aws.ToString(first.ReceiptHandle) ||
			re.Attributes["ApproximateReceiveCount"] != "2" {
			t.Errorf("re-received %s handle %s attrs %v; want %s, a new handle, count 2",
				aws.ToString(re.MessageId), aws.ToString(re.ReceiptHandle), re.Attributes, aws.ToString(first.MessageId))
		}
		_, err = client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(q.URL), ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 0,
		})
		var notInflight *types.MessageNotInflight
		if code := errorCode(err); !errors.As(err, &notInflight) || code != "AWS.SimpleQueueService.MessageNotInflight" {
			t.Errorf("ChangeMessageVisibility(stale handle): %v (code %q), want *types.MessageNotInflight", err, code)
		}
		// fact 7: deleting with the stale handle "succeeds" and deletes nothing.
		if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: first.ReceiptHandle}); err != nil {
			t.Errorf("DeleteMessage(stale handle): %v", err)
		}
		if v, f := emu.Depth(ctx, t, q.URL); v != 0 || f != 10 {
			t.Errorf("after stale delete: depth %d/%d, want 0/10", v, f)
		}

		msgs[0] = re
		del := make([]types.DeleteMessageBatchRequestEntry, len(msgs))
		for i, m := range msgs {
			del[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprintf("d%d", i)), ReceiptHandle: m.ReceiptHandle}
		}
		deleted, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: del})
		if err != nil {
			t.Fatal(err)
		}
		if len(deleted.Successful) != 10 || len(deleted.Failed) != 0 {
			t.Errorf("DeleteMessageBatch: %d successful, %v failed", len(deleted.Successful), deleted.Failed)
		}
		emu.WaitDepth(t, q.URL, sqstest.Empty, 5*time.Second)

		bogus, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: []types.DeleteMessageBatchRequestEntry{
			{Id: aws.String("gone"), ReceiptHandle: msgs[1].ReceiptHandle},
			{Id: aws.String("bogus"), ReceiptHandle: aws.String("not-a-receipt-handle")},
		}})
		if err != nil || len(bogus.Successful) != 2 || len(bogus.Failed) != 0 { // fact 7
			t.Errorf("DeleteMessageBatch(unknown handles) = %+v, %v; want 2 successful", bogus, err)
		}
	})

	t.Run("LongPollWakesOnSend", func(t *testing.T) { // fact 5
		t.Parallel()
		q := emu.NewQueue(t)
		// The poll under test waits up to 10s; wrote closes once its
		// request is on the wire.
		wrote := make(chan struct{})
		var once sync.Once
		traced := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(func() { close(wrote) }) },
		})
		type result struct {
			out *sqs.ReceiveMessageOutput
			err error
			at  time.Time
		}
		done := make(chan result, 1)
		go func() {
			out, err := client.ReceiveMessage(traced, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), WaitTimeSeconds: 10})
			done <- result{out, err, time.Now()}
		}()
		select {
		case <-wrote:
		case r := <-done:
			t.Fatalf("the 10s poll ended before it was sent: %v", r.err)
		}
		// A second poll of 1s on the same empty queue: by the time it has
		// waited in full, the emulator has long held the first one open.
		start := time.Now()
		gate, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), WaitTimeSeconds: 1})
		if err != nil || len(gate.Messages) != 0 {
			t.Fatalf("second poll on the empty queue: %v, %+v", err, gate)
		}
		checkFullWait(t, "the second poll", time.Since(start), time.Second)
		select {
		case r := <-done:
			t.Fatalf("the 10s poll returned before anything was sent: %v, %+v", r.err, r.out)
		default:
		}

		sent := time.Now()
		if _, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String("wake")}); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || len(r.out.Messages) != 1 || aws.ToString(r.out.Messages[0].Body) != "wake" {
			t.Fatalf("long poll: %v, %+v", r.err, r.out)
		}
		// "At once", with room for a busy machine: far below the 8s or so
		// the poll had left to wait.
		if woke := r.at.Sub(sent); woke > 2*time.Second {
			t.Errorf("the open poll returned %v after the send began, want at once", woke)
		}
	})

	t.Run("ExpiredVisibilityCountsAsVisible", func(t *testing.T) { // fact 8
		t.Parallel()
		q := emu.NewQueue(t, sqstest.WithVisibilityTimeout(time.Second))
		if _, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String("x")}); err != nil {
			t.Fatal(err)
		}
		out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(q.URL), WaitTimeSeconds: 1,
			//lint:ignore SA1019 fact 4: the deprecated field works too
			AttributeNames: []types.QueueAttributeName{"ApproximateReceiveCount"},
		})
		if err != nil || len(out.Messages) != 1 {
			t.Fatalf("receive: %v, %+v", err, out)
		}
		if got := out.Messages[0].Attributes["ApproximateReceiveCount"]; got != "1" {
			t.Errorf("ApproximateReceiveCount via AttributeNames = %q, want 1", got)
		}
		start := time.Now()
		if v, f := emu.Depth(t.Context(), t, q.URL); v != 0 || f != 1 {
			t.Errorf("in flight: depth %d/%d, want 0/1", v, f)
		}
		emu.WaitDepth(t, q.URL, func(v, f int) bool { return v == 1 && f == 0 }, 5*time.Second)
		t.Logf("visible again in depth after %v without a receive", time.Since(start))
	})

	// fact 9 and 10: a message that always fails ends up in the DLQ.
	for _, mode := range []string{"QueueVisibility0", "ChangeMessageVisibility0"} {
		t.Run("PoisonMessageMovesToDLQ/"+mode, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			const maxReceive = 3
			opts := []sqstest.QueueOption{sqstest.WithMaxReceiveCount(maxReceive)}
			if mode == "QueueVisibility0" {
				opts = append(opts, sqstest.WithVisibilityTimeout(0))
			}
			q := emu.NewQueue(t, opts...)
			sent, err := client.SendMessage(ctx, &sqs.SendMessageInput{
				QueueUrl: aws.String(q.URL), MessageBody: aws.String("poison"),
				MessageAttributes: map[string]types.MessageAttributeValue{"a": {DataType: aws.String("Number"), StringValue: aws.String("1")}},
			})
			if err != nil {
				t.Fatal(err)
			}
			receive := func(url string, wait int32) (*sqs.ReceiveMessageOutput, time.Duration) {
				t.Helper()
				start := time.Now()
				out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
					QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: wait,
					MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
					MessageAttributeNames:       []string{"All"},
				})
				if err != nil {
					t.Fatal(err)
				}
				return out, time.Since(start)
			}
			for i := 1; i <= maxReceive; i++ {
				out, _ := receive(q.URL, 1)
				if len(out.Messages) != 1 {
					t.Fatalf("receive %d: %d messages, want 1", i, len(out.Messages))
				}
				m := out.Messages[0]
				if aws.ToString(m.MessageId) != aws.ToString(sent.MessageId) || m.Attributes["ApproximateReceiveCount"] != strconv.Itoa(i) {
					t.Fatalf("receive %d: message %s attrs %v", i, aws.ToString(m.MessageId), m.Attributes)
				}
				if mode == "ChangeMessageVisibility0" {
					if _, err := client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
						QueueUrl: aws.String(q.URL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
					}); err != nil {
						t.Fatal(err)
					}
				}
				if v, f := emu.Depth(ctx, t, q.URL); v != 1 || f != 0 {
					t.Fatalf("after receive %d: depth %d/%d, want 1/0", i, v, f)
				}
			}
			if v, f := emu.Depth(ctx, t, q.DLQURL); v != 0 || f != 0 {
				t.Fatalf("DLQ before receive %d: depth %d/%d, want 0/0", maxReceive+1, v, f)
			}

			out, elapsed := receive(q.URL, 1) // the (maxReceive+1)th receive moves it
			if len(out.Messages) != 0 {
				t.Fatalf("receive %d returned %d messages, want 0", maxReceive+1, len(out.Messages))
			}
			checkFullWait(t, fmt.Sprintf("receive %d (the move, queue then empty)", maxReceive+1), elapsed, time.Second)
			if v, f := emu.Depth(ctx, t, q.URL); v != 0 || f != 0 {
				t.Errorf("source after move: depth %d/%d, want 0/0", v, f)
			}
			if v, f := emu.Depth(ctx, t, q.DLQURL); v != 1 || f != 0 {
				t.Errorf("DLQ after move: depth %d/%d, want 1/0", v, f)
			}

			out, _ = receive(q.DLQURL, 1)
			if len(out.Messages) != 1 {
				t.Fatalf("DLQ receive: %d messages, want 1", len(out.Messages))
			}
			m := out.Messages[0]
			if aws.ToString(m.MessageId) != aws.ToString(sent.MessageId) || aws.ToString(m.Body) != "poison" ||
				aws.ToString(m.MessageAttributes["a"].StringValue) != "1" {
				t.Errorf("DLQ message %s %q %v, want %s", aws.ToString(m.MessageId), aws.ToString(m.Body), m.MessageAttributes, aws.ToString(sent.MessageId))
			}
			if got, want := m.Attributes["ApproximateReceiveCount"], strconv.Itoa(maxReceive+2); got != want {
				t.Errorf("DLQ ApproximateReceiveCount = %s, want %s (carried over)", got, want)
			}
		})
	}
}

// TestStartBindsLoopbackAndStops checks, without sending any traffic, that
// the emulator listens on 127.0.0.1 only and is gone after the test.
func TestStartBindsLoopbackAndStops(t *testing.T) {
	var port string
	t.Run("running", func(t *testing.T) {
		emu := sqstest.Start(t)
		u, err := url.Parse(emu.Endpoint)
		if err != nil || u.Hostname() != "127.0.0.1" {
			t.Fatalf("Endpoint %q: %v", emu.Endpoint, err)
		}
		port = u.Port()
		listeners, ok := tcpListeners(t, port)
		if !ok {
			t.Skip("no /proc/net/tcp: cannot list listening sockets")
		}
		if !slices.Equal(listeners, []string{"127.0.0.1"}) {
			t.Errorf("sockets listening on port %s: %v, want only 127.0.0.1", port, listeners)
		}
	})
	if port == "" {
		t.Skip("emulator did not start")
	}
	if listeners, ok := tcpListeners(t, port); ok && len(listeners) != 0 {
		t.Errorf("after the test, port %s still has listeners %v", port, listeners)
	}
	if conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), time.Second); err == nil {
		conn.Close()
		t.Errorf("127.0.0.1:%s still accepts connections after the test", port)
	}
}

// tcpListeners returns the local addresses of sockets in LISTEN state on
// port, from Linux's /proc/net/tcp{,6}; ok is false if those don't exist.
func tcpListeners(t *testing.T, port string) (addrs []string, ok bool) {
	t.Helper()
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	wantPort := fmt.Sprintf("%04X", p)
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		ok = true
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text()) // sl local_address rem_address st ...
			if len(fields) < 4 || fields[3] != "0A" {
				continue
			}
			hexIP, hexPort, _ := strings.Cut(fields[1], ":")
			if hexPort == wantPort {
				addrs = append(addrs, procIP(hexIP))
			}
		}
		f.Close()
	}
	return addrs, ok
}

// procIP decodes /proc/net/tcp's address: 32-bit little-endian words.
func procIP(h string) string {
	var ip net.IP
	for i := 0; i+8 <= len(h); i += 8 {
		for j := 6; j >= 0; j -= 2 {
			b, _ := strconv.ParseUint(h[i+j:i+j+2], 16, 8)
			ip = append(ip, byte(b))
		}
	}
	return ip.String()
}

// checkFullWait checks that a long poll that found nothing waited its whole
// WaitTimeSeconds (facts 5 and 9): not returning before 90% of it (the
// emulator's timer and ours differ a little), and not 3s after it.
func checkFullWait(t *testing.T, what string, elapsed, wait time.Duration) {
	t.Helper()
	if elapsed < wait*9/10 || elapsed > wait+3*time.Second {
		t.Errorf("%s returned after %v, want its full WaitTimeSeconds of %v", what, elapsed, wait)
	}
}

// errorCode is the API error code of err, or "" if err is not an API error.
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}
