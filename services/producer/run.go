package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/keda-eks-samples/workloads/pkg/config"
	"github.com/keda-eks-samples/workloads/pkg/logging"
	"github.com/keda-eks-samples/workloads/pkg/sqsx"
	"github.com/keda-eks-samples/workloads/pkg/videojob"
)

const serviceName = "producer"

// MaxMessages caps NUM_MESSAGES: enough to watch KEDA hit any sensible
// maxReplicaCount, small enough that a typo doesn't enqueue millions.
const MaxMessages = 100000

// Config is everything producer reads from the environment.
type Config struct {
	Log         logging.Config
	QueueURL    string // QUEUE_URL (required)
	NumMessages int    // NUM_MESSAGES (default 10, the seed's)
	Concurrency int    // SEND_CONCURRENCY: SendMessageBatch calls in flight (default 8)
}

// ReadEnv reads every field, with its default and range, through r
// (config.Load calls it).
func (c *Config) ReadEnv(r *config.Reader) {
	*c = Config{
		Log:         logging.Read(r),
		QueueURL:    r.Required("QUEUE_URL", "the SQS queue URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/video-encoding"),
		NumMessages: r.Int("NUM_MESSAGES", 10, 1, MaxMessages),
		Concurrency: r.Int("SEND_CONCURRENCY", 8, 1, 64),
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return err
	}
	log := cfg.Log.New(stdout, serviceName)
	logging.Start(log, cfg)

	client, err := sqsx.NewClient(ctx, getenv)
	if err != nil {
		return err
	}
	bodies, err := videojob.Build(cfg.NumMessages, uuid.NewString)
	if err != nil {
		return err
	}

	start := time.Now()
	res, sendErr := sqsx.Send(ctx, client, cfg.QueueURL, bodies, cfg.Concurrency)
	elapsed := time.Since(start)

	// The human line first (what `kubectl logs` readers look for), then the
	// same facts as a structured record.
	fmt.Fprintf(stdout, "sent %d of %d messages in %d SendMessageBatch calls, %d failed, elapsed %s\n",
		res.Sent(), len(bodies), res.Calls, len(res.Failed), elapsed.Round(time.Millisecond))
	attrs := []any{"sent", res.Sent(), "requested", len(bodies), "failed", len(res.Failed),
		"calls", res.Calls, "elapsed", elapsed, "queue_url", cfg.QueueURL}
	if sendErr != nil {
		log.Error("send finished with failures", append(attrs, "err", sendErr)...)
		return sendErr // "SendMessageBatch: N of M messages not sent: <first cause>"
	}
	log.Info("send finished", attrs...)
	return nil
}
