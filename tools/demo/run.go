package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	if err := freshLogs(o.logs); err != nil {
		return err
	}
	st := &stack{bin: o.bin, logs: o.logs, out: stdout, grace: 25 * time.Second}
	defer func() {
		// The first Ctrl-C cancelled ctx; a second one while stopping kills.
		hurry := make(chan os.Signal, 1)
		signal.Notify(hurry, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(hurry)
		st.hurry = hurry
		st.stopAll()
	}()

	fmt.Fprintf(stdout, "service logs: %s/\n\n", o.logs)
	if o.serve.overlay != "" {
		err = serve(ctx, st, o.repo, o.serve)
	} else {
		err = scenes(ctx, st, o.repo, o.load, o.messages, o.serve.messages)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// options are demo's flags; serve holds those of -serve (make preview).
type options struct {
	bin, logs, repo string
	load            time.Duration
	messages        int
	serve           serveOptions
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "bin", "directory with the service binaries (make build)")
	fs.StringVar(&o.logs, "logs", "", "directory for service logs (default: <bin>/demo-logs)")
	fs.DurationVar(&o.load, "load", 24*time.Second, "length of the HTTP load ramp")
	fs.StringVar(&o.repo, "repo", ".", "repository root (for tools/fauxqs)")
	fs.IntVar(&o.messages, "messages", 300, "messages POST /send puts on the sqsworker queue")
	fs.IntVar(&o.serve.messages, "videos", 10, "encoding requests the producer enqueues for the video encoder jobs")
	fs.StringVar(&o.serve.overlay, "serve", "", "only start the local signal source of this overlay, print a SIGNAL line and run until stopped (make preview)")
	fs.StringVar(&o.serve.load, "load-profile", "auto", "-serve: built-in load profile of loadtest/profiles.json (auto: the overlay's), or none")
	fs.DurationVar(&o.serve.loadFor, "load-for", 0, "-serve: stop the built-in load after this long (0: the profile's own length)")
	fs.DurationVar(&o.serve.export, "export-interval", 0, "-serve: webapi's metric export interval (0: as shipped, 60s)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if o.logs == "" {
		o.logs = filepath.Join(o.bin, "demo-logs")
	}
	return o, nil
}

// freshLogs makes dir hold only this run's files: the logs of a previous
// run (which may have started more jobs) would read as this one's.
func freshLogs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return err
	}
	for _, f := range append(old, filepath.Join(dir, "timeline.html")) {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func scenes(ctx context.Context, st *stack, repo string, load time.Duration, messages, videos int) error {
	m := &measured{}
	if err := httpScene(ctx, st, repo, load, m); err != nil {
		return err
	}
	emu, err := startEmulator(ctx, st, repo)
	if err != nil {
		return err
	}
	fmt.Fprintln(st.out, "\ncost meters (beside the next scenes): webapi with the CloudWatch-direct exporter, webapi → collector → EMF, an idle sqsworker")
	mt, err := startMeters(ctx, st, repo, emu)
	if err != nil {
		return err
	}
	defer mt.close()
	if err := sqsWorkerScene(ctx, st, emu, messages, m); err != nil {
		return err
	}
	analyzer, p, err := st.serve("resultanalyzer", map[string]string{})
	if err != nil {
		return err
	}
	p.backing = true // the jobs report to it, also when they are stopped
	if err := videoScene(ctx, st, emu, analyzer, videos); err != nil {
		return err
	}
	rows, err := mt.rows(ctx, st, m)
	if err != nil {
		return err
	}
	return writeCostTable(st, filepath.Join(st.logs, "costs.md"), rows)
}
