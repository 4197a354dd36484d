// Package cli is the few lines every main function shares: a context that is
// cancelled on SIGINT or SIGTERM, the call to run, and the exit status.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/keda-eks-samples/workloads/pkg/config"
)

// RunFunc is the testable body of a program.
type RunFunc func(ctx context.Context, getenv func(string) string, stdout io.Writer) error

// ExitError carries an explicit exit status, for programs whose status means
// something to their scheduler (a Kubernetes Job counts non-zero as failed).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode maps an error returned by run to a process exit status: 0 for nil,
// 2 for bad configuration, an ExitError's own code, 1 otherwise.
func ExitCode(err error) int {
	var ee *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	case config.IsConfig(err):
		return 2
	default:
		return 1
	}
}

// Main runs run with the process environment and exits with its status. The
// first SIGINT/SIGTERM cancels the context (graceful shutdown); once that has
// happened the default signal behaviour is restored, so a second Ctrl-C kills.
func Main(run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), err)
	}
	os.Exit(ExitCode(err))
}
