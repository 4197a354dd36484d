// Package job is one run of the video encoder: receive one message, encode
// it, delete it, report it. Run returns what happened as an Outcome, which
// the command maps to its exit status.
package job

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keda-eks-samples/workloads/pkg/jobreport"
	"github.com/keda-eks-samples/workloads/pkg/videojob"
	"github.com/keda-eks-samples/workloads/pkg/wait"
	"github.com/keda-eks-samples/workloads/services/videoencoder/internal/heartbeat"
	"github.com/keda-eks-samples/workloads/services/videoencoder/internal/report"
	"github.com/keda-eks-samples/workloads/services/videoencoder/internal/video"
)

// API is the part of *sqs.Client a job uses: single-message calls, because a
// job only ever holds one message.
type API interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

var _ API = (*sqs.Client)(nil)

// Outcome is how a run ended.
type Outcome string

const (
	// Processed: the message was encoded and deleted.
	Processed Outcome = "processed"
	// Killed: the context was cancelled (SIGTERM) mid-encode; the message
	// was released (visibility 0) for another job.
	Killed Outcome = "killed"
	// Poison: the body is not an encoding request; the message was released
	// without deleting, for the queue's redrive policy to dead-letter.
	Poison Outcome = "poison"
	// Idle: no message arrived within IdleTimeout.
	Idle Outcome = "idle"
	// Stopped: the context was cancelled before any work began.
	Stopped Outcome = "stopped"
	// Failed: an SQS call failed (the error says which).
	Failed Outcome = "failed"
)

// Config is what a run needs to know.
type Config struct {
	QueueURL      string
	JobID         string
	Visibility    time.Duration // SQS_VISIBILITY_TIMEOUT, whole seconds
	WaitTime      time.Duration // SQS_WAIT_TIME, whole seconds, 0..20s
	IdleTimeout   time.Duration // IDLE_TIMEOUT
	EncodeTime    time.Duration // PROCESS_SLEEP_TIME (before scaling)
	Scaling       video.Scaling // QUALITY_SCALING
	FinishTimeout time.Duration // SHUTDOWN_TIMEOUT: budget for delete/release + report once the work is over
}

// Job runs one message through. Every field is required except Reporter
// (nil: no reports).
type Job struct {
	SQS      API
	Reporter *report.Client
	Log      *slog.Logger
	Config   Config
}

// emptyPause is the wait between receives when SQS_WAIT_TIME is 0 (short
// polling), as the seed's `sleep 1`, so an empty queue is not hammered.
const emptyPause = time.Second

// receiveSlack bounds one ReceiveMessage call beyond its WaitTimeSeconds.
const receiveSlack = 15 * time.Second

// Run receives one message and works on it. The error is nil for Processed,
// Idle and Stopped, and describes the problem otherwise (for Killed it is
// non-nil only when the release failed).
func (j *Job) Run(ctx context.Context) (Outcome, error) {
	msg, outcome, err := j.receive(ctx)
	if msg == nil {
		return outcome, err
	}
	log := j.Log.With("message_id", aws.ToString(msg.MessageId), "receive_count", receiveCount(msg))

	req, err := videojob.ParseRequest(aws.ToString(msg.Body))
	if err != nil {
		log.Error("message is not an encoding request; released for the queue's redrive policy (dead-letter queue after maxReceiveCount receives)",
			"err", err, "body", excerpt(aws.ToString(msg.Body)))
		fctx, cancel := j.finishContext(ctx)
		defer cancel()
		if rerr := j.setVisibility(fctx, msg, 0); rerr != nil {
			log.Warn("release failed; the message returns when its visibility timeout ends", "err", rerr)
		}
		return Poison, fmt.Errorf("message %s: %w", aws.ToString(msg.MessageId), err)
	}
	return j.encode(ctx, log, msg, req)
}

// receive long-polls for one message until IdleTimeout. A ReceiveMessage in
// progress is not abandoned on cancellation: SQS may already have handed it
// a message, which would then stay invisible for the whole visibility
// timeout. The call ends within WaitTime anyway, and a message it returns
// after cancellation is released at once.
func (j *Job) receive(ctx context.Context) (*types.Message, Outcome, error) {
	deadline := time.Now().Add(j.Config.IdleTimeout)
	j.Log.Info("waiting for a message", "queue_url", j.Config.QueueURL, "idle_timeout", j.Config.IdleTimeout,
		"wait_time", j.Config.WaitTime)
	stopLog := context.AfterFunc(ctx, func() {
		j.Log.Info("stop requested while waiting: an open long poll runs out and what it brings is released")
	})
	defer stopLog()
	for {
		if ctx.Err() != nil {
			j.Log.Info("stopped while waiting for a message; nothing to release")
			return nil, Stopped, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			j.Log.Info("no message within the idle timeout; exiting", "idle_timeout", j.Config.IdleTimeout)
			return nil, Idle, nil
		}
		poll := min(j.Config.WaitTime, left)
		waitSeconds := int32(math.Ceil(poll.Seconds()))
		if j.Config.WaitTime == 0 {
			waitSeconds = 0
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(waitSeconds)*time.Second+receiveSlack)
		out, err := j.SQS.ReceiveMessage(rctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(j.Config.QueueURL),
			MaxNumberOfMessages:         1,
			VisibilityTimeout:           int32(j.Config.Visibility / time.Second),
			WaitTimeSeconds:             waitSeconds,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		cancel()
		if err != nil {
			return nil, Failed, fmt.Errorf("ReceiveMessage: %w", err)
		}
		if len(out.Messages) > 0 {
			msg := &out.Messages[0]
			if ctx.Err() != nil {
				j.Log.Info("stopped while receiving; releasing the message unworked", "message_id", aws.ToString(msg.MessageId))
				fctx, cancel := j.finishContext(ctx)
				defer cancel()
				if err := j.setVisibility(fctx, msg, 0); err != nil {
					return nil, Failed, fmt.Errorf("release unworked message: %w", err)
				}
				return nil, Stopped, nil
			}
			return msg, "", nil
		}
		if waitSeconds == 0 {
			_ = wait.Sleep(ctx, min(emptyPause, time.Until(deadline)))
		}
	}
}

// encode simulates the work, keeping the message invisible with a heartbeat,
// then deletes it (Processed) or, when ctx ends first, releases it (Killed).
// Either way the result analyzer is told.
func (j *Job) encode(ctx context.Context, log *slog.Logger, msg *types.Message, req videojob.Request) (Outcome, error) {
	d := video.EncodeTime(j.Config.EncodeTime, req.Quality, j.Config.Scaling)
	log = log.With("video", req.Video, "quality", string(req.Quality), "request_id", req.ID)
	start := time.Now()
	log.Info("encoding started", "duration", d, "visibility_timeout", j.Config.Visibility,
		"extensions_planned", len(heartbeat.Schedule(j.Config.Visibility, d)))

	hctx, stopHeartbeat := context.WithCancel(ctx)
	var wg sync.WaitGroup
	hb := heartbeat.Heartbeat{
		Visibility: j.Config.Visibility,
		Extend: func(ctx context.Context, v time.Duration) error {
			if err := j.setVisibility(ctx, msg, v); err != nil {
				return err
			}
			log.Debug("visibility extended", "visibility_timeout", v, "elapsed", time.Since(start).Round(time.Millisecond))
			return nil
		},
		OnError: func(err error) {
			log.Warn("visibility extension failed; another job may receive the message", "err", err)
		},
	}
	wg.Go(func() { hb.Run(hctx) })
	interrupted := wait.Sleep(ctx, d) != nil
	stopHeartbeat()
	wg.Wait()
	end := time.Now()

	// The work is over either way: finish with a budget of its own, whatever
	// ctx does now.
	fctx, cancel := j.finishContext(ctx)
	defer cancel()
	event := jobreport.Report{
		JobID: j.Config.JobID, MessageID: aws.ToString(msg.MessageId), Start: start, End: end,
		Detail: fmt.Sprintf("video=%s quality=%s encode=%s receiveCount=%d requestId=%s",
			req.Video, req.Quality, d, receiveCount(msg), req.ID),
	}
	if interrupted {
		log.Warn("terminated mid-encode; releasing the message", "elapsed", end.Sub(start).Round(time.Millisecond))
		var err error
		if err = j.setVisibility(fctx, msg, 0); err != nil {
			log.Error("release failed; the message returns when its visibility timeout ends", "err", err)
			err = fmt.Errorf("release: %w", err)
		}
		event.Outcome = jobreport.OutcomeKilled
		j.report(fctx, log, event, j.Reporter.Killed)
		return Killed, err
	}

	if _, err := j.SQS.DeleteMessage(fctx, &sqs.DeleteMessageInput{
		QueueUrl: aws.String(j.Config.QueueURL), ReceiptHandle: msg.ReceiptHandle,
	}); err != nil {
		return Failed, fmt.Errorf("DeleteMessage %s (it will be delivered again): %w", aws.ToString(msg.MessageId), err)
	}
	log.Info("message processed and deleted", "elapsed", end.Sub(start).Round(time.Millisecond))
	event.Outcome = jobreport.OutcomeProcessed
	j.report(fctx, log, event, j.Reporter.Processed)
	return Processed, nil
}

// report sends an event; a failure is logged, never fatal: the message is
// already settled.
func (j *Job) report(ctx context.Context, log *slog.Logger, e jobreport.Report, send func(context.Context, jobreport.Report) error) {
	if !j.Reporter.Enabled() {
		return
	}
	if err := send(ctx, e); err != nil {
		log.Warn("could not report to the result analyzer", "outcome", e.Outcome, "err", err)
		return
	}
	log.Info("reported to the result analyzer", "outcome", e.Outcome)
}

func (j *Job) setVisibility(ctx context.Context, msg *types.Message, v time.Duration) error {
	_, err := j.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(j.Config.QueueURL),
		ReceiptHandle:     msg.ReceiptHandle,
		VisibilityTimeout: int32(v / time.Second),
	})
	if err != nil {
		return fmt.Errorf("ChangeMessageVisibility %s to %s: %w", aws.ToString(msg.MessageId), v, err)
	}
	return nil
}

func (j *Job) finishContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), j.Config.FinishTimeout)
}

// receiveCount is the message's ApproximateReceiveCount (0 if absent).
func receiveCount(msg *types.Message) int {
	n, _ := strconv.Atoi(msg.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	return n
}

// excerpt keeps a poison body's log line short.
func excerpt(s string) string {
	const limit = 200
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "…"
}
