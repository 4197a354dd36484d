package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/keda-eks-samples/workloads/pkg/awsconfig"
	"github.com/keda-eks-samples/workloads/pkg/config"
	"github.com/keda-eks-samples/workloads/pkg/cwexporter"
	"github.com/keda-eks-samples/workloads/pkg/httpx"
	"github.com/keda-eks-samples/workloads/pkg/logging"
	"github.com/keda-eks-samples/workloads/pkg/server"
	"github.com/keda-eks-samples/workloads/pkg/telemetry"
	"github.com/keda-eks-samples/workloads/services/webapi/internal/weather"
)

const serviceName = "webapi"

// Config is everything webapi reads from the environment.
type Config struct {
	Server    server.Config
	Log       logging.Config
	MinDelay  time.Duration // WEATHER_MIN_DELAY (default 0)
	MaxDelay  time.Duration // WEATHER_MAX_DELAY (default 1500ms, the seed's)
	Namespace string        // CLOUDWATCH_NAMESPACE, for OTEL_METRICS_EXPORTER=cloudwatch
	PodName   string        // POD_NAME: the Host dimension (default: the hostname, which is the pod's name)
}

// ReadEnv reads every field, with its default and range, through r, then
// checks the fields against each other (config.Load calls it).
func (c *Config) ReadEnv(r *config.Reader) {
	*c = Config{
		Server:    server.ReadConfig(r),
		Log:       logging.Read(r),
		MinDelay:  r.Duration("WEATHER_MIN_DELAY", 0, 0, 30*time.Second),
		MaxDelay:  r.Duration("WEATHER_MAX_DELAY", 1500*time.Millisecond, 0, 30*time.Second),
		Namespace: r.String("CLOUDWATCH_NAMESPACE", cwexporter.DefaultNamespace),
		PodName:   r.String("POD_NAME", r.Hostname(cwexporter.DefaultHost)),
	}
	if c.MaxDelay < c.MinDelay {
		r.Fail("WEATHER_MAX_DELAY", c.MaxDelay.String(), "at least WEATHER_MIN_DELAY ("+c.MinDelay.String()+")")
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) (err error) {
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return err
	}
	log := cfg.Log.New(stdout, serviceName)

	tel, err := telemetry.Setup(ctx, log, serviceName, telemetry.CloudWatch(func(ctx context.Context) (sdkmetric.Exporter, error) {
		return newCloudWatchExporter(ctx, getenv, cfg)
	}))
	if err != nil {
		return err
	}
	defer tel.ShutdownOnExit(ctx, cfg.Server.ShutdownTimeout, &err)
	logging.Start(log, cfg)

	srv, err := tel.Server(cfg.Server, log, routes(log, cfg), nil)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// routes is the whole HTTP surface of webapi (probes are added by server).
func routes(log *slog.Logger, cfg Config) http.Handler {
	r := httpx.NewRouter()
	r.Method(http.MethodGet, "/weatherforecast", weather.Handler(log, cfg.MinDelay, cfg.MaxDelay))
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Hello World!")
	})
	return r
}

func newCloudWatchExporter(ctx context.Context, getenv func(string) string, cfg Config) (sdkmetric.Exporter, error) {
	awsCfg, err := awsconfig.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	client := cwexporter.NewClient(awsCfg, func(o *cloudwatch.Options) {
		if ep := awsconfig.Endpoint(getenv, "CLOUDWATCH"); ep != nil {
			o.BaseEndpoint = ep
		}
	})
	exp, err := cwexporter.New(cwexporter.Config{Client: client, Namespace: cfg.Namespace, Host: cfg.PodName})
	if err != nil {
		return nil, fmt.Errorf("cloudwatch exporter: %w", err)
	}
	return exp, nil
}
