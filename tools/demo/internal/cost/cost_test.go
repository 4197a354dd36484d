package cost

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestRowsFromCountedCalls(t *testing.T) {
	for _, c := range []struct {
		name    string
		row     Row
		calls   float64
		monthly float64
		billed  string
	}{
		// One PutMetricData per 60 s export per pod (ours) vs one a second (seed 001).
		{"direct ours", CloudWatchDirect("d", 1, 60, 1), 1440, 1440*Month*0.01/1000 + 0.30, "1.44k PutMetricData + 1 metric"},
		{"direct seed", CloudWatchDirect("d", 1, 1, 1), 86400, 86400*Month*0.01/1000 + 0.30, "86.4k PutMetricData + 1 metric"},
		// 1 KB of EMF a minute: 1.41 MB a day, ingestion at $0.50/GB.
		{"emf", EMF("e", 1, 1024, 60), 1440, 1440 * 1024 * Month * 0.50 / (1 << 30), "1.44k PutLogEvents, 1.41 MB ingested"},
		{"emf metric", EMFMetrics("e", 1), 0, 0.30, "1 custom metric"},
		{"getmetricdata", GetMetricData("g", 1, 15), 5760, 5760 * Month * 0.01 / 1000, "5.76k metrics requested"},
		// 5 samples a minute: 7,200 a day at $0.90 per 10M.
		{"amp ingest", AMPIngest("a", 5, 60), 0, 7200 * Month * 0.90 / 10e6, "7.2k samples ingested"},
		{"amp query", AMPQuery("q", 1, 30), 2880, 2880 * Month * 0.10 / 1e9, "2.88k samples processed"},
		// A worker's idle long polls (5 s) and KEDA's GetQueueAttributes (15 s).
		{"sqs idle", SQSCalls("s", "pod", 1, 5, "ReceiveMessage"), 17280, 17280 * Month * 0.40 / 1e6, "17.3k ReceiveMessage"},
		{"keda sqs", SQSCalls("k", "ScaledObject", 1, 15, "GetQueueAttributes"), 5760, 5760 * Month * 0.40 / 1e6, "5.76k GetQueueAttributes"},
		{"seed per message", SQSPerMessages("m", 2, "receive + delete"), 0, 0.80, "2M requests (receive + delete)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if math.Abs(c.row.Calls-c.calls) > 1e-9 {
				t.Errorf("calls/day %v, want %v", c.row.Calls, c.calls)
			}
			if math.Abs(c.row.Monthly-c.monthly) > 1e-12 {
				t.Errorf("$/month %v, want %v", c.row.Monthly, c.monthly)
			}
			if c.row.Billed != c.billed {
				t.Errorf("billed %q, want %q", c.row.Billed, c.billed)
			}
		})
	}
	// Spot values a reader can check by hand: the seed's PutMetricData a
	// second costs ~$26 a pod-month, ours ~$0.74.
	if got := CloudWatchDirect("", 1, 1, 1).Monthly; math.Abs(got-26.58) > 0.01 {
		t.Errorf("seed 001 PutMetricData per pod-month $%.2f, want $26.58", got)
	}
	if got := CloudWatchDirect("", 1, 60, 1).Monthly; math.Abs(got-0.738) > 0.001 {
		t.Errorf("ours per pod-month $%.3f, want $0.738", got)
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	Write(&b, []Row{SQSCalls("KEDA aws-sqs-queue", "ScaledObject", 1, 15, "GetQueueAttributes")}, true)
	want := "| KEDA aws-sqs-queue | ScaledObject | 5.76k | 5.76k GetQueueAttributes | $0.07 |\n"
	if !strings.HasSuffix(b.String(), want) {
		t.Errorf("markdown:\n%s\nwant last line %q", b.String(), want)
	}
}
