package sqstest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

// Queue is a standard queue with its dead-letter queue, made by NewQueue.
type Queue struct {
	Name   string // the DLQ is Name + "-dlq"
	URL    string // http://127.0.0.1:PORT/000000000000/Name
	ARN    string // arn:aws:sqs:us-east-1:000000000000:Name
	DLQURL string
	DLQARN string
}

// QueueOption configures NewQueue.
type QueueOption func(*queueConfig)

type queueConfig struct {
	maxReceiveCount   int
	visibilityTimeout time.Duration
}

// WithMaxReceiveCount sets the RedrivePolicy's maxReceiveCount (default 3):
// a message received that many times moves to the DLQ on the next receive.
func WithMaxReceiveCount(n int) QueueOption {
	return func(c *queueConfig) { c.maxReceiveCount = n }
}

// WithVisibilityTimeout sets the queue's VisibilityTimeout (default 30s);
// it must be whole seconds, 0 to 12h. With 0 a received message is visible
// again at once, which is the only way to receive with visibility 0 from Go:
// aws-sdk-go-v2 omits ReceiveMessageInput.VisibilityTimeout when it is 0.
func WithVisibilityTimeout(d time.Duration) QueueOption {
	return func(c *queueConfig) { c.visibilityTimeout = d }
}

// NewQueue creates a uniquely named queue, named after t, and its
// dead-letter queue, and returns their URLs and ARNs. The queue's
// RedrivePolicy is {"deadLetterTargetArn": DLQARN, "maxReceiveCount": N}.
// The queues are not deleted: they die with the emulator.
func (e *Emulator) NewQueue(t testing.TB, opts ...QueueOption) Queue {
	t.Helper()
	cfg := queueConfig{maxReceiveCount: 3, visibilityTimeout: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxReceiveCount < 1 || cfg.maxReceiveCount > 1000 {
		t.Fatalf("sqstest: maxReceiveCount %d not in [1, 1000]", cfg.maxReceiveCount)
	}
	if cfg.visibilityTimeout < 0 || cfg.visibilityTimeout > 12*time.Hour || cfg.visibilityTimeout%time.Second != 0 {
		t.Fatalf("sqstest: VisibilityTimeout %v is not whole seconds in [0s, 12h]", cfg.visibilityTimeout)
	}
	ctx := t.Context()
	q := Queue{Name: e.queueName(t)}
	q.DLQURL, q.DLQARN = e.createQueue(ctx, t, q.Name+"-dlq", nil)
	policy, err := json.Marshal(struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     int    `json:"maxReceiveCount"`
	}{q.DLQARN, cfg.maxReceiveCount})
	if err != nil {
		t.Fatalf("sqstest: %v", err)
	}
	q.URL, q.ARN = e.createQueue(ctx, t, q.Name, map[string]string{
		string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(cfg.visibilityTimeout / time.Second)),
		string(types.QueueAttributeNameRedrivePolicy):     string(policy),
	})
	return q
}

func (e *Emulator) createQueue(ctx context.Context, t testing.TB, name string, attrs map[string]string) (url, arn string) {
	t.Helper()
	out, err := e.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("sqstest: CreateQueue %s: %v", name, err)
	}
	url = aws.ToString(out.QueueUrl)
	got, err := e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       out.QueueUrl,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("sqstest: GetQueueAttributes QueueArn of %s: %v", url, err)
	}
	arn = got.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		t.Fatalf("sqstest: queue %s has no QueueArn", url)
	}
	return url, arn
}

// queueName is t's name reduced to the characters SQS allows, shortened so
// that name + "-dlq" fits SQS's 80, plus a per-emulator sequence number.
func (e *Emulator) queueName(t testing.TB) string {
	suffix := fmt.Sprintf("-%d", e.queueSeq.Add(1))
	base := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, t.Name())
	if limit := 80 - len("-dlq") - len(suffix); len(base) > limit {
		base = base[:limit]
	}
	return base + suffix
}

// Depth returns the queue's ApproximateNumberOfMessages (visible) and
// ApproximateNumberOfMessagesNotVisible (inFlight). Delayed messages are in
// neither. It fails t on error, so call it from the test's goroutine.
func (e *Emulator) Depth(ctx context.Context, t testing.TB, queueURL string) (visible, inFlight int) {
	t.Helper()
	out, err := e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatalf("sqstest: GetQueueAttributes %s: %v", queueURL, err)
	}
	count := func(name types.QueueAttributeName) int {
		n, err := strconv.Atoi(out.Attributes[string(name)])
		if err != nil {
			t.Fatalf("sqstest: queue %s attribute %s = %q: %v", queueURL, name, out.Attributes[string(name)], err)
		}
		return n
	}
	return count(types.QueueAttributeNameApproximateNumberOfMessages),
		count(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)
}

// WaitDepth polls Depth every 50ms until cond(visible, inFlight) holds and
// returns the counts that satisfied it; it fails t if that takes longer than
// timeout. Call it from the test's goroutine.
func (e *Emulator) WaitDepth(t testing.TB, queueURL string, cond func(visible, inFlight int) bool, timeout time.Duration) (visible, inFlight int) {
	t.Helper()
	if err := localproc.PollContext(t.Context(), pollInterval, timeout, func() (bool, error) {
		visible, inFlight = e.Depth(t.Context(), t, queueURL)
		return cond(visible, inFlight), nil
	}); err != nil {
		t.Fatalf("sqstest: queue %s: depth %v (last: visible=%d inFlight=%d)", queueURL, err, visible, inFlight)
	}
	return visible, inFlight
}

// NeverReceived long-polls queueURL as a competing consumer (1 s receives,
// until() checked after each) until until() holds, and fails t if it
// receives anything: a message must stay invisible while the consumer under
// test holds it. It fails t, too, if until() does not hold within timeout.
func (e *Emulator) NeverReceived(t testing.TB, queueURL string, until func() bool, timeout time.Duration) {
	t.Helper()
	err := localproc.PollContext(t.Context(), 10*time.Millisecond, timeout, func() (bool, error) {
		out, err := e.client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), WaitTimeSeconds: 1})
		if err != nil {
			return false, err
		}
		if len(out.Messages) > 0 {
			return false, fmt.Errorf("message %s received by a competing consumer while the consumer under test holds it", aws.ToString(out.Messages[0].MessageId))
		}
		return until(), nil
	})
	if err != nil {
		t.Fatalf("sqstest: %v", err)
	}
}

// Empty is a WaitDepth condition: no visible and no in-flight messages.
func Empty(visible, inFlight int) bool { return visible == 0 && inFlight == 0 }
