package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/keda-eks-samples/workloads/pkg/config"
	"github.com/keda-eks-samples/workloads/pkg/httpx"
	"github.com/keda-eks-samples/workloads/pkg/jobreport"
	"github.com/keda-eks-samples/workloads/pkg/logging"
	"github.com/keda-eks-samples/workloads/pkg/server"
	"github.com/keda-eks-samples/workloads/pkg/telemetry"
	"github.com/keda-eks-samples/workloads/services/resultanalyzer/internal/api"
	"github.com/keda-eks-samples/workloads/services/resultanalyzer/internal/events"
	"github.com/keda-eks-samples/workloads/services/resultanalyzer/internal/timeline"
)

const serviceName = "resultanalyzer"

// Config is everything resultanalyzer reads from the environment.
type Config struct {
	Server   server.Config
	Log      logging.Config
	DataFile string // DATA_FILE: JSON Lines file the events survive restarts in ("" = memory only)
}

// ReadEnv reads every field, with its default and range, through r, then
// checks the fields against each other (config.Load calls it).
func (c *Config) ReadEnv(r *config.Reader) {
	*c = Config{
		Server:   server.ReadConfig(r),
		Log:      logging.Read(r),
		DataFile: r.String("DATA_FILE", ""),
	}
	if strings.HasSuffix(c.DataFile, "/") {
		r.Fail("DATA_FILE", c.DataFile, "a file path, not a directory (e.g. /data/events.jsonl), or unset to keep events in memory")
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) (err error) {
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return err
	}
	log := cfg.Log.New(stdout, serviceName)

	store, err := events.Open(cfg.DataFile, log)
	if err != nil {
		return fmt.Errorf("DATA_FILE: %w", err)
	}
	// Closed after the server has drained, so no acknowledged event is lost.
	defer func() { err = errors.Join(err, store.Close()) }()

	tel, err := telemetry.Setup(ctx, log, serviceName)
	if err != nil {
		return err
	}
	defer tel.ShutdownOnExit(ctx, cfg.Server.ShutdownTimeout, &err)
	logging.Start(log, cfg)
	if cfg.DataFile == "" {
		log.Info("events kept in memory only: set DATA_FILE to keep them across restarts")
	}

	srv, err := tel.Server(cfg.Server, log, routes(log, store), nil)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// routes is the whole HTTP surface of resultanalyzer (probes are added by
// server). The first three are the seed's; jobs call the two POSTs when they
// finish or are killed, with an optional JSON body (see jobreport.Report).
func routes(log *slog.Logger, store *events.Store) http.Handler {
	r := httpx.NewRouter()
	r.Method(http.MethodPost, jobreport.ProcessedPath, api.Record(store, events.Processed, log))
	r.Method(http.MethodPost, jobreport.KilledPath, api.Record(store, events.Killed, log))
	r.Method(http.MethodGet, "/get/count", api.SeedLines(store))
	r.Method(http.MethodGet, "/events", api.List(store))
	r.Method(http.MethodGet, "/summary", api.Summary(store))
	r.Method(http.MethodGet, "/", timeline.Handler(store, log))
	return r
}
