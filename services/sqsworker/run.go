package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/config"
	"github.com/keda-eks-samples/workloads/pkg/httpx"
	"github.com/keda-eks-samples/workloads/pkg/logging"
	"github.com/keda-eks-samples/workloads/pkg/server"
	"github.com/keda-eks-samples/workloads/pkg/sqsx"
	"github.com/keda-eks-samples/workloads/pkg/telemetry"
	"github.com/keda-eks-samples/workloads/services/sqsworker/internal/api"
	"github.com/keda-eks-samples/workloads/services/sqsworker/internal/worker"
)

const serviceName = "sqsworker"

// Config is everything sqsworker reads from the environment.
type Config struct {
	Server          server.Config
	Log             logging.Config
	Worker          worker.Config
	MinDelay        time.Duration // PROCESS_MIN_DELAY (seed: 1s)
	MaxDelay        time.Duration // PROCESS_MAX_DELAY (seed: 2.5s)
	SendConcurrency int           // SEND_CONCURRENCY: parallel SendMessageBatch calls of /send
}

// ReadEnv reads every field, with its default and range, through r, then
// checks the fields against each other (config.Load calls it).
func (c *Config) ReadEnv(r *config.Reader) {
	*c = Config{
		Server: server.ReadConfig(r),
		Log:    logging.Read(r),
		Worker: worker.Config{
			QueueURL:          r.URL("QUEUE_URL", ""),
			Concurrency:       r.Int("WORKER_CONCURRENCY", 10, 1, 1000),
			WaitTime:          r.Duration("SQS_WAIT_TIME", 5*time.Second, 0, 20*time.Second),
			VisibilityTimeout: r.Duration("SQS_VISIBILITY_TIMEOUT", 30*time.Second, time.Second, 12*time.Hour),
			DeleteFlush:       r.Duration("DELETE_FLUSH_INTERVAL", time.Second, time.Millisecond, time.Minute),
			MaxBackoff:        r.Duration("SQS_MAX_BACKOFF", 20*time.Second, 100*time.Millisecond, 5*time.Minute),
		},
		MinDelay:        r.Duration("PROCESS_MIN_DELAY", time.Second, 0, time.Hour),
		MaxDelay:        r.Duration("PROCESS_MAX_DELAY", 2500*time.Millisecond, 0, time.Hour),
		SendConcurrency: r.Int("SEND_CONCURRENCY", 8, 1, 100),
	}
	if c.MaxDelay < c.MinDelay {
		r.Fail("PROCESS_MAX_DELAY", c.MaxDelay.String(), "at least PROCESS_MIN_DELAY ("+c.MinDelay.String()+")")
	}
	// A long poll open at SIGTERM is left to run out rather than cut (a cut
	// poll can still be handed messages nobody will work), so it must end
	// inside the drain window of the shutdown budget.
	budget := telemetry.DrainBudget(c.Server.ShutdownTimeout)
	if drain := budget - worker.ReleaseReserve(budget); c.Worker.WaitTime >= drain {
		r.Fail("SQS_WAIT_TIME", c.Worker.WaitTime.String(), fmt.Sprintf(
			"less than SHUTDOWN_TIMEOUT minus the flush and release reserves (%s), so a long poll open at SIGTERM ends within the budget", drain))
	}
	if c.Worker.WaitTime%time.Second != 0 {
		r.Fail("SQS_WAIT_TIME", c.Worker.WaitTime.String(), "whole seconds from 0s to 20s")
	}
	if c.Worker.VisibilityTimeout%time.Second != 0 {
		r.Fail("SQS_VISIBILITY_TIMEOUT", c.Worker.VisibilityTimeout.String(), "whole seconds from 1s to 12h")
	}
	// A finished message waits up to DeleteFlush for its delete: it must
	// go well before the message could become visible again.
	if c.Worker.DeleteFlush > c.Worker.VisibilityTimeout/2 {
		r.Fail("DELETE_FLUSH_INTERVAL", c.Worker.DeleteFlush.String(), fmt.Sprintf(
			"at most half of SQS_VISIBILITY_TIMEOUT (%s), so a finished message is deleted before it can reappear", c.Worker.VisibilityTimeout/2))
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) (err error) {
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return err
	}
	log := cfg.Log.New(stdout, serviceName)

	tel, err := telemetry.Setup(ctx, log, serviceName)
	if err != nil {
		return err
	}
	defer tel.ShutdownOnExit(ctx, cfg.Server.ShutdownTimeout, &err)
	logging.Start(log, cfg)
	m, err := newMetrics(tel.MeterProvider())
	if err != nil {
		return err
	}
	client, err := sqsx.NewClient(ctx, getenv, sqsx.CountCalls(m.sqsCall))
	if err != nil {
		return err
	}

	w := worker.New(cfg.Worker, client, worker.SimulatedWork(cfg.MinDelay, cfg.MaxDelay), m, log)
	send := func(ctx context.Context, bodies []string) (sqsx.SendResult, error) {
		return sqsx.Send(ctx, client, cfg.Worker.QueueURL, bodies, cfg.SendConcurrency)
	}
	srv, err := tel.Server(cfg.Server, log, routes(log, send), map[string]server.Check{"sqs": w.Healthy})
	if err != nil {
		return err
	}

	// The server and the worker stop on the same signal and share the
	// shutdown budget. If either fails on its own (the port is taken, say),
	// the other is stopped too: no consuming without probes, or vice versa.
	both, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var srvErr, workErr error
	wg.Go(func() { defer stop(); srvErr = srv.Run(both) })
	// The worker drains within the server's budget, which leaves the last
	// metrics flush its share of SHUTDOWN_TIMEOUT.
	wg.Go(func() { defer stop(); workErr = w.Run(both, telemetry.DrainBudget(cfg.Server.ShutdownTimeout)) })
	wg.Wait()
	return errors.Join(srvErr, workErr)
}

// routes is the whole HTTP surface of sqsworker (probes are added by server).
func routes(log *slog.Logger, send api.Sender) http.Handler {
	r := httpx.NewRouter()
	r.Method(http.MethodPost, "/send", api.Send(log, send))
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Hello World!")
	})
	return r
}
