// Package sqsx is what the SQS samples share: a client built from a
// service's getenv, batch helpers that always use the batch APIs (10 entries
// per call), and a per-operation call counter for metrics and benchmarks.
package sqsx

import (
	"context"
	"fmt"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/keda-eks-samples/workloads/pkg/awsconfig"
)

// MaxBatch is the SQS limit of entries per batch call and of messages per
// receive.
const MaxBatch = 10

// API is the part of *sqs.Client the samples use; tests and benchmarks can
// wrap it.
type API interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var _ API = (*sqs.Client)(nil)

// NewClient builds an SQS client from the standard AWS variables read through
// getenv; AWS_ENDPOINT_URL_SQS points it at an emulator.
func NewClient(ctx context.Context, getenv func(string) string, optFns ...func(*sqs.Options)) (*sqs.Client, error) {
	cfg, err := awsconfig.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	ep := awsconfig.Endpoint(getenv, "SQS")
	return sqs.NewFromConfig(cfg, append([]func(*sqs.Options){func(o *sqs.Options) {
		if ep != nil {
			o.BaseEndpoint = ep
		}
	}}, optFns...)...), nil
}

// CountCalls calls count with the operation name ("ReceiveMessage",
// "DeleteMessageBatch", ...) once per API call, before the SDK's retries: it
// counts calls a program makes, which is what SQS bills.
func CountCalls(count func(operation string)) func(*sqs.Options) {
	return func(o *sqs.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("sqsxCountCalls",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					count(awsmiddleware.GetOperationName(ctx))
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	}
}

// chunks splits n items into index ranges of at most MaxBatch.
func chunks(n int) [][2]int {
	var out [][2]int
	for lo := 0; lo < n; lo += MaxBatch {
		out = append(out, [2]int{lo, min(lo+MaxBatch, n)})
	}
	return out
}

// BatchError reports entries a batch call did not handle.
type BatchError struct {
	Op     string
	Failed map[string]string // entry id (message id or index) -> "Code: message"
	// Retry holds the ids of Failed entries that may succeed if sent again:
	// their whole call failed (timeout, network, throttling after the SDK's
	// retries), or SQS refused them with a server-side fault. The others
	// were refused for what they are (a stale receipt handle, say).
	Retry map[string]bool
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("%s: %d entries failed, e.g. %s", e.Op, len(e.Failed), firstOf(e.Failed))
}

func firstOf(m map[string]string) string {
	for k, v := range m {
		return k + ": " + v
	}
	return ""
}
