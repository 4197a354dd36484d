package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
	"github.com/keda-eks-samples/workloads/tools/demo/internal/cost"
)

// What each signal costs, from calls counted in this run: the demo's own
// scenes (the AMP path of scene 1, the sqsworker queue of scene 2) and
// meters that run beside scenes 2 and 3 — webapi with the CloudWatch-direct
// exporter, webapi → collector (deploy/collector/cloudwatch.yaml) → EMF, and
// an idle sqsworker — each against the local stand-ins, which count what
// arrives. The rates are then scaled to the shipped intervals (60 s
// exports, KEDA's pollingIntervals, a 5 s long poll) and priced with the
// list prices in internal/cost.

// Shipped intervals the counts are scaled to (deploy/kustomize).
const (
	shippedExport       = 60.0 // OTEL_METRIC_EXPORT_INTERVAL=60000 in the sidecar, gateway and cloudwatch-direct overlays
	shippedAMPExport    = 15.0 // OTEL_METRIC_EXPORT_INTERVAL=15000 in the amp overlay (components/amp)
	shippedCWPoll       = 15.0 // pollingInterval of the webapi ScaledObject (CloudWatch triggers)
	shippedSQSPoll      = 15.0 // pollingInterval of the sqsworker ScaledObject
	shippedWait         = 5.0  // sqsworker SQS_WAIT_TIME default, not overridden by the overlay
	meterExportInterval = 6 * time.Second
	meterIdleWait       = 2 * time.Second
)

// measured is what the run counted.
type measured struct {
	mu   sync.Mutex
	amp  *ampCount
	sqs  *sqsCount
	ampQ float64 // AMP poll interval, from the trigger
}

type ampCount struct{ samplesPerExport, samplesPerQuery float64 }

type sqsCount struct {
	messages                              int
	receive, deleteBatch, visibilityBatch int
	pollsByKeda, gqaByKeda                int
}

// ampRun records scene 1's AMP path: samples Prometheus stored per webapi
// export, and samples the trigger's query processed.
func (m *measured) ampRun(amp *ampPath, querySamples float64) error {
	appended, err := promSamplesAppended(amp.prometheus)
	if err != nil {
		return err
	}
	exports, _, err := promQuery(amp.prometheus, `count_over_time(http_server_active_requests{job="webapi"}[1h])`)
	if err != nil || exports == 0 {
		return fmt.Errorf("AMP path: no export of webapi reached Prometheus (%v)", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.amp = &ampCount{samplesPerExport: appended / exports, samplesPerQuery: querySamples}
	m.ampQ = float64(amp.trigger.PollingInterval)
	return nil
}

// meters run beside scenes 2 and 3.
type meters struct {
	cw        *cloudWatch
	idle      *sqsProxy
	namespace string
	started   time.Time
	stop      context.CancelFunc
	wg        sync.WaitGroup
	emfMiss   error
}

// startMeters starts webapi-cw (CloudWatch-direct exporter), webapi-emf →
// collector (cloudwatch.yaml), both exporting every 6 s under one virtual
// user each, and an idle sqsworker on its own queue.
func startMeters(ctx context.Context, st *stack, repo string, emu *emulator) (*meters, error) {
	cw, err := startCloudWatch(st)
	if err != nil {
		return nil, err
	}
	mctx, cancel := context.WithCancel(ctx)
	mt := &meters{cw: cw, namespace: "DemoNamespace", started: time.Now(), stop: cancel}
	aws := map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_EC2_METADATA_DISABLED": "true"}
	interval := fmt.Sprint(meterExportInterval.Milliseconds())
	direct := map[string]string{"OTEL_METRICS_EXPORTER": "cloudwatch", "OTEL_METRIC_EXPORT_INTERVAL": interval,
		"CLOUDWATCH_NAMESPACE": mt.namespace, "AWS_ENDPOINT_URL_CLOUDWATCH": cw.URL, "POD_NAME": "webapi-cw-0"}
	maps.Copy(direct, aws)
	urls := []string{}
	u, _, err := st.serveAs("webapi", "webapi-cw", direct)
	if err != nil {
		return nil, err
	}
	urls = append(urls, u)
	otlp, err := startCollector(st, repo, "otelcol-emf", "cloudwatch.yaml",
		"exporters:\n  awsemf:\n    endpoint: "+cw.URL+"\n", map[string]string{"CLOUDWATCH_NAMESPACE": mt.namespace})
	if err == nil {
		u, _, err = st.serveAs("webapi", "webapi-emf", map[string]string{
			"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
			"OTEL_EXPORTER_OTLP_ENDPOINT": otlp, "OTEL_METRIC_EXPORT_INTERVAL": interval, "OTEL_SERVICE_NAME": "webapi",
			"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"}) // as the sidecar and gateway overlays
		if err != nil {
			return nil, err
		}
		urls = append(urls, u)
	} else {
		mt.emfMiss = err
	}
	for _, u := range urls {
		var served, inFlight atomic.Int64
		mt.wg.Go(func() { virtualUser(mctx, u+"/", &served, &inFlight) })
	}
	// An idle worker, counted by its own proxy.
	if mt.idle, err = startSQSProxy(st, emu.env["AWS_ENDPOINT_URL_SQS"]); err != nil {
		return nil, err
	}
	q, err := emu.createQueue(ctx, "demo-idle", 5)
	if err != nil {
		return nil, err
	}
	env := mt.idle.env(emu.env)
	env["QUEUE_URL"], env["SQS_WAIT_TIME"] = q, meterIdleWait.String()
	if _, _, err := st.serveAs("sqsworker", "sqsworker-idle", env); err != nil {
		return nil, err
	}
	return mt, nil
}

// rows stops the meters' load and turns every count into the table.
func (mt *meters) rows(ctx context.Context, st *stack, m *measured) ([]cost.Row, error) {
	// At least three exports of each webapi.
	deadline := mt.started.Add(5*meterExportInterval + 10*time.Second)
	for mt.exportsOf("webapi-cw-0") < 3 || (mt.emfMiss == nil && mt.emfRecords() < 3) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("cost meters: too few exports (%d direct, %d EMF) within %s", mt.exportsOf("webapi-cw-0"), mt.emfRecords(), time.Since(mt.started).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	mt.stop()
	mt.wg.Wait()
	elapsed := time.Since(mt.started).Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	var rows []cost.Row
	fmt.Fprintf(st.out, "\nwhat each signal costs — calls counted in this run, scaled to the shipped intervals, us-east-1 list prices of %s (tools/demo/internal/cost)\n", cost.PricesRead)

	puts := float64(mt.cw.calls.get("PutMetricData")) / float64(mt.exportsOf("webapi-cw-0"))
	fmt.Fprintf(st.out, "  counted: CloudWatch-direct %d PutMetricData for %d exports;", mt.cw.calls.get("PutMetricData"), mt.exportsOf("webapi-cw-0"))
	rows = append(rows,
		cost.CloudWatchDirect("CloudWatch-direct (ours, 1/60 s)", puts, shippedExport, 1),
		cost.CloudWatchDirect("CloudWatch-direct (seed 001, 1/s)", 1, 1, 1))
	if mt.emfMiss == nil {
		// awsemf flushes once an export: one PutLogEvents carries the
		// export's records, one per metric (2 as shipped).
		recs, bytes, metrics := mt.emf()
		puts := mt.cw.calls.get("PutLogEvents")
		fmt.Fprintf(st.out, " EMF %d PutLogEvents (accepted, one an export), %d records, %d bytes;", puts, recs, bytes)
		rows = append(rows,
			cost.EMF("collector → CloudWatch EMF", 1, float64(bytes)/float64(puts), shippedExport),
			cost.EMFMetrics("EMF custom metric(s)", float64(metrics)))
	} else {
		fmt.Fprintf(st.out, " EMF not measured (%v);", mt.emfMiss)
	}
	// Not counted here: KEDA's aws-cloudwatch scaler makes one GetMetricData
	// for one metric a poll (pkg/scalers/aws_cloudwatch_scaler.go).
	rows = append(rows, cost.GetMetricData("KEDA aws-cloudwatch GetMetricData", 1, shippedCWPoll))
	if a := m.amp; a != nil {
		fmt.Fprintf(st.out, " AMP %.0f samples per export, %.0f per query;", a.samplesPerExport, a.samplesPerQuery)
		rows = append(rows,
			cost.AMPIngest("collector → AMP remote write (1/15 s)", a.samplesPerExport, shippedAMPExport),
			cost.AMPQuery("KEDA prometheus query (1 pod)", a.samplesPerQuery, m.ampQ))
	}
	idle := float64(mt.idle.calls.get("ReceiveMessage")) / (elapsed / meterIdleWait.Seconds())
	fmt.Fprintf(st.out, " idle sqsworker %d ReceiveMessage in %.0f s (%.2f per %s long poll)", mt.idle.calls.get("ReceiveMessage"), elapsed, idle, meterIdleWait)
	rows = append(rows, cost.SQSCalls("sqsworker idle long polls", "pod", idle, shippedWait, "ReceiveMessage"))
	if s := m.sqs; s != nil && s.messages > 0 {
		perMsg := float64(s.receive+s.deleteBatch+s.visibilityBatch) / float64(s.messages)
		fmt.Fprintf(st.out, "; sqsworker %d messages: %d ReceiveMessage, %d DeleteMessageBatch, %d ChangeMessageVisibilityBatch; KEDA %d GetQueueAttributes in %d polls",
			s.messages, s.receive, s.deleteBatch, s.visibilityBatch, s.gqaByKeda, s.pollsByKeda)
		rows = append(rows,
			cost.SQSPerMessages("sqsworker (ours, demo workers of 5)", perMsg, fmt.Sprintf("%.2f a message", perMsg)),
			cost.SQSPerMessages("seed 004 consumer", 2, "1 receive + 1 delete a message"),
			cost.SQSCalls("KEDA aws-sqs-queue", "ScaledObject", float64(s.gqaByKeda)/float64(s.pollsByKeda), shippedSQSPoll, "GetQueueAttributes"))
	}
	fmt.Fprintln(st.out)
	cost.Write(st.out, rows, false)
	return rows, nil
}

// exportsOf is how many datapoints webapi's exporter put for a pod.
func (mt *meters) exportsOf(host string) int {
	n := 0
	for _, d := range mt.cw.Datapoints() {
		if d.Dimensions["Host"] == host && d.Namespace == mt.namespace && d.MetricName == "RequestPerSecond" {
			n++
		}
	}
	return n
}

func (mt *meters) emfRecords() int { n, _, _ := mt.emf(); return n }

// emf is the EMF records that arrived, their size as CloudWatch Logs
// meters it (UTF-8 message + 26 bytes an event), and the distinct metrics
// (namespace, name, dimension set) they carry.
func (mt *meters) emf() (records, bytes, metrics int) {
	for _, ev := range mt.cw.LogEvents() {
		if ev.EMF {
			records++
			bytes += len(ev.Message) + 26
		}
	}
	distinct := map[string]bool{}
	for _, d := range mt.cw.Datapoints() {
		if d.Source == cwstandin.SourceEMF {
			keys := slices.Sorted(maps.Keys(d.Dimensions))
			distinct[fmt.Sprint(d.Namespace, d.MetricName, keys)] = true
		}
	}
	return records, bytes, len(distinct)
}

// close stops the meters' load (their processes and servers stop with
// the stack).
func (mt *meters) close() {
	mt.stop()
	mt.wg.Wait()
}

// writeCostTable saves the table as Markdown (the README's table is this
// file, from a run of make demo).
func writeCostTable(st *stack, path string, rows []cost.Row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "Computed by `make demo` on %s (prices read %s).\n\n", time.Now().UTC().Format(time.DateOnly), cost.PricesRead)
	cost.Write(f, rows, true)
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(st.out, "  (as Markdown: %s)\n", path)
	return nil
}
