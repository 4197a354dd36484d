// Package server runs an HTTP service the way Kubernetes expects: liveness
// and readiness probes, timeouts, a request-body cap, and a graceful shutdown
// sequence a reader can follow in Run.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/buildinfo"
	"github.com/keda-eks-samples/workloads/pkg/config"
	"github.com/keda-eks-samples/workloads/pkg/httpx"
)

// Config is the part of a service's configuration that concerns serving.
type Config struct {
	Host            string        // HOST: interface to bind ("" = all; tests and the demo use 127.0.0.1)
	Port            int           // PORT (default 8080)
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT: whole budget from signal to exit (default 20s)
	ShutdownDelay   time.Duration // SHUTDOWN_DELAY: keep serving, unready, so endpoints drop the pod (default 5s)
	MaxBodyBytes    int64         // MAX_BODY_BYTES: request body cap (default 1 MiB)
}

// Fixed timeouts: generous enough for the slowest sample handler (webapi's
// WEATHER_MAX_DELAY is capped at 30s), short enough to shed stuck clients.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 45 * time.Second
	idleTimeout       = 120 * time.Second
	probeTimeout      = 2 * time.Second
)

// ReadConfig reads the serving variables.
func ReadConfig(r *config.Reader) Config {
	c := Config{
		Host:            r.String("HOST", ""),
		Port:            r.Int("PORT", 8080, 1, 65535),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", 20*time.Second, time.Second, 10*time.Minute),
		ShutdownDelay:   r.Duration("SHUTDOWN_DELAY", 5*time.Second, 0, 5*time.Minute),
		MaxBodyBytes:    int64(r.Int("MAX_BODY_BYTES", 1<<20, 1, 64<<20)),
	}
	if c.ShutdownDelay >= c.ShutdownTimeout {
		r.Fail("SHUTDOWN_DELAY", c.ShutdownDelay.String(), "less than SHUTDOWN_TIMEOUT ("+c.ShutdownTimeout.String()+")")
	}
	return c
}

// Addr is the listen address.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Check reports whether a dependency the service needs is usable. It should
// be cheap: readiness probes call it every few seconds.
type Check func(ctx context.Context) error

// Server serves one application handler plus the probes.
type Server struct {
	cfg      Config
	log      *slog.Logger
	handler  http.Handler
	checks   map[string]Check
	draining atomic.Bool
}

// New wraps app (which owns every route except the probes) in the shared
// router: /healthz, /readyz, JSON 404/405 and the body cap. The probes are
// outside app so that they never count as application traffic in metrics.
func New(cfg Config, log *slog.Logger, app http.Handler, checks map[string]Check) *Server {
	s := &Server{cfg: cfg, log: log, checks: checks}
	r := httpx.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			req.Body = http.MaxBytesReader(w, req.Body, cfg.MaxBodyBytes)
			next.ServeHTTP(w, req)
		})
	})
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Handle("/*", app)
	s.handler = r
	return s
}

// Handler is the full handler, for tests that use httptest.
func (s *Server) Handler() http.Handler { return s.handler }

// Liveness is about the process only: if it can answer, it is alive. It
// also tells which build is running.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": buildinfo.Version})
}

// Readiness fails from SIGTERM on, and while a required dependency is down.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
	defer cancel()
	failed := map[string]string{}
	for name, check := range s.checks {
		if err := check(ctx); err != nil {
			failed[name] = err.Error()
		}
	}
	if len(failed) > 0 {
		httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": failed})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Run listens and serves until ctx is cancelled (SIGTERM), then shuts down:
//
//  1. /readyz turns 503 at once, so Kubernetes takes the pod out of its
//     Service endpoints;
//  2. the server keeps serving for SHUTDOWN_DELAY while that propagates;
//  3. it stops accepting and waits for in-flight requests, until the rest of
//     SHUTDOWN_TIMEOUT;
//  4. Run returns nil, or an error if requests were still running.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr(), err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	deadline := time.Now().Add(s.cfg.ShutdownTimeout)
	s.draining.Store(true)
	s.log.Info("shutting down: readiness off", "delay", s.cfg.ShutdownDelay, "timeout", s.cfg.ShutdownTimeout)
	if s.cfg.ShutdownDelay > 0 {
		time.Sleep(s.cfg.ShutdownDelay) // deliberate: endpoint removal is not observable from here
	}
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("graceful shutdown incomplete after %s: %w", s.cfg.ShutdownTimeout, err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	s.log.Info("server stopped")
	return nil
}
