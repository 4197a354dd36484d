package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// httpScene drives a k6-like ramp against webapi (virtual users that request
// /weatherforecast and think for 1s, as the seed's load.js did) and prints
// http.server.active_requests, read from webapi's Prometheus endpoint, once
// a second while it rises and falls.
func httpScene(ctx context.Context, st *stack, length time.Duration) error {
	promPort, err := freePort()
	if err != nil {
		return err
	}
	url, _, err := st.serve("webapi", map[string]string{
		"OTEL_METRICS_EXPORTER":         "prometheus",
		"OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
		"OTEL_EXPORTER_PROMETHEUS_PORT": strconv.Itoa(promPort),
	})
	if err != nil {
		return err
	}
	metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", promPort)
	fmt.Fprintf(st.out, "\nwebapi: virtual users ramp 0 → 40 → 0 over %s; KEDA target is 2 active requests per pod\n", length)
	fmt.Fprintf(st.out, "%6s %5s %8s %7s  %s\n", "time", "VUs", "req/s", "active", "http.server.active_requests")

	var served atomic.Int64
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
	for {
		elapsed := time.Since(start)
		for want := target(elapsed); len(users) < want; {
			uctx, cancel := context.WithCancel(ctx)
			users = append(users, cancel)
			wg.Go(func() { virtualUser(uctx, url+"/weatherforecast", &served) })
		}
		for want := target(elapsed); len(users) > want; {
			users[len(users)-1]()
			users = users[:len(users)-1]
		}
		active, err := scrapeGauge(metrics, "http_server_active_requests")
		if err != nil {
			return err
		}
		n := served.Load()
		fmt.Fprintf(st.out, "%5.0fs %5d %8d %7.0f  %s\n", elapsed.Seconds(), len(users), n-last, active, strings.Repeat("█", int(active)))
		last = n
		if elapsed > length+3*time.Second {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func virtualUser(ctx context.Context, url string, served *atomic.Int64) {
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
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
