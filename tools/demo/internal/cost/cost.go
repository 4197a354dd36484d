// Package cost turns API calls counted in a run into calls per day and
// list-price dollars per month for each scaling signal of the samples. The
// AWS prices are written once, below, with the date they were read and
// where; everything else is arithmetic on what a run measured.
package cost

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// AWS list prices, us-east-1, as published on the pages named beside each
// one and read on PricesRead. First tier only: the samples stay far below
// the next one. Free tiers (1M SQS requests, 1M CloudWatch API requests,
// 5 GB of logs, 40M AMP samples a month per account) are not subtracted:
// they are shared by everything in the account.
const (
	PricesRead = "2026-11-30"

	// https://aws.amazon.com/cloudwatch/pricing/ (Metrics): custom metric,
	// first 10,000 metrics, per metric-month (prorated by the hour).
	CloudWatchMetricMonth = 0.30
	// https://aws.amazon.com/cloudwatch/pricing/ (API): PutMetricData,
	// $0.01 per 1,000 requests; GetMetricData $0.01 per 1,000 metrics requested.
	CloudWatchPerRequest = 0.01 / 1000
	// https://aws.amazon.com/cloudwatch/pricing/ (Logs): ingestion
	// (standard log class), per GB. EMF is billed as logs, plus its metrics.
	LogsIngestionPerGB = 0.50
	// https://aws.amazon.com/prometheus/pricing/: metric samples ingested,
	// first 2 billion, $0.90 per 10 million.
	AMPPerSampleIngested = 0.90 / 10e6
	// https://aws.amazon.com/prometheus/pricing/: query samples processed,
	// $0.10 per billion.
	AMPPerSampleQueried = 0.10 / 1e9
	// https://aws.amazon.com/sqs/pricing/: standard queue requests after the
	// free tier, $0.40 per million (a request is up to 64 KB of payload).
	SQSPerRequest = 0.40 / 1e6
)

// Month is AWS's billing month, 730 hours, in days.
const Month = 730.0 / 24

// Day in seconds.
const Day = 86400.0

// Row is one line of the table: who makes the calls, how many a day, what
// is billed and what that costs a month.
type Row struct {
	Signal  string  // e.g. "CloudWatch-direct (ours)"
	Per     string  // "pod", "ScaledObject", "deployment", "1M messages"
	Calls   float64 // API calls per day (per Per); 0 when not per day
	Billed  string  // what the price applies to, per day
	Monthly float64 // dollars per month
	Note    string  // where the numbers come from
}

// PerDay scales a count measured over one period to a day of such
// periods: count per period × periods in a day.
func PerDay(countPerPeriod, periodSeconds float64) float64 {
	if periodSeconds <= 0 {
		return 0
	}
	return countPerPeriod * Day / periodSeconds
}

// CloudWatchDirect is webapi's exporter: putsPerExport PutMetricData calls
// (measured) each exportSeconds, and metrics custom metrics per pod (one
// RequestPerSecond series, dimension Host = pod).
func CloudWatchDirect(signal string, putsPerExport, exportSeconds, metrics float64) Row {
	calls := PerDay(putsPerExport, exportSeconds)
	return Row{Signal: signal, Per: "pod", Calls: calls,
		Billed:  fmt.Sprintf("%s PutMetricData + %g metric", count(calls), metrics),
		Monthly: calls*Month*CloudWatchPerRequest + metrics*CloudWatchMetricMonth}
}

// EMF is the collector's awsemf exporter for one pod's exports:
// putsPerExport PutLogEvents calls and bytesPerExport bytes of log events
// each exportSeconds (PutLogEvents itself is not billed; ingestion is).
// The custom metric charge is per metric, not per pod: see EMFMetrics.
func EMF(signal string, putsPerExport, bytesPerExport, exportSeconds float64) Row {
	calls := PerDay(putsPerExport, exportSeconds)
	bytes := PerDay(bytesPerExport, exportSeconds)
	return Row{Signal: signal, Per: "pod", Calls: calls,
		Billed:  fmt.Sprintf("%s PutLogEvents, %s ingested", count(calls), size(bytes)),
		Monthly: bytes * Month * LogsIngestionPerGB / (1 << 30)}
}

// EMFMetrics is the custom metric charge of metrics EMF metrics (one
// dimension set each), whatever the number of pods.
func EMFMetrics(signal string, metrics float64) Row {
	return Row{Signal: signal, Per: "deployment",
		Billed:  fmt.Sprintf("%g custom metric", metrics),
		Monthly: metrics * CloudWatchMetricMonth}
}

// GetMetricData is KEDA's aws-cloudwatch trigger: one call for metrics
// metrics each pollSeconds.
func GetMetricData(signal string, metrics, pollSeconds float64) Row {
	calls := PerDay(1, pollSeconds)
	return Row{Signal: signal, Per: "ScaledObject", Calls: calls,
		Billed:  fmt.Sprintf("%s metrics requested", count(calls*metrics)),
		Monthly: calls * metrics * Month * CloudWatchPerRequest}
}

// AMPIngest is samplesPerExport samples remote-written each exportSeconds
// for one pod.
func AMPIngest(signal string, samplesPerExport, exportSeconds float64) Row {
	samples := PerDay(samplesPerExport, exportSeconds)
	return Row{Signal: signal, Per: "pod",
		Billed:  fmt.Sprintf("%s samples ingested", count(samples)),
		Monthly: samples * Month * AMPPerSampleIngested}
}

// AMPQuery is KEDA's prometheus trigger: one query processing
// samplesPerQuery samples each pollSeconds.
func AMPQuery(signal string, samplesPerQuery, pollSeconds float64) Row {
	calls := PerDay(1, pollSeconds)
	return Row{Signal: signal, Per: "ScaledObject", Calls: calls,
		Billed:  fmt.Sprintf("%s samples processed", count(calls*samplesPerQuery)),
		Monthly: calls * samplesPerQuery * Month * AMPPerSampleQueried}
}

// SQSCalls is callsPerPeriod SQS requests each periodSeconds (a worker's
// idle long polls, KEDA's GetQueueAttributes per pollingInterval).
func SQSCalls(signal, per string, callsPerPeriod, periodSeconds float64, what string) Row {
	calls := PerDay(callsPerPeriod, periodSeconds)
	return Row{Signal: signal, Per: per, Calls: calls,
		Billed:  fmt.Sprintf("%s %s", count(calls), what),
		Monthly: calls * Month * SQSPerRequest}
}

// SQSPerMessages is the requests a consumer makes for a million messages
// when it makes callsPerMessage per message (receive, delete, visibility),
// in dollars for that million (not per month).
func SQSPerMessages(signal string, callsPerMessage float64, what string) Row {
	calls := callsPerMessage * 1e6
	return Row{Signal: signal, Per: "1M messages",
		Billed:  fmt.Sprintf("%s requests (%s)", count(calls), what),
		Monthly: calls * SQSPerRequest}
}

// Write prints rows as a fixed-width table; markdown makes it a Markdown
// table instead (the README's).
func Write(w io.Writer, rows []Row, markdown bool) {
	if markdown {
		fmt.Fprintln(w, "| signal | per | API calls / day | billed / day | $ / month |")
		fmt.Fprintln(w, "|---|---|---:|---|---:|")
		for _, r := range rows {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.Signal, r.Per, calls(r), r.Billed, dollars(r))
		}
		return
	}
	fmt.Fprintf(w, "  %-36s %-13s %10s  %-46s %s\n", "signal", "per", "calls/day", "billed per day", "$/month")
	for _, r := range rows {
		fmt.Fprintf(w, "  %-36s %-13s %10s  %-46s %s\n", r.Signal, r.Per, calls(r), r.Billed, dollars(r))
	}
}

func calls(r Row) string {
	if r.Calls == 0 {
		return "–"
	}
	return count(r.Calls)
}

func dollars(r Row) string {
	s := fmt.Sprintf("$%.2f", r.Monthly)
	if r.Monthly > 0 && r.Monthly < 0.005 {
		s = fmt.Sprintf("$%.4f", r.Monthly)
	}
	if r.Per == "1M messages" {
		s += " per 1M msgs"
	}
	return s
}

// count is n rounded to 3 significant digits with a k/M/B suffix.
func count(n float64) string {
	for _, u := range []struct {
		div float64
		suf string
	}{{1e9, "B"}, {1e6, "M"}, {1e3, "k"}} {
		if math.Abs(n) >= u.div {
			return trim(n/u.div) + u.suf
		}
	}
	return trim(n)
}

func size(b float64) string {
	for _, u := range []struct {
		div float64
		suf string
	}{{1 << 30, " GB"}, {1 << 20, " MB"}, {1 << 10, " KB"}} {
		if b >= u.div {
			return trim(b/u.div) + u.suf
		}
	}
	return trim(b) + " B"
}

// trim formats with 3 significant digits, no trailing zeros.
func trim(v float64) string {
	s := fmt.Sprintf("%.3g", v)
	if strings.Contains(s, "e") {
		s = fmt.Sprintf("%.0f", v)
	}
	return s
}
