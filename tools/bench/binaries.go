package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

// serverEnv returns the environment of each binary that serves HTTP, or
// false for the jobs (videoencoder, producer), which are measured for size
// only. sqsworker is ready only once SQS answers, so it gets the emulator.
func serverEnv(name string, sqsEndpoint, queueURL string) (map[string]string, bool) {
	switch name {
	case "webapi", "resultanalyzer":
		return map[string]string{}, true
	case "sqsworker":
		return map[string]string{"QUEUE_URL": queueURL, "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_SQS": sqsEndpoint,
			"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "SQS_WAIT_TIME": "1s"}, true
	}
	return nil, false
}

// measureBinaries prints a row per service binary in bin and returns the
// goals not met, one per binary that missed one.
func measureBinaries(ctx context.Context, w io.Writer, bin string, services []string, repo string, runs int) (missed []string, err error) {
	endpoint, queueURL, stop, err := startSQS(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("SQS emulator for sqsworker: %w", err)
	}
	defer stop()
	fmt.Fprintln(w, "\nBinaries (stripped, -trimpath; start-up = exec to first /readyz 200, median of", runs, "runs):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "binary\tsize\tstart-up\tidle RSS\tgoal\t")
	for _, name := range services {
		info, err := os.Stat(filepath.Join(bin, name))
		if err != nil {
			return nil, fmt.Errorf("%w: run make build", err)
		}
		size := fmt.Sprintf("%.1f MiB", float64(info.Size())/(1<<20))
		env, ok := serverEnv(name, endpoint, queueURL)
		if !ok {
			fmt.Fprintf(tw, "%s\t%s\t–\t–\t\t\n", name, size)
			continue
		}
		var starts []float64
		var rss float64
		for range runs {
			d, r, err := startOnce(ctx, filepath.Join(bin, name), env)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			starts = append(starts, float64(d.Microseconds())/1000)
			rss = max(rss, r)
		}
		st, mark := median(starts), "✓"
		if st >= 100 || rss >= 25 {
			mark = "✗"
			missed = append(missed, fmt.Sprintf("%s start-up %.1f ms, idle RSS %.1f MiB (target < 100 ms, < 25 MiB)", name, st, rss))
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f ms\t%.1f MiB\t< 100 ms, < 25 MiB %s\t\n", name, size, st, rss, mark)
	}
	return missed, tw.Flush()
}

// startOnce starts the binary on a free loopback port, times it to the first
// /readyz 200, lets it idle briefly, reads its RSS and stops it.
func startOnce(ctx context.Context, path string, extra map[string]string) (time.Duration, float64, error) {
	ports, err := localproc.FreePorts(1)
	if err != nil {
		return 0, 0, err
	}
	port := ports[0]
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

// startSQS runs the emulator (tools/fauxqs) on a free port and creates one
// queue with a plain AWS JSON call (the emulator does not check signatures).
func startSQS(ctx context.Context, repo string) (endpoint, queueURL string, stop func(), err error) {
	ports, err := localproc.FreePorts(1)
	if err != nil {
		return "", "", nil, err
	}
	port := ports[0]
	cmd := exec.CommandContext(ctx, "node", "serve.mjs", "--port", strconv.Itoa(port))
	cmd.Dir = filepath.Join(repo, "tools", "fauxqs")
	if err := cmd.Start(); err != nil {
		return "", "", nil, err
	}
	stop = func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }
	endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(`{"QueueName":"bench"}`))
		req.Header.Set("X-Amz-Target", "AmazonSQS.CreateQueue")
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var out struct{ QueueUrl string }
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err == nil && out.QueueUrl != "" {
				return endpoint, out.QueueUrl, stop, nil
			}
			if err == nil {
				err = fmt.Errorf("CreateQueue answered %s without a QueueUrl", resp.Status)
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", "", nil, fmt.Errorf("no CreateQueue answer from %s: %w", endpoint, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
