package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

// ampPath is scene 1's AMP signal path when its components are here:
// webapi's OTLP → our collector on the shipped deploy/collector/amp.yaml →
// Prometheus's remote-write receiver, queried with the amp trigger's query.
type ampPath struct {
	prometheus, otlp string
	trigger          ampTrigger
}

// startAMPPath starts Prometheus and the collector; a *missing error says
// which one is not here (scene 1 then shows webapi's own count only).
func startAMPPath(st *stack, repo string) (*ampPath, error) {
	tr, err := readAMPTrigger(repo)
	if err != nil {
		return nil, err
	}
	if _, err := otelcolBin(st); err != nil {
		return nil, err
	}
	prom, err := startPrometheus(st)
	if err != nil {
		return nil, err
	}
	otlp, err := startCollector(st, repo, "otelcol-amp", "amp.yaml", "", map[string]string{
		"AMP_REMOTE_WRITE_URL": prom + "/api/v1/write"})
	if err != nil {
		return nil, err
	}
	return &ampPath{prometheus: prom, otlp: otlp, trigger: tr}, nil
}

// httpScene drives a k6-like ramp against webapi (virtual users that request
// /weatherforecast and think for 1s, as the seed's load.js did) and prints,
// once a second while it rises and falls, the requests in flight and — when
// Prometheus and our collector are here — the amp trigger's own query on
// what reached Prometheus through the collector, and the replicas it
// implies. Without them it prints http.server.active_requests from webapi's
// Prometheus endpoint.
func httpScene(ctx context.Context, st *stack, repo string, length time.Duration, m *measured) error {
	amp, err := startAMPPath(st, repo)
	var miss *missing
	switch {
	case errors.As(err, &miss):
		fmt.Fprintf(st.out, "AMP path skipped: %v\n", err)
		amp = nil
	case err != nil:
		return err
	}
	var env map[string]string
	var metrics string
	if amp != nil {
		// As the amp overlay ships webapi (OTLP, service.name webapi, one
		// instance id per pod), exporting each second instead of each minute.
		env = map[string]string{
			"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
			"OTEL_EXPORTER_OTLP_ENDPOINT": amp.otlp, "OTEL_METRIC_EXPORT_INTERVAL": "1000",
			"OTEL_SERVICE_NAME": "webapi", "OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=webapi-demo-0",
		}
	} else {
		ports, err := localproc.FreePorts(1)
		if err != nil {
			return err
		}
		promPort := ports[0]
		env = map[string]string{"OTEL_METRICS_EXPORTER": "prometheus",
			"OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1", "OTEL_EXPORTER_PROMETHEUS_PORT": strconv.Itoa(promPort)}
		metrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", promPort)
	}
	url, _, err := st.serve("webapi", env)
	if err != nil {
		return err
	}
	fmt.Fprintf(st.out, "\nwebapi: virtual users ramp 0 → 40 → 0 over %s; KEDA target is 2 active requests per pod\n", length)
	if amp != nil {
		tr := amp.trigger
		fmt.Fprintf(st.out, "amp trigger (as shipped): query %s, %s threshold %g, %d-%d replicas, KEDA polls every %ds (here: each second)\n",
			tr.Query, tr.MetricType, tr.Threshold, tr.Min, tr.Max, tr.PollingInterval)
		fmt.Fprintf(st.out, "path: webapi OTLP (1 s export) → collector (deploy/collector/amp.yaml) → Prometheus remote write; AMP lags the load by the export and batch (≤ 6 s)\n")
		fmt.Fprintf(st.out, "%6s %5s %8s %9s %9s %9s  %s\n", "time", "VUs", "req/s", "in flight", "AMP query", "replicas", "in flight")
	} else {
		fmt.Fprintf(st.out, "%6s %5s %8s %7s  %s\n", "time", "VUs", "req/s", "active", "http.server.active_requests")
	}

	var served, inFlight atomic.Int64
	var wg sync.WaitGroup
	var users []context.CancelFunc
	defer func() {
		for _, c := range users {
			c()
		}
		wg.Wait()
	}()
	target := func(elapsed time.Duration) int { // triangle ramp to 40
		f := float64(elapsed) / float64(length)
		if f > 1 {
			return 0
		}
		if f > 0.5 {
			f = 1 - f
		}
		return int(80 * f)
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := int64(0)
	var querySamples float64
	for {
		elapsed := time.Since(start)
		for want := target(elapsed); len(users) < want; {
			uctx, cancel := context.WithCancel(ctx)
			users = append(users, cancel)
			wg.Go(func() { virtualUser(uctx, url+"/weatherforecast", &served, &inFlight) })
		}
		for want := target(elapsed); len(users) > want; {
			users[len(users)-1]()
			users = users[:len(users)-1]
		}
		n := served.Load()
		done := elapsed > length+3*time.Second
		if amp != nil {
			v, samples, err := promQuery(amp.prometheus, amp.trigger.Query)
			if err != nil {
				return err
			}
			querySamples = max(querySamples, samples)
			fl := inFlight.Load()
			fmt.Fprintf(st.out, "%5.0fs %5d %8d %9d %9.0f %9d  %s\n", elapsed.Seconds(), len(users), n-last, fl, v,
				amp.trigger.replicas(v), strings.Repeat("█", int(fl)))
			// Wait for the lagging AMP value to come back to 0 too.
			done = done && (v == 0 || elapsed > length+15*time.Second)
		} else {
			active, err := scrapeGauge(metrics, "http_server_active_requests")
			if err != nil {
				return err
			}
			fmt.Fprintf(st.out, "%5.0fs %5d %8d %7.0f  %s\n", elapsed.Seconds(), len(users), n-last, active, strings.Repeat("█", int(active)))
		}
		last = n
		if done {
			if amp != nil {
				return m.ampRun(amp, querySamples)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func virtualUser(ctx context.Context, url string, served, inFlight *atomic.Int64) {
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		inFlight.Add(1)
		resp, err := http.DefaultClient.Do(req)
		inFlight.Add(-1)
		if err == nil {
			resp.Body.Close()
			served.Add(1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// scrapeGauge sums every series of name in a Prometheus text exposition.
func scrapeGauge(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}
