package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// videoScene is seed 003: the producer job enqueues encoding requests and
// the demo plays KEDA's ScaledJob (aws-sqs-queue, queueLength 1): every
// second it starts max(0, min(visible+in flight, maxJobs) - running) video
// encoder jobs, each of which takes one message, "encodes" it, reports to
// the result analyzer and exits. One job is sent SIGTERM mid-encode to show
// a kill: its message goes back to the queue and another job finishes it.
func videoScene(ctx context.Context, st *stack, emu *emulator, analyzer string, messages int) error {
	const maxJobs = 4
	url, err := emu.createQueue(ctx, "demo-video", 3)
	if err != nil {
		return err
	}
	jobEnv := func() map[string]string {
		e := map[string]string{"QUEUE_URL": url, "RESULT_ANALYZER_URL": analyzer, "PROCESS_SLEEP_TIME": "1s",
			"QUALITY_SCALING": "linear", "IDLE_TIMEOUT": "2s", "SQS_WAIT_TIME": "1s"}
		maps.Copy(e, emu.env)
		return e
	}

	fmt.Fprintf(st.out, "\nvideo-encoder: producer enqueues %d requests; KEDA ScaledJob, queueLength 1, at most %d jobs\n", messages, maxJobs)
	prodEnv := jobEnv()
	prodEnv["NUM_MESSAGES"] = strconv.Itoa(messages)
	out, err := st.runJob(ctx, "producer", "producer", prodEnv)
	if err != nil {
		return err
	}
	fmt.Fprintf(st.out, "  producer: %s\n", strings.Join(out, "\n  "))
	fmt.Fprintf(st.out, "%6s %8s %9s %5s %10s %7s\n", "time", "visible", "in flight", "jobs", "processed", "killed")

	var running []*proc
	started, killed := 0, false
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		// Jobs that finished on their own drop out, as completed Jobs do.
		alive := running[:0]
		for _, p := range running {
			if !p.Exited() {
				alive = append(alive, p)
			}
		}
		running = alive
		st.forget(func(p *proc) bool { return strings.HasPrefix(p.name, "video-job-") && p.Exited() })

		v, f, err := emu.depth(ctx, url)
		if err != nil {
			return err
		}
		for range max(0, min(v+f, maxJobs)-len(running)) {
			started++
			name := "video-job-" + strconv.Itoa(started)
			env := jobEnv()
			env["JOB_ID"] = name // a pod's hostname in the cluster; all alike on one machine
			p, err := st.start("videoencoder", name, env)
			if err != nil {
				return err
			}
			running = append(running, p)
		}
		// Kill one job that has been encoding for a moment (as a node drain
		// or spot interruption would) to show its message is not lost.
		if !killed && started >= 3 && time.Since(start) > 2*time.Second && len(running) > 0 {
			running[0].Terminate()
			killed = true
		}
		sum, err := summary(ctx, analyzer)
		if err != nil {
			return err
		}
		fmt.Fprintf(st.out, "%5.0fs %8d %9d %5d %10d %7d\n", time.Since(start).Seconds(), v, f, len(running), sum.Processed, sum.Killed)
		if v+f == 0 && len(running) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return reportVideo(ctx, st, analyzer)
}

type analyzerSummary struct {
	Processed, Killed, PeakConcurrency int
	Duplicates                         []struct{ MessageID string }
}

func summary(ctx context.Context, analyzer string) (analyzerSummary, error) {
	var s analyzerSummary
	body, err := get(ctx, analyzer+"/summary")
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(body, &s)
}

// reportVideo prints the seed's /get/count view and the summary, and saves
// the timeline page for after the demo.
func reportVideo(ctx context.Context, st *stack, analyzer string) error {
	lines, err := get(ctx, analyzer+"/get/count")
	if err != nil {
		return err
	}
	var seed []string
	if err := json.Unmarshal(lines, &seed); err != nil {
		return err
	}
	fmt.Fprintln(st.out, "  GET /get/count (the seed's view):")
	for _, l := range seed {
		fmt.Fprintln(st.out, "   ", l)
	}
	sum, err := summary(ctx, analyzer)
	if err != nil {
		return err
	}
	fmt.Fprintf(st.out, "  summary: %d processed, %d killed, peak %d jobs at once, %d message(s) processed twice\n",
		sum.Processed, sum.Killed, sum.PeakConcurrency, len(sum.Duplicates))
	page, err := get(ctx, analyzer+"/")
	if err != nil {
		return err
	}
	path := filepath.Join(st.logs, "timeline.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(st.out, "  timeline page saved to %s (open it in a browser)\n", path)
	return nil
}

func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func envList(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}
