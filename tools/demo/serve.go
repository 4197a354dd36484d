package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keda-eks-samples/workloads/tools/loadgen"
)

// serve mode (-serve <overlay>): start only the local signal source of one
// overlay — the same components the scenes use — print where it is as one
// SIGNAL line of JSON for `make preview` (tools/kedasim/cmd/preview), drive
// the overlay's built-in load profile unless told not to, and run until ctx
// ends.

// signalLine prefixes the one machine-readable line serve prints.
const signalLine = "SIGNAL "

// signalSource is where an overlay's local signal can be read and driven.
type signalSource struct {
	Overlay     string `json:"overlay"`
	BaseURL     string `json:"base_url,omitempty"`     // webapi or sqsworker: what make load points at
	Prometheus  string `json:"prometheus,omitempty"`   // amp: KEDA's serverAddress
	CloudWatch  string `json:"cloudwatch,omitempty"`   // sidecar, gateway, cloudwatch-direct: KEDA's awsEndpoint
	SQSEndpoint string `json:"sqs_endpoint,omitempty"` // sqs-worker, video-encoder: KEDA's awsEndpoint
	QueueURL    string `json:"queue_url,omitempty"`    // KEDA's queueURL
	Analyzer    string `json:"result_analyzer,omitempty"`
	Profile     string `json:"load_profile,omitempty"` // the built-in profile that fits (loadtest/profiles.json)
	Script      string `json:"k6_script,omitempty"`    // the k6 script that fits (make load)
	// Env is what a job (video-encoder) needs to reach the emulator.
	Env map[string]string `json:"env,omitempty"`
}

// serveOptions are serve mode's flags.
type serveOptions struct {
	overlay  string
	load     string        // auto (the overlay's profile), none, or a profile name
	loadFor  time.Duration // stop the load after this (0: the profile's own length)
	export   time.Duration // webapi's metric export interval (0: as shipped, 60 s)
	messages int           // video-encoder: requests the producer enqueues
}

func serve(ctx context.Context, st *stack, repo string, o serveOptions) error {
	src := signalSource{Overlay: o.overlay}
	export := "60000" // OTEL_METRIC_EXPORT_INTERVAL in every HTTP overlay
	if o.export > 0 {
		export = strconv.FormatInt(o.export.Milliseconds(), 10)
	}
	switch o.overlay {
	case "amp":
		amp, err := startAMPPath(st, repo)
		if err != nil {
			return err
		}
		src.Prometheus, src.Profile, src.Script = amp.prometheus, "inflight", "loadtest/inflight.js"
		if src.BaseURL, _, err = st.serve("webapi", map[string]string{
			"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
			"OTEL_EXPORTER_OTLP_ENDPOINT": amp.otlp, "OTEL_METRIC_EXPORT_INTERVAL": export,
			"OTEL_SERVICE_NAME": "webapi", "OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=webapi-0",
		}); err != nil {
			return err
		}
	case "sidecar", "gateway", "cloudwatch-direct":
		ns, err := param(repo, "CLOUDWATCH_NAMESPACE")
		if err != nil {
			return err
		}
		cw, err := startCloudWatch(st)
		if err != nil {
			return err
		}
		src.CloudWatch = cw.URL
		env := map[string]string{"OTEL_METRIC_EXPORT_INTERVAL": export, "OTEL_SERVICE_NAME": "webapi"}
		if o.overlay == "cloudwatch-direct" {
			src.Profile, src.Script = "rps", "loadtest/rps.js"
			for k, v := range map[string]string{"OTEL_METRICS_EXPORTER": "cloudwatch", "CLOUDWATCH_NAMESPACE": ns,
				"AWS_ENDPOINT_URL_CLOUDWATCH": cw.URL, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "demo",
				"AWS_SECRET_ACCESS_KEY": "demo", "AWS_EC2_METADATA_DISABLED": "true", "POD_NAME": "webapi-0"} {
				env[k] = v
			}
		} else {
			src.Profile, src.Script = "inflight", "loadtest/inflight.js"
			otlp, err := startCollector(st, repo, "otelcol-"+o.overlay, "cloudwatch.yaml",
				"exporters:\n  awsemf:\n    endpoint: "+cw.URL+"\n", map[string]string{"CLOUDWATCH_NAMESPACE": ns})
			if err != nil {
				return err
			}
			env["OTEL_METRICS_EXPORTER"], env["OTEL_EXPORTER_OTLP_PROTOCOL"], env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "otlp", "http/protobuf", otlp
			// As components/collector-sidecar and collector-gateway set it:
			// busy seconds reach cloudwatch.yaml as deltas.
			env["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"] = "delta"
		}
		if src.BaseURL, _, err = st.serve("webapi", env); err != nil {
			return err
		}
	case "sqs-worker", "video-encoder":
		emu, err := startEmulator(ctx, st, repo)
		if err != nil {
			return err
		}
		src.SQSEndpoint = emu.env["AWS_ENDPOINT_URL_SQS"]
		if src.QueueURL, err = emu.createQueue(ctx, "preview-"+o.overlay, 3); err != nil {
			return err
		}
		src.Env = map[string]string{"QUEUE_URL": src.QueueURL}
		maps.Copy(src.Env, emu.env)
		if o.overlay == "sqs-worker" {
			src.Profile, src.Script = "send", "loadtest/send.js"
			if src.BaseURL, _, err = st.serve("sqsworker", maps.Clone(src.Env)); err != nil {
				return err
			}
		} else {
			analyzer, p, err := st.serve("resultanalyzer", map[string]string{})
			if err != nil {
				return err
			}
			p.backing = true
			src.Analyzer = analyzer
			src.Env["RESULT_ANALYZER_URL"] = analyzer
		}
	default:
		return fmt.Errorf("-serve %q: want one of sidecar, gateway, cloudwatch-direct, amp, sqs-worker, video-encoder", o.overlay)
	}
	b, err := json.Marshal(src)
	if err != nil {
		return err
	}
	fmt.Fprintf(st.out, "%s%s\n", signalLine, b)

	if o.overlay == "video-encoder" && o.load != "none" {
		env := maps.Clone(src.Env)
		env["NUM_MESSAGES"] = strconv.Itoa(o.messages)
		out, err := st.runJob(ctx, "producer", "producer", env)
		if err != nil {
			return err
		}
		fmt.Fprintf(st.out, "load: producer: %s\n", strings.Join(out, "; "))
	} else if o.load != "none" {
		name := o.load
		if name == "auto" {
			name = src.Profile
		}
		if err := driveLoad(ctx, st, repo, name, src.BaseURL, o.loadFor); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// driveLoad runs a profile of loadtest/profiles.json from Go (tools/loadgen)
// against base in the background, for at most loadFor when set.
func driveLoad(ctx context.Context, st *stack, repo, name, base string, loadFor time.Duration) error {
	ps, err := loadgen.LoadProfiles(filepath.Join(repo, loadgen.ProfilesFile))
	if err != nil {
		return err
	}
	p, ok := ps[name]
	if !ok {
		return fmt.Errorf("load profile %q: want one of %v", name, ps.Names())
	}
	lctx := ctx
	length := "its own length"
	if loadFor > 0 {
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, loadFor)
		context.AfterFunc(ctx, cancel)
		length = loadFor.String()
	}
	fmt.Fprintf(st.out, "load: built-in profile %q (loadtest/profiles.json) against %s for %s\n", name, base, length)
	go func() {
		res, err := loadgen.Runner{BaseURL: base}.Run(lctx, p)
		if err != nil {
			fmt.Fprintf(st.out, "load: %v\n", err)
			return
		}
		if ctx.Err() == nil {
			fmt.Fprintf(st.out, "load: profile %q done, %d requests\n", name, res.Count(""))
		}
	}()
	return nil
}

// param reads one value of deploy/kustomize/params/params.env.
func param(repo, name string) (string, error) {
	path := filepath.Join(repo, "deploy", "kustomize", "params", "params.env")
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), name+"="); ok {
			return v, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: no %s", path, name)
}
