package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// servers are the binaries that serve HTTP with no external dependency at
// start-up. sqsworker's readiness depends on SQS, and videoencoder and
// producer are jobs without a server: those are measured for size only.
var servers = map[string]map[string]string{
	"webapi":         {},
	"resultanalyzer": {},
}

func measureBinaries(ctx context.Context, w io.Writer, bin string, runs int) error {
	entries, err := os.ReadDir(bin)
	if err != nil {
		return fmt.Errorf("no service binaries in %s: run make build", bin)
	}
	fmt.Fprintln(w, "\nBinaries (stripped, -trimpath; start-up = exec to first /readyz 200, median of", runs, "runs):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "binary\tsize\tstart-up\tidle RSS\tgoal\t")
	for _, e := range entries {
		name := e.Name()
		info, err := e.Info()
		if err != nil {
			return err
		}
		if name == "staticcheck" || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			continue // not a service binary
		}
		size := fmt.Sprintf("%.1f MiB", float64(info.Size())/(1<<20))
		env, ok := servers[name]
		if !ok {
			fmt.Fprintf(tw, "%s\t%s\t–\t–\t\t\n", name, size)
			continue
		}
		var starts []float64
		var rss float64
		for range runs {
			d, r, err := startOnce(ctx, filepath.Join(bin, name), env)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			starts = append(starts, float64(d.Microseconds())/1000)
			rss = max(rss, r)
		}
		st, verdict := median(starts), "✓"
		if st >= 100 || rss >= 25 {
			verdict = "✗"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f ms\t%.1f MiB\t< 100 ms, < 25 MiB %s\t\n", name, size, st, rss, verdict)
	}
	return tw.Flush()
}

// startOnce starts the binary on a free loopback port, times it to the first
// /readyz 200, lets it idle briefly, reads its RSS and stops it.
func startOnce(ctx context.Context, path string, extra map[string]string) (time.Duration, float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = []string{"HOST=127.0.0.1", "PORT=" + strconv.Itoa(port), "SHUTDOWN_DELAY=0s", "LOG_LEVEL=warn"}
	for k, v := range extra {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	client := &http.Client{Timeout: time.Second}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	for {
		if time.Since(start) > 10*time.Second {
			return 0, 0, fmt.Errorf("not ready in 10s")
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	startup := time.Since(start)
	// Idle: a short settle so start-up garbage is not counted as idle.
	time.Sleep(300 * time.Millisecond)
	rss, err := rssMiB(cmd.Process.Pid)
	return startup, rss, err
}

func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
