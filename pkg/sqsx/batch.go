package sqsx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SendResult is the outcome of Send.
type SendResult struct {
	MessageIDs []string       // per body, "" where it failed
	Failed     map[int]string // body index -> reason
	Calls      int            // SendMessageBatch calls made
}

// Sent is the number of bodies SQS accepted.
func (r SendResult) Sent() int { return len(r.MessageIDs) - len(r.Failed) }

// Send enqueues bodies with SendMessageBatch, 10 per call and up to parallel
// calls at once. An entry that fails with a server-side fault is retried
// (twice) in a later batch; a sender fault (bad entry) is not. The error is
// non-nil when any body was not sent; the result says which.
func Send(ctx context.Context, api API, queueURL string, bodies []string, parallel int) (SendResult, error) {
	res := SendResult{MessageIDs: make([]string, len(bodies)), Failed: map[int]string{}}
	pending := make([]int, len(bodies))
	for i := range pending {
		pending[i] = i
	}
	var mu sync.Mutex
	var callErr error
	for attempt := 0; attempt < 3 && len(pending) > 0 && ctx.Err() == nil; attempt++ {
		var retry []int
		sem := make(chan struct{}, max(parallel, 1))
		var wg sync.WaitGroup
		for _, c := range chunks(len(pending)) {
			idx := pending[c[0]:c[1]]
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				entries := make([]types.SendMessageBatchRequestEntry, len(idx))
				for k, i := range idx {
					entries[k] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(bodies[i])}
				}
				out, err := api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
				mu.Lock()
				defer mu.Unlock()
				res.Calls++
				if err != nil { // the whole call failed (the SDK already retried it)
					callErr = err
					for _, i := range idx {
						res.Failed[i] = err.Error()
					}
					return
				}
				for _, ok := range out.Successful {
					i, _ := strconv.Atoi(aws.ToString(ok.Id))
					res.MessageIDs[i] = aws.ToString(ok.MessageId)
					delete(res.Failed, i)
				}
				for _, f := range out.Failed {
					i, _ := strconv.Atoi(aws.ToString(f.Id))
					res.Failed[i] = aws.ToString(f.Code) + ": " + aws.ToString(f.Message)
					if !f.SenderFault {
						retry = append(retry, i)
					}
				}
			})
		}
		wg.Wait()
		pending = retry
	}
	if len(res.Failed) == 0 {
		return res, nil
	}
	err := fmt.Errorf("SendMessageBatch: %d of %d messages not sent", len(res.Failed), len(bodies))
	if callErr != nil {
		err = fmt.Errorf("%w: %w", err, callErr)
	}
	return res, errors.Join(err, ctx.Err())
}

// Delete deletes messages by receipt handle with DeleteMessageBatch, 10 per
// call. It returns the number of calls and a *BatchError naming the entries
// not deleted (keyed by the index into handles) and which of them to retry.
// Bound ctx: a call that hangs holds up everything waiting for the delete.
func Delete(ctx context.Context, api API, queueURL string, handles []string) (int, error) {
	return forBatches(ctx, "DeleteMessageBatch", handles, func(entries []string, ids []string) ([]types.BatchResultErrorEntry, error) {
		in := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(queueURL)}
		for k, h := range entries {
			in.Entries = append(in.Entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(ids[k]), ReceiptHandle: aws.String(h)})
		}
		out, err := api.DeleteMessageBatch(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.Failed, nil
	})
}

// ChangeVisibility sets the visibility timeout of messages with
// ChangeMessageVisibilityBatch, 10 per call: 0 releases them to other
// consumers at once, a positive value extends the time to work on them.
func ChangeVisibility(ctx context.Context, api API, queueURL string, handles []string, seconds int32) (int, error) {
	return forBatches(ctx, "ChangeMessageVisibilityBatch", handles, func(entries []string, ids []string) ([]types.BatchResultErrorEntry, error) {
		in := &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(queueURL)}
		for k, h := range entries {
			in.Entries = append(in.Entries, types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(ids[k]), ReceiptHandle: aws.String(h), VisibilityTimeout: seconds,
			})
		}
		out, err := api.ChangeMessageVisibilityBatch(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.Failed, nil
	})
}

func forBatches(ctx context.Context, op string, handles []string, call func(entries, ids []string) ([]types.BatchResultErrorEntry, error)) (int, error) {
	calls := 0
	failed, retry := map[string]string{}, map[string]bool{}
	var errs []error
	for _, c := range chunks(len(handles)) {
		ids := make([]string, 0, c[1]-c[0])
		for i := c[0]; i < c[1]; i++ {
			ids = append(ids, strconv.Itoa(i))
		}
		calls++
		bad, err := call(handles[c[0]:c[1]], ids)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", op, err))
			for _, id := range ids {
				failed[id] = err.Error()
				retry[id] = true
			}
			continue
		}
		for _, f := range bad {
			failed[aws.ToString(f.Id)] = aws.ToString(f.Code) + ": " + aws.ToString(f.Message)
			if !f.SenderFault {
				retry[aws.ToString(f.Id)] = true
			}
		}
	}
	if len(failed) > 0 {
		errs = append(errs, &BatchError{Op: op, Failed: failed, Retry: retry})
	}
	return calls, errors.Join(errs...)
}
