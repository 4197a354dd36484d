// Command preview is `make preview OVERLAY=<x>`: what KEDA would do. It
// renders the overlay as users render it, reads its trigger, starts the
// overlay's local signal source (bin/demo -serve: webapi, the collector,
// Prometheus, the CloudWatch stand-in or the SQS emulator, on 127.0.0.1),
// builds KEDA v2.21's own scaler from the trigger's metadata with only
// serverAddress / awsEndpoint / queueURL pointed at it, and polls it at the
// trigger's pollingInterval, printing each time the metric, "active" and
// the replicas the HPA would ask for (or, for a ScaledJob, the Jobs KEDA
// would create). Load comes from the user's k6 (make load), or from the
// built-in Go profile when k6 is not installed. Ctrl-C stops everything.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scaling/scaledjob"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/tools/kedasim/kedascaler"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
	"github.com/keda-eks-samples/workloads/tools/kedasim/scalemath"
	"github.com/keda-eks-samples/workloads/tools/kedasim/timeline"
)

func main() {
	// KEDA's scalers log through controller-runtime; keep the table clean.
	ctrllog.SetLogger(logr.Discard())
	localproc.Main(func(ctx context.Context, args []string, stdout io.Writer) error {
		return run(ctx, args, os.Getenv, stdout)
	})
}

// signalSource is bin/demo -serve's SIGNAL line (tools/demo/serve.go).
type signalSource struct {
	Overlay     string            `json:"overlay"`
	BaseURL     string            `json:"base_url"`
	Prometheus  string            `json:"prometheus"`
	CloudWatch  string            `json:"cloudwatch"`
	SQSEndpoint string            `json:"sqs_endpoint"`
	QueueURL    string            `json:"queue_url"`
	Analyzer    string            `json:"result_analyzer"`
	Profile     string            `json:"load_profile"`
	Script      string            `json:"k6_script"`
	Env         map[string]string `json:"env"`
}

type options struct {
	overlay, repo, bin, load string
	poll, duration, loadFor  time.Duration
	export                   time.Duration
	html                     string
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("preview", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.overlay, "overlay", "", "the overlay: "+strings.Join(manifests.Overlays, ", "))
	fs.StringVar(&o.repo, "repo", "../..", "repository root")
	fs.StringVar(&o.bin, "bin", "", "directory with the built binaries: demo, the services, otelcol (default <repo>/bin)")
	fs.DurationVar(&o.poll, "poll", 0, "poll this often instead of the trigger's pollingInterval (the shipped one is still printed)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	fs.StringVar(&o.load, "load", "auto", "auto: the built-in Go load profile when k6 is not on PATH, none when it is (run make load); builtin: always; none: never")
	fs.DurationVar(&o.loadFor, "load-for", 0, "stop the built-in load after this long (0: the profile's own length)")
	fs.DurationVar(&o.export, "export-interval", 0, "webapi's metric export interval (0: the overlay's own OTEL_METRIC_EXPORT_INTERVAL: 15s for amp, 60s for the CloudWatch triggers, whose SUM needs it)")
	fs.StringVar(&o.html, "html", "", "also write the polls as a timeline page to this file, when the preview ends (open it in a browser)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !slices.Contains(manifests.Overlays, o.overlay) {
		return fmt.Errorf("-overlay %q: want one of %s", o.overlay, strings.Join(manifests.Overlays, ", "))
	}
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return err
	}
	if o.bin == "" {
		o.bin = filepath.Join(repo, "bin")
	}
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}

	objs, err := manifests.RenderOverlay(repo, o.overlay)
	if err != nil {
		return err
	}
	trs, err := manifests.Triggers(objs)
	if err != nil {
		return err
	}
	if len(trs) != 1 {
		return fmt.Errorf("overlay %s renders %d triggers; preview reads exactly one", o.overlay, len(trs))
	}
	tr := trs[0]

	load := o.load
	if load == "auto" {
		load = "builtin"
		if _, err := exec.LookPath("k6"); err == nil {
			load = "none"
		}
	}
	if o.export == 0 {
		o.export = shippedExport(objs) // the overlay's own interval (15 s for amp, 60 s for the CloudWatch paths)
	}
	src, stack, err := startStack(ctx, o, repo, load, stdout)
	if err != nil {
		return err
	}
	defer stack.stop()

	override := map[string]string{}
	switch tr.Spec.Type {
	case "prometheus":
		override["serverAddress"] = src.Prometheus
	case "aws-cloudwatch":
		override["awsEndpoint"] = src.CloudWatch
	case "aws-sqs-queue":
		override["awsEndpoint"], override["queueURL"] = src.SQSEndpoint, src.QueueURL
	}
	if err := dummyAWS(getenv); err != nil {
		return err
	}
	s, err := kedascaler.BuildScaler(ctx, tr, override)
	if err != nil {
		return fmt.Errorf("%s: KEDA's %s scaler: %w", tr.Owner, tr.Spec.Type, err)
	}
	defer s.Close(context.Background())

	every := time.Duration(tr.PollingInterval) * time.Second
	if o.poll > 0 {
		every = o.poll
	}
	fmt.Fprintf(stdout, "\n%s: %s trigger of %s, KEDA v2.21's own scaler; only %s pointed at the local signal\n",
		o.overlay, tr.Spec.Type, tr.Owner, strings.Join(slices.Sorted(maps.Keys(override)), ", "))
	for _, k := range []string{"query", "expression", "queueLength", "threshold", "targetMetricValue", "activationThreshold", "activationTargetMetricValue", "activationQueueLength", "scaleOnInFlight"} {
		if v, ok := tr.Spec.Metadata[k]; ok {
			fmt.Fprintf(stdout, "  %s: %s\n", k, v)
		}
	}
	fmt.Fprintf(stdout, "  pollingInterval: %ds as shipped; polling every %s here\n", tr.PollingInterval, every)
	if o.export > 0 {
		fmt.Fprintf(stdout, "  webapi exports its metrics every %s\n", o.export)
	}
	switch {
	case src.BaseURL != "" && load == "none":
		fmt.Fprintf(stdout, "  drive it: make load SCRIPT=%s BASE_URL=%s\n", src.Script, src.BaseURL)
	case src.BaseURL != "":
		fmt.Fprintf(stdout, "  load: built-in profile %q against BASE_URL=%s (or make load SCRIPT=%s BASE_URL=%s)\n", src.Profile, src.BaseURL, src.Script, src.BaseURL)
	}
	if src.QueueURL != "" {
		fmt.Fprintf(stdout, "  queue: %s (SQS emulator %s)\n", src.QueueURL, src.SQSEndpoint)
	}
	if src.Analyzer != "" {
		fmt.Fprintf(stdout, "  result analyzer: %s (the jobs' timeline; the producer enqueued the load)\n", src.Analyzer)
	}
	if strings.HasPrefix(tr.Spec.Type, "aws-cloudwatch") {
		fmt.Fprintf(stdout, "  CloudWatch: the trigger reads a %ss period ending %ss ago: with one export a minute the value trails the load by 2-3 minutes, as it would in AWS (DURATION=5m)\n",
			tr.Spec.Metadata["metricStatPeriod"], tr.Spec.Metadata["metricEndTimeOffset"])
	}

	title := fmt.Sprintf("make preview OVERLAY=%s: KEDA's %s scaler polled every %s", o.overlay, tr.Spec.Type, every)
	var tl *timeline.Timeline
	if tr.Kind == "ScaledJob" {
		tl = timeline.New(title, timeline.Series{Name: "queue (KEDA's value)", Panel: "queue"},
			timeline.Series{Name: "running", Panel: "Jobs"}, timeline.Series{Name: "created (total)", Panel: "Jobs"})
		err = pollScaledJob(ctx, o, tr, s, src, every, tl, stdout)
	} else {
		tl = timeline.New(title, timeline.Series{Name: "metric (KEDA's value)", Panel: "metric"},
			timeline.Series{Name: "desired replicas", Panel: "replicas"})
		tl.Expect("replicas", float64(tr.Min), float64(tr.Max), fmt.Sprintf("the ScaledObject's range, %d..%d", tr.Min, tr.Max))
		err = pollScaledObject(ctx, tr, s, every, tl, stdout)
	}
	if o.html != "" {
		if werr := tl.WritePage(o.html); werr != nil {
			return errors.Join(err, werr)
		}
		fmt.Fprintf(stdout, "timeline: %s\n", o.html)
	}
	return err
}

// pollScaledObject prints each poll: the metric, active, and the HPA's
// desired replicas for the trigger's metricType and target, within the
// ScaledObject's min and max, starting from min.
func pollScaledObject(ctx context.Context, tr manifests.Trigger, s scalers.Scaler, every time.Duration, tl *timeline.Timeline, stdout io.Writer) error {
	target, err := kedascaler.ExternalTarget(ctx, s)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  HPA: metricType %s, target %s, replicas %d..%d\n\n", target.Type, scalemath.TargetString(target), tr.Min, tr.Max)
	fmt.Fprintf(stdout, "%8s %10s %7s %9s\n", "time", "metric", "active", "replicas")
	current := tr.Min
	poll := func(ctx context.Context) (kedascaler.Reading, error) { return kedascaler.Poll(ctx, s) }
	return pollEvery(ctx, every, tl, stdout, " (KEDA keeps the replicas)", poll, func(elapsed time.Duration, r kedascaler.Reading) {
		desired := scalemath.Clamp(scalemath.HPADesired(target, r.Value, current), tr.Min, tr.Max)
		if !r.Active && tr.Min == 0 {
			desired = 0 // KEDA deactivates to zero
		}
		fmt.Fprintf(stdout, "%7.0fs %10s %7v %9d\n", elapsed.Seconds(), trim(r.Value), r.Active, desired)
		tl.Add(r.Value, float64(desired))
		current = max(desired, 1)
	})
}

// pollScaledJob prints each poll: the queue KEDA reads, and the Jobs its
// ScaledJob code would create for the running ones; it starts that many
// bin/videoencoder processes, as Jobs, so the queue drains as in a cluster.
func pollScaledJob(ctx context.Context, o options, tr manifests.Trigger, s scalers.Scaler, src *signalSource, every time.Duration, tl *timeline.Timeline, stdout io.Writer) error {
	sj := tr.ScaledJob
	specs := s.GetMetricSpecForScaling(ctx)
	fmt.Fprintf(stdout, "  ScaledJob: strategy %q, jobs %d..%d\n\n", sj.Spec.ScalingStrategy.Strategy, sj.MinReplicaCount(), sj.MaxReplicaCount())
	fmt.Fprintf(stdout, "%8s %10s %7s %8s %7s\n", "time", "queue", "active", "running", "create")
	var jobs []*exec.Cmd
	var done []chan struct{}
	defer func() {
		for i, j := range jobs {
			_ = j.Process.Signal(syscall.SIGTERM)
			<-done[i]
		}
	}()
	running := func() (n int64) {
		for _, d := range done {
			select {
			case <-d:
			default:
				n++
			}
		}
		return n
	}
	poll := func(ctx context.Context) (scaledjob.ScalerMetrics, error) {
		ms, active, err := s.GetMetricsAndActivity(ctx, specs[0].External.Metric.Name)
		if err != nil {
			return scaledjob.ScalerMetrics{}, err
		}
		queueLength, maxValue, _ := scaledjob.CalculateQueueLengthAndMaxValue(ms, specs, sj.MaxReplicaCount())
		return scaledjob.ScalerMetrics{QueueLength: queueLength, MaxValue: maxValue, IsActive: active}, nil
	}
	return pollEvery(ctx, every, tl, stdout, "", poll, func(elapsed time.Duration, m scaledjob.ScalerMetrics) {
		queueLength := m.QueueLength
		isActive, scaleTo, maxScale, _ := scaledjob.IsScaledJobActive([]scaledjob.ScalerMetrics{m},
			sj.Spec.ScalingStrategy.MultipleScalersCalculation, sj.MinReplicaCount(), sj.MaxReplicaCount())
		run := running() // no pending pods here: a process starts at once
		create := scalemath.JobDecision(sj, isActive, run, 0, scaleTo, maxScale)
		fmt.Fprintf(stdout, "%7.0fs %10s %7v %8d %7d\n", elapsed.Seconds(), trim(queueLength), isActive, run, create)
		tl.Add(queueLength, float64(run), float64(int64(len(jobs))+create))
		for range create {
			cmd, d, err := startJob(o, src, len(jobs)+1)
			if err != nil {
				fmt.Fprintf(stdout, "  job: %v\n", err)
				return
			}
			jobs, done = append(jobs, cmd), append(done, d)
		}
	})
}

// startJob runs bin/videoencoder once, as a Job of the ScaledJob would,
// with the emulator's environment and a short encode.
func startJob(o options, src *signalSource, n int) (*exec.Cmd, chan struct{}, error) {
	cmd := exec.Command(filepath.Join(o.bin, "videoencoder"))
	env := []string{"PATH=" + os.Getenv("PATH"), fmt.Sprintf("JOB_ID=videoencoder-%d", n), "PROCESS_SLEEP_TIME=2s",
		"IDLE_TIMEOUT=5s", "SQS_WAIT_TIME=1", "LOG_LEVEL=warn"}
	for k, v := range src.Env {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	d := make(chan struct{})
	go func() { _ = cmd.Wait(); close(d) }()
	return cmd, d, nil
}

// pollEvery asks the scaler (poll) now and then every `every` until ctx
// ends, each time with a 10 s deadline, and hands each answer to show. A
// failed poll, unless ctx has ended (the preview is stopping), is printed
// followed by keeps (what KEDA does meanwhile) and marked on the timeline.
func pollEvery[T any](ctx context.Context, every time.Duration, tl *timeline.Timeline, stdout io.Writer, keeps string,
	poll func(context.Context) (T, error), show func(elapsed time.Duration, v T)) error {
	start := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		elapsed := time.Since(start)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := poll(pctx)
		cancel()
		switch {
		case err == nil:
			show(elapsed, v)
		case ctx.Err() == nil:
			fmt.Fprintf(stdout, "%7.0fs  KEDA's scaler: %v%s\n", elapsed.Seconds(), err, keeps)
			tl.Fault("scaler error")
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// stack is the bin/demo -serve child: its own process group, so a Ctrl-C
// reaches only the preview, which then stops it with one SIGTERM (and it
// stops what it started).
type stack struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *stack) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// shippedExport is the OTEL_METRIC_EXPORT_INTERVAL (milliseconds) the
// overlay's webapi Deployment sets, or 0.
func shippedExport(objs []manifests.Object) time.Duration {
	v, _ := manifests.DeploymentEnv(objs, "webapi", "OTEL_METRIC_EXPORT_INTERVAL")
	ms, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// startStack starts bin/demo -serve <overlay> and waits for its SIGNAL
// line; the child's other lines are copied to stdout, indented.
func startStack(ctx context.Context, o options, repo, load string, stdout io.Writer) (*signalSource, *stack, error) {
	demo := filepath.Join(o.bin, "demo")
	if _, err := os.Stat(demo); err != nil {
		return nil, nil, fmt.Errorf("%s is missing: build it with make preview (or go build -o bin/demo ./tools/demo): %w", demo, err)
	}
	args := []string{"-serve", o.overlay, "-bin", o.bin, "-repo", repo, "-logs", filepath.Join(o.bin, "preview-logs")}
	if load == "none" {
		args = append(args, "-load-profile", "none")
	}
	if o.loadFor > 0 {
		args = append(args, "-load-for", o.loadFor.String())
	}
	if o.export > 0 {
		args = append(args, "-export-interval", o.export.String())
	}
	cmd := exec.Command(demo, args...)
	cmd.Dir = repo
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	st := &stack{cmd: cmd, done: make(chan struct{})}
	found := make(chan *signalSource, 1)
	go func() {
		defer close(st.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if js, ok := strings.CutPrefix(line, "SIGNAL "); ok {
				var src signalSource
				if json.Unmarshal([]byte(js), &src) == nil {
					found <- &src
					continue
				}
			}
			if strings.TrimSpace(line) != "" {
				fmt.Fprintf(stdout, "  | %s\n", line)
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case src := <-found:
		return src, st, nil
	case <-st.done:
		return nil, nil, errors.New("the local stack (bin/demo -serve) ended before it was ready; see its lines above")
	case <-ctx.Done():
		st.stop()
		return nil, nil, ctx.Err()
	case <-time.After(2 * time.Minute):
		st.stop()
		return nil, nil, errors.New("the local stack was not ready within 2 minutes")
	}
}

// dummyAWS gives KEDA's AWS scalers (podIdentity aws → the SDK's default
// chain) static dummy credentials and keeps the user's AWS files,
// profiles and endpoint variables out: nothing may reach a real account.
// KEDA reads the process environment, so this sets it.
func dummyAWS(getenv func(string) string) error {
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_CLOUDWATCH",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		if getenv(k) != "" {
			if err := os.Unsetenv(k); err != nil {
				return err
			}
		}
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull} {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

func trim(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}
