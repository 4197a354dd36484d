package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

// The signal paths' local components: Prometheus (the stand-in for Amazon
// Managed Prometheus), our collector running a shipped config with a
// loopback override, the CloudWatch stand-in, and a counting proxy in front
// of the SQS emulator. Each says what is missing, and how to get it, when it
// cannot start.

// missing is a component the demo cannot run here: what it is and how to
// get it. The demo carries on without that part.
type missing struct{ what, how string }

func (m *missing) Error() string { return m.what + " is missing: " + m.how }

// startPrometheus runs the prometheus on PATH (Debian's package) with its
// remote-write receiver on, on a free loopback port, storing under logs.
func startPrometheus(st *stack) (string, error) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return "", &missing{"prometheus (the Amazon Managed Prometheus stand-in)", "sudo apt-get install -y prometheus (Debian/Ubuntu), or put a prometheus 2.x binary on PATH"}
	}
	ports, err := localproc.FreePorts(1)
	if err != nil {
		return "", err
	}
	port := ports[0]
	dir := filepath.Join(st.logs, "prometheus")
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte("# no scrape jobs: samples arrive by remote write only\nglobal: {}\n"), 0o644); err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--web.enable-remote-write-receiver", "--log.level=warn")
	p, err := st.startCmd("prometheus", cmd, map[string]string{"HOME": dir})
	if err != nil {
		return "", err
	}
	p.backing = true
	base := "http://" + addr
	if err := localproc.WaitOK(context.Background(), nil, base+"/-/ready", 30*time.Second, p.Done()); err != nil {
		return "", fmt.Errorf("prometheus: %w (see %s/prometheus.log)", err, st.logs)
	}
	fmt.Fprintf(st.out, "started %-15s %s (Amazon Managed Prometheus stand-in)\n", "prometheus", base)
	return base, nil
}

// startCollector runs bin/otelcol (make collector) on the shipped
// deploy/collector/<config> with its listeners on free loopback ports and
// extra (YAML: the exporters' loopback endpoints) added, set up by
// localproc.NewCollector as the collector's and the deploy tree's tests set
// it up. It returns the OTLP/HTTP endpoint.
func startCollector(st *stack, repo, name, config, extra string, env map[string]string) (string, error) {
	bin, err := otelcolBin(st)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(st.logs, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	c, err := localproc.NewCollector(dir, []string{filepath.Join(repo, "deploy", "collector", config)}, extra, env)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, c.Args...)
	cmd.Env = c.Env
	p, err := st.startCmd(name, cmd, nil)
	if err != nil {
		return "", err
	}
	p.backing = true // webapi flushes its last export to it on SIGTERM
	if err := localproc.WaitOK(context.Background(), nil, c.Health, 60*time.Second, p.Done()); err != nil {
		return "", fmt.Errorf("%s: %w (see %s/%s.log)", name, err, st.logs, name)
	}
	url := "http://" + c.OTLPHTTP
	fmt.Fprintf(st.out, "started %-15s %s (OTLP/HTTP; deploy/collector/%s)\n", name, url, config)
	return url, nil
}

// otelcolBin is bin/otelcol, or a *missing error saying how to build it.
func otelcolBin(st *stack) (string, error) {
	bin := filepath.Join(st.bin, "otelcol")
	if _, err := os.Stat(bin); err != nil {
		return "", &missing{"bin/otelcol (our collector)", "make collector (builds tools/collector; its first build takes minutes)"}
	}
	return bin, nil
}

// cloudWatch is the loopback CloudWatch stand-in (pkg/cwstandin),
// served by the demo itself.
type cloudWatch struct {
	*cwstandin.Handler
	URL   string
	calls counter // by operation: PutMetricData, PutLogEvents, ...
	srv   *http.Server
}

func startCloudWatch(st *stack) (*cloudWatch, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cw := &cloudWatch{URL: "http://" + ln.Addr().String()}
	cw.Handler = cwstandin.NewHandler(func(err error) {
		fmt.Fprintf(st.out, "  CloudWatch stand-in: %v\n", err)
	})
	cw.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "Logs_20140328.") // CloudWatch Logs
		if op == "" {
			op = r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:] // CloudWatch, RPC v2 CBOR
		}
		rec := localproc.NewStatusRecorder(w)
		cw.Handler.ServeHTTP(rec, r)
		if rec.Status == http.StatusOK { // accepted calls: awsemf's first PutLogEvents fails until it creates its stream
			cw.calls.add(op)
		}
	})}
	go func() { _ = cw.srv.Serve(ln) }()
	st.atExit(func() { _ = cw.srv.Close() })
	fmt.Fprintf(st.out, "started %-15s %s (CloudWatch test stand-in, in the demo)\n", "cloudwatch", cw.URL)
	return cw, nil
}

// counter counts what passes by name.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
}

func (c *counter) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// sqsProxy forwards to the SQS emulator and counts each call by operation
// (X-Amz-Target: AmazonSQS.<Op>, the AWS JSON 1.0 protocol): what SQS
// would bill the processes pointed at it.
type sqsProxy struct {
	Endpoint string
	calls    counter
	srv      *http.Server
}

// startSQSProxy starts a proxy that st closes once its processes stopped.
func startSQSProxy(st *stack, emulator string) (*sqsProxy, error) {
	target, err := url.Parse(emulator)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &sqsProxy{Endpoint: "http://" + ln.Addr().String()}
	forward := httputil.NewSingleHostReverseProxy(target)
	forward.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) {
		w.WriteHeader(http.StatusBadGateway) // a worker gave up a long poll as it stopped
	}
	p.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.add(strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS."))
		forward.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	st.atExit(func() { _ = p.srv.Close() })
	return p, nil
}

// env is emulator env with the SQS endpoint pointed at the proxy.
func (p *sqsProxy) env(base map[string]string) map[string]string {
	e := maps.Clone(base)
	e["AWS_ENDPOINT_URL_SQS"] = p.Endpoint
	return e
}

// ampTrigger is what the amp overlay's prometheus trigger ships
// (deploy/kustomize/components/trigger-prometheus-amp, on the webapi
// ScaledObject of components/scaledobject-webapi).
type ampTrigger struct {
	Query, MetricType string
	Threshold         float64
	PollingInterval   int
	Min, Max          int
}

// readAMPTrigger reads the trigger from the shipped files: the JSON 6902
// patch that adds it and the ScaledObject it patches.
func readAMPTrigger(repo string) (ampTrigger, error) {
	var tr ampTrigger
	comp := filepath.Join(repo, "deploy", "kustomize", "components")
	var so struct {
		Spec struct {
			PollingInterval int `yaml:"pollingInterval"`
			Min             int `yaml:"minReplicaCount"`
			Max             int `yaml:"maxReplicaCount"`
		}
	}
	if err := readYAML(filepath.Join(comp, "scaledobject-webapi", "scaledobject.yaml"), &so); err != nil {
		return tr, err
	}
	tr.PollingInterval, tr.Min, tr.Max = so.Spec.PollingInterval, so.Spec.Min, so.Spec.Max
	var ops []struct {
		Op, Path string
		Value    yaml.Node
	}
	file := filepath.Join(comp, "trigger-prometheus-amp", "trigger.yaml")
	if err := readYAML(file, &ops); err != nil {
		return tr, err
	}
	for _, op := range ops {
		switch op.Path {
		case "/spec/pollingInterval":
			if err := op.Value.Decode(&tr.PollingInterval); err != nil {
				return tr, fmt.Errorf("%s: pollingInterval: %w", file, err)
			}
		case "/spec/triggers":
			var triggers []struct {
				Type       string
				MetricType string `yaml:"metricType"`
				Metadata   map[string]string
			}
			if err := op.Value.Decode(&triggers); err != nil {
				return tr, fmt.Errorf("%s: triggers: %w", file, err)
			}
			for _, t := range triggers {
				if t.Type != "prometheus" {
					continue
				}
				tr.Query, tr.MetricType = t.Metadata["query"], t.MetricType
				th, err := strconv.ParseFloat(t.Metadata["threshold"], 64)
				if err != nil {
					return tr, fmt.Errorf("%s: threshold %q: %w", file, t.Metadata["threshold"], err)
				}
				tr.Threshold = th
			}
		}
	}
	if tr.Query == "" || tr.Threshold <= 0 || tr.Max < tr.Min {
		return tr, fmt.Errorf("%s: no prometheus trigger with a query and a threshold (read %+v)", file, tr)
	}
	if tr.MetricType == "" {
		tr.MetricType = "AverageValue" // KEDA's default
	}
	return tr, nil
}

// replicas is what the HPA asks for with this trigger's AverageValue
// target: ceil(value / threshold) within min..max (a Value target would
// multiply by the current count; the amp trigger ships AverageValue).
func (tr ampTrigger) replicas(value float64) int {
	n := int(value / tr.Threshold)
	if float64(n)*tr.Threshold < value {
		n++
	}
	return max(tr.Min, min(n, tr.Max))
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// promQuery runs an instant query and returns its one value (0 for an
// empty result, as KEDA's ignoreNullValues does) and the samples Prometheus
// processed for it (what AMP bills as query samples processed).
func promQuery(base, query string) (value, samples float64, err error) {
	resp, err := http.Get(base + "/api/v1/query?stats=all&query=" + url.QueryEscape(query))
	if err != nil {
		return 0, 0, fmt.Errorf("query %s: %w", query, err)
	}
	defer resp.Body.Close()
	var out struct {
		Status, Error string
		Data          struct {
			Result []struct {
				Value [2]any
			}
			Stats struct {
				Samples struct {
					TotalQueryableSamples float64 `json:"totalQueryableSamples"`
				}
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, 0, fmt.Errorf("query %s: %w", query, err)
	}
	if out.Status != "success" {
		return 0, 0, fmt.Errorf("query %s: %s", query, out.Error)
	}
	samples = out.Data.Stats.Samples.TotalQueryableSamples
	switch len(out.Data.Result) {
	case 0:
		return 0, samples, nil
	case 1:
		s, _ := out.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, samples, err
	}
	return 0, samples, errors.New("query " + query + " returned more than one element (KEDA rejects that)")
}

// promSamplesAppended is how many samples Prometheus has stored (what
// remote write brought: the demo's Prometheus scrapes nothing).
func promSamplesAppended(base string) (float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "prometheus_tsdb_head_samples_appended_total") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err == nil {
				sum += v
			}
		}
	}
	return sum, sc.Err()
}
