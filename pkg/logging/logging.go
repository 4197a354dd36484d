// Package logging builds the slog.Logger every service uses from LOG_LEVEL
// and LOG_FORMAT, and logs a service's start-up record: its version and its
// whole effective configuration.
package logging

import (
	"io"
	"log/slog"

	"github.com/keda-eks-samples/workloads/pkg/buildinfo"
	"github.com/keda-eks-samples/workloads/pkg/config"
)

// Config selects the level and format of the log.
type Config struct {
	Level  slog.Level // LOG_LEVEL: debug, info, warn, error (default info)
	Format string     // LOG_FORMAT: json or text (default json)
}

// Read reads LOG_LEVEL and LOG_FORMAT.
func Read(r *config.Reader) Config {
	var c Config
	switch r.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error") {
	case "debug":
		c.Level = slog.LevelDebug
	case "warn":
		c.Level = slog.LevelWarn
	case "error":
		c.Level = slog.LevelError
	default:
		c.Level = slog.LevelInfo
	}
	c.Format = r.OneOf("LOG_FORMAT", "json", "json", "text")
	return c
}

// New returns a logger writing to w, tagged with the service name.
func (c Config) New(w io.Writer, service string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level, ReplaceAttr: durationString}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if c.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h).With("service", service)
}

// durationString writes a time.Duration as a Go duration ("5s", "1.5ms"),
// the form every duration variable is set in, instead of the JSON handler's
// integer nanoseconds. The text handler already does this.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// Start logs the one start-up record of a service: the build version and its
// whole effective configuration, cfg being the service's config struct,
// written with StructValue (every exported field, credentials redacted). Call
// it once the configuration is known to be good, after telemetry.Setup too (a
// bad OTEL_* value is a configuration error, reported in one line and nothing
// else).
func Start(log *slog.Logger, cfg any) {
	log.Info("starting", "version", buildinfo.Version, "config", StructValue(cfg))
}
