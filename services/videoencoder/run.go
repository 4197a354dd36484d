package main

import (
	"context"
	"errors"
	"io"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/keda-eks-samples/workloads/pkg/cli"
	"github.com/keda-eks-samples/workloads/pkg/config"
	"github.com/keda-eks-samples/workloads/pkg/logging"
	"github.com/keda-eks-samples/workloads/pkg/sqsx"
	"github.com/keda-eks-samples/workloads/pkg/telemetry"
	"github.com/keda-eks-samples/workloads/services/videoencoder/internal/job"
	"github.com/keda-eks-samples/workloads/services/videoencoder/internal/report"
	"github.com/keda-eks-samples/workloads/services/videoencoder/internal/video"
)

const serviceName = "videoencoder"

// Exit statuses beyond cli's 0 (done), 1 (error) and 2 (bad configuration).
const (
	// ExitPoison: the message is not an encoding request. It was released,
	// not deleted; the queue's redrive policy dead-letters it after
	// maxReceiveCount receives (EX_DATAERR from sysexits.h).
	ExitPoison = 65
	// ExitKilled: SIGTERM/SIGINT arrived mid-encode; the message was
	// released for another job and a kill event reported (128+SIGTERM, the
	// status a shell reports for a process SIGTERM killed).
	ExitKilled = 143
)

// Config is everything videoencoder reads from the environment.
type Config struct {
	Log               logging.Config
	Job               job.Config
	ResultAnalyzerURL string // RESULT_ANALYZER_URL ("" = no reports)
}

// ReadEnv reads every field, with its default and range, through r
// (config.Load calls it).
func (c *Config) ReadEnv(r *config.Reader) {
	*c = Config{
		Log: logging.Read(r),
		Job: job.Config{
			QueueURL:      r.Required("QUEUE_URL", "the SQS queue URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/video-encoding"),
			JobID:         r.String("JOB_ID", r.Hostname(serviceName)),
			Visibility:    r.WholeSeconds("SQS_VISIBILITY_TIMEOUT", 600*time.Second, time.Second, 12*time.Hour),
			WaitTime:      r.WholeSeconds("SQS_WAIT_TIME", 10*time.Second, 0, 20*time.Second),
			IdleTimeout:   r.Seconds("IDLE_TIMEOUT", 60*time.Second, time.Second, 24*time.Hour),
			EncodeTime:    r.Seconds("PROCESS_SLEEP_TIME", 60*time.Second, 0, 24*time.Hour),
			FinishTimeout: r.Duration("SHUTDOWN_TIMEOUT", 20*time.Second, time.Second, 10*time.Minute),
		},
		ResultAnalyzerURL: r.OptionalURL("RESULT_ANALYZER_URL"),
	}
	raw := r.String("QUALITY_SCALING", "none")
	scaling, ok := video.ParseScaling(raw)
	if !ok {
		r.Fail("QUALITY_SCALING", raw, "none (or false, off, 0) or linear (or true, on, 1)")
	}
	c.Job.Scaling = scaling
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return err
	}
	log := cfg.Log.New(stdout, serviceName).With("job_id", cfg.Job.JobID)

	tel, err := telemetry.Setup(ctx, log, serviceName)
	if err != nil {
		return err
	}
	logging.Start(log, cfg)
	if cfg.ResultAnalyzerURL == "" {
		log.Info("no reports to the result analyzer: RESULT_ANALYZER_URL is unset")
	}
	// A job lives for seconds to minutes: Shutdown's final export is what
	// gets its counter out. A failed flush is logged; it must not turn a
	// processed message into a failed Job. It shares SHUTDOWN_TIMEOUT with
	// settling the message, which gets the rest.
	defer func() {
		if err := tel.ShutdownWithin(ctx, cfg.Job.FinishTimeout); err != nil {
			log.Warn("metrics flush failed", "err", err)
		}
	}()
	jobCfg := cfg.Job
	jobCfg.FinishTimeout = telemetry.DrainBudget(cfg.Job.FinishTimeout)
	outcomes, err := tel.MeterProvider().Meter(serviceName).Int64Counter("videoencoder.jobs",
		metric.WithDescription("Encoder runs by outcome: processed, killed, poison, idle, stopped, failed."),
		metric.WithUnit("{job}"))
	if err != nil {
		return err
	}

	client, err := sqsx.NewClient(ctx, getenv)
	if err != nil {
		return err
	}
	j := &job.Job{
		SQS:      client,
		Reporter: &report.Client{BaseURL: cfg.ResultAnalyzerURL},
		Log:      log,
		Config:   jobCfg,
	}
	outcome, err := j.Run(ctx)
	outcomes.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("outcome", string(outcome))))
	exit := exitError(outcome, err)
	if err != nil {
		log.Error("done", "outcome", outcome, "exit_code", cli.ExitCode(exit), "err", err)
	} else {
		log.Info("done", "outcome", outcome, "exit_code", cli.ExitCode(exit))
	}
	return exit
}

// exitError maps a run's outcome to the error cli.Main turns into the exit
// status: nil (0) for processed, idle and stopped; ExitPoison; ExitKilled;
// the error itself (1) for failures.
func exitError(o job.Outcome, err error) error {
	switch o {
	case job.Poison:
		return &cli.ExitError{Code: ExitPoison, Err: err}
	case job.Killed:
		return &cli.ExitError{Code: ExitKilled, Err: errors.Join(errors.New("terminated mid-encode; message released"), err)}
	default:
		return err
	}
}
