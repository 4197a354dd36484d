package cwstandin_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
	"github.com/keda-eks-samples/workloads/pkg/testutil/cwtest"
)

// minute is the one-minute bucket the table's data lives in: recent, as
// Metrics Insights only reads the last three hours.
var minute = time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)

// series is one metric (namespace, name, dimensions) and the values
// published for it, one datum each, inside minute.
type series struct {
	ns, name string
	dims     map[string]string
	values   []float64
}

// put publishes s with the real SDK client, one datum per value, spread
// over the first seconds of minute.
func put(t *testing.T, c *cloudwatch.Client, s series, at time.Time) {
	t.Helper()
	var dims []types.Dimension
	for k, v := range s.dims {
		dims = append(dims, types.Dimension{Name: aws.String(k), Value: aws.String(v)})
	}
	data := make([]types.MetricDatum, len(s.values))
	for i, v := range s.values {
		data[i] = types.MetricDatum{
			MetricName: aws.String(s.name), Dimensions: dims, Value: aws.Float64(v),
			Timestamp: aws.Time(at.Add(time.Duration(i) * time.Second)),
		}
	}
	if _, err := c.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String(s.ns), MetricData: data}); err != nil {
		t.Fatalf("PutMetricData %+v: %v", s, err)
	}
}

// insights runs one Metrics Insights query over [start, end) the way KEDA's
// aws-cloudwatch scaler sends it (one query, Id "q1", Period, ScanBy
// TimestampDescending).
func insights(t *testing.T, c *cloudwatch.Client, expr string, start, end time.Time, period int32) (*cloudwatch.GetMetricDataOutput, error) {
	t.Helper()
	return c.GetMetricData(t.Context(), &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(start), EndTime: aws.Time(end), ScanBy: types.ScanByTimestampDescending,
		MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("q1"), Expression: aws.String(expr), Period: aws.Int32(period)}},
	})
}

// The data behind the table: the metrics AWS's Metrics Insights pages query,
// with values chosen so that every documented rule changes the answer.
var insightsData = []series{
	// CPUUtilization as EC2 reports it: per instance (InstanceId only), an
	// instance-type and an Auto Scaling group aggregate, one without
	// dimensions. Instance i-1 has two observations in the minute.
	{"AWS/EC2", "CPUUtilization", map[string]string{"InstanceId": "i-1"}, []float64{10, 30}},
	{"AWS/EC2", "CPUUtilization", map[string]string{"InstanceId": "i-2"}, []float64{50}},
	{"AWS/EC2", "CPUUtilization", map[string]string{"InstanceType": "c3.4xlarge"}, []float64{60}},
	{"AWS/EC2", "CPUUtilization", map[string]string{"AutoScalingGroupName": "my-production-fleet"}, []float64{70}},
	{"AWS/EC2", "CPUUtilization", nil, []float64{90}},
	{"AWS/EC2", "NetworkIn", map[string]string{"InstanceId": "i-1"}, []float64{1000}},
	// RequestCount as an Application Load Balancer reports it: per load
	// balancer and per load balancer and zone (the same requests twice).
	{"AWS/ApplicationELB", "RequestCount", map[string]string{"LoadBalancer": "app/load-balancer-1", "AvailabilityZone": "us-east-1a"}, []float64{100}},
	{"AWS/ApplicationELB", "RequestCount", map[string]string{"LoadBalancer": "app/load-balancer-1", "AvailabilityZone": "us-east-1b"}, []float64{200}},
	{"AWS/ApplicationELB", "RequestCount", map[string]string{"LoadBalancer": "app/load-balancer-2", "AvailabilityZone": "us-east-1a"}, []float64{400}},
	{"AWS/ApplicationELB", "RequestCount", map[string]string{"LoadBalancer": "app/load-balancer-1"}, []float64{300}},
	{"AWS/ApplicationELB", "RequestCount", map[string]string{"LoadBalancer": "app/load-balancer-2"}, []float64{400}},
	// API usage: CallCount with four dimensions.
	{"AWS/Usage", "CallCount", map[string]string{"Class": "None", "Resource": "GetMetricData", "Service": "CloudWatch", "Type": "API"}, []float64{5, 7}},
	{"AWS/Usage", "CallCount", map[string]string{"Class": "None", "Resource": "PutMetricData", "Service": "CloudWatch", "Type": "API"}, []float64{3}},
	{"AWS/Usage", "CallCount", map[string]string{"Class": "None", "Resource": "ReceiveMessage", "Service": "SQS", "Type": "API"}, []float64{9}},
	// Names that need quoting.
	{"Custom", "My.Metric", nil, []float64{4}},
	{"Custom", `Bytes"Input"`, nil, []float64{8, 16}},
	{"Custom", "LIMIT", nil, []float64{2, 3}},
	// Our own triggers' metrics: webapi's RequestPerSecond per pod (two
	// pods, one with two exports in the minute).
	{"KedaSamples/WebApi", "RequestPerSecond", map[string]string{"Host": "pod-a"}, []float64{4, 6}},
	{"KedaSamples/WebApi", "RequestPerSecond", map[string]string{"Host": "pod-b"}, []float64{2}},
}

// TestInsightsQueriesAnswerAsAWSDocumentsThem is a table of query → value.
// The queries are AWS's own examples (pages cited per row); the data is
// insightsData; the expected values are worked by hand from the documented
// rules.
//
// [syntax]: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-metrics-insights-querylanguage.html
// [inference]: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-metrics-insights-inference.html
// [samples]: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-metrics-insights-queryexamples.html
func TestInsightsQueriesAnswerAsAWSDocumentsThem(t *testing.T) {
	cw := cwtest.New(t)
	c := client(t, cw.URL)
	for _, s := range insightsData {
		put(t, c, s, minute.Add(5*time.Second))
	}
	tests := []struct {
		name, expr string
		want       float64
	}{
		// [inference] "SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2",
		// InstanceId) ... each data point returned represents the average
		// of all observations measured within a specific one-minute
		// interval": i-1's 10 and 30 and i-2's 50 → 90/3 = 30 (a mean of
		// the per-instance means would be 35).
		{"inference: AVG over SCHEMA(ns, InstanceId) pools observations", `SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId)`, 30},
		// [syntax] FROM "AWS/EC2" "matches all CPUUtilization metrics in
		// the AWS/EC2 namespace, no matter their dimensions": 10, 30, 50,
		// 60, 70, 90 → 310/6.
		{"syntax: plain FROM matches every dimension set", `SELECT AVG(CPUUtilization) FROM "AWS/EC2"`, 310.0 / 6},
		// [syntax] SCHEMA("AWS/EC2") "matches only the CPUUtilization
		// metrics ... that do not have any dimensions defined".
		{"syntax: SCHEMA(ns) matches only the series without dimensions", `SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2")`, 90},
		// [syntax] SCHEMA("AWS/EC2", InstanceId) "matches only the
		// CPUUtilization metrics that were reported ... with exactly one
		// dimension, InstanceId". The functions over its observations 10,
		// 30, 50 ("SUM calculates the sum", "COUNT returns the count", ...).
		{"syntax: SUM", `SELECT SUM(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId)`, 90},
		{"syntax: MIN", `SELECT MIN(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId)`, 10},
		{"syntax: MAX", `SELECT MAX(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId)`, 50},
		{"syntax: COUNT is the number of observations", `SELECT COUNT(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId)`, 3},
		// [syntax] SUM(RequestCount) FROM SCHEMA("AWS/ApplicationELB",
		// LoadBalancer, AvailabilityZone): "exactly two dimensions" →
		// 100 + 200 + 400.
		{"syntax: SCHEMA with two dimensions", `SELECT SUM(RequestCount) FROM SCHEMA("AWS/ApplicationELB", LoadBalancer, AvailabilityZone)`, 700},
		// [syntax] "The order of these label keys does not matter."
		{"syntax: SCHEMA key order does not matter", `SELECT SUM(RequestCount) FROM SCHEMA("AWS/ApplicationELB", AvailabilityZone, LoadBalancer)`, 700},
		// [syntax] "Building a rich query step by step", step 2: WHERE
		// LoadBalancer = 'app/load-balancer-1' → 100 + 200.
		{"syntax: WHERE narrows the SCHEMA", "SELECT SUM(RequestCount)\nFROM SCHEMA(\"AWS/ApplicationELB\", LoadBalancer, AvailabilityZone)\nWHERE LoadBalancer = 'app/load-balancer-1'", 300},
		// [samples] "Total requests across all load balancers":
		// SUM(RequestCount) FROM SCHEMA("AWS/ApplicationELB", LoadBalancer)
		// → the per-load-balancer series only, 300 + 400.
		{"samples: total requests across all load balancers", `SELECT SUM(RequestCount) FROM SCHEMA("AWS/ApplicationELB", LoadBalancer)`, 700},
		// The same metric without SCHEMA counts each request twice: once
		// per dimension set it was published under.
		{"plain FROM counts every dimension set's copy", `SELECT SUM(RequestCount) FROM "AWS/ApplicationELB"`, 1400},
		// [samples] "CloudWatch APIs sorted by calls" without its GROUP BY /
		// ORDER BY (rejected below): WHERE with AND → GetMetricData's 5 and
		// 7, PutMetricData's 3.
		{"samples: WHERE ... AND ... with COUNT", `SELECT COUNT(CallCount) FROM SCHEMA("AWS/Usage", Class, Resource, Service, Type) WHERE Type = 'API' AND Service = 'CloudWatch'`, 3},
		{"samples: WHERE ... AND ... with SUM", `SELECT SUM(CallCount) FROM SCHEMA("AWS/Usage", Class, Resource, Service, Type) WHERE Type = 'API' AND Service = 'CloudWatch'`, 15},
		// [syntax] "SELECT MAX(CPUUtilization) FROM "AWS/EC2" WHERE
		// AutoScalingGroupName = 'my-production-fleet'".
		{"syntax: WHERE on a plain FROM", `SELECT MAX(CPUUtilization) FROM "AWS/EC2" WHERE AutoScalingGroupName = 'my-production-fleet'`, 70},
		// [syntax] "What needs quotation marks or escape characters?":
		// SELECT MAX("My.Metric"); SELECT AVG("Bytes\"Input\""); a metric
		// named LIMIT as SELECT AVG("LIMIT"). Keywords in any case.
		{"syntax: quoted metric name", `SELECT MAX("My.Metric") FROM Custom`, 4},
		{"syntax: escaped quotes", `SELECT AVG("Bytes\"Input\"") FROM Custom`, 12},
		{"syntax: reserved word quoted", `SELECT AVG("LIMIT") FROM Custom`, 2.5},
		{"syntax: keywords are not case sensitive", `select avg("LIMIT") from schema(Custom)`, 2.5},
		// The shipped cloudwatch-direct trigger: pod-a's 4 and 6, pod-b's 2.
		{"cloudwatch-direct trigger", `SELECT AVG(RequestPerSecond) FROM SCHEMA("KedaSamples/WebApi", Host)`, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := insights(t, c, tt.expr, minute, minute.Add(time.Minute), 60)
			if err != nil {
				t.Fatal(err)
			}
			r := out.MetricDataResults
			if len(r) != 1 || len(r[0].Values) != 1 || len(r[0].Timestamps) != 1 {
				t.Fatalf("results %+v, want one with one value", r)
			}
			if got := r[0].Values[0]; !near(got, tt.want) {
				t.Errorf("%s\n= %v, want %v", tt.expr, got, tt.want)
			}
			if !r[0].Timestamps[0].Equal(minute) || r[0].StatusCode != types.StatusCodeComplete || *r[0].Id != "q1" {
				t.Errorf("timestamp %v (want %v), status %q, id %q", r[0].Timestamps[0], minute, r[0].StatusCode, *r[0].Id)
			}
		})
	}
}

func near(a, b float64) bool {
	d := a - b
	return d < 1e-9 && d > -1e-9
}

// validationErrors collects what a Handler reports.
type validationErrors struct {
	mu   sync.Mutex
	errs []error
}

func (v *validationErrors) add(err error) { v.mu.Lock(); v.errs = append(v.errs, err); v.mu.Unlock() }
func (v *validationErrors) take() []error {
	v.mu.Lock()
	defer v.mu.Unlock()
	errs := v.errs
	v.errs = nil
	return errs
}

// TestUnsupportedQueriesAreValidationErrors: what the stand-in does not
// evaluate (or CloudWatch rejects) is a 400 ValidationError naming the
// problem, never an approximate answer.
func TestUnsupportedQueriesAreValidationErrors(t *testing.T) {
	var reported validationErrors
	h := cwstandin.NewHandler(reported.add)
	srv := newServer(t, h)
	c := client(t, srv)
	put(t, c, insightsData[0], minute)
	reported.take()
	tests := []struct{ expr, want string }{
		// [samples] "Top 20 AWS APIs by the number of calls in your account".
		{`SELECT COUNT(CallCount) FROM SCHEMA("AWS/Usage", Class, Resource, Service, Type) WHERE Type = 'API' GROUP BY Service, Resource ORDER BY COUNT() DESC LIMIT 20`, "GROUP is not supported"},
		{`SELECT AVG(CPUUtilization) FROM "AWS/EC2" ORDER BY AVG() DESC`, "ORDER is not supported"},
		{`SELECT AVG(CPUUtilization) FROM "AWS/EC2" LIMIT 5`, "LIMIT is not supported"},
		// [syntax] WHERE InstanceType != 'c3.4xlarge'.
		{`SELECT AVG(CPUUtilization) FROM "AWS/EC2" WHERE InstanceType != 'c3.4xlarge'`, "only = is supported"},
		{`SELECT AVG(CPUUtilization) FROM "AWS/EC2" WHERE InstanceId = 'i-1' OR InstanceId = 'i-2'`, "OR is not supported"},
		{`SELECT AVG(CPUUtilization) FROM AWS/EC2`, "must be double-quoted"},
		{`SELECT AVG(LIMIT) FROM Custom`, "reserved keyword"},
		{`SELECT AVG(CPUUtilization) FROM "AWS/EC2" WHERE InstanceId = "i-1"`, "single-quoted"},
		{`SELECT P90(CPUUtilization) FROM "AWS/EC2"`, "want one of AVG, SUM, MIN, MAX, COUNT"},
		{`SELECT AVG(CPUUtilization) "AWS/EC2"`, "want FROM"},
		{`SELECT AVG(CPUUtilization) FROM "AWS/EC2`, "unterminated"},
		{`m1 * 2`, "not metric math"},
		{`SEARCH('{AWS/EC2,InstanceId} MetricName="CPUUtilization"', 'Average', 60)`, "not metric math or SEARCH"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := insights(t, c, tt.expr, minute, minute.Add(time.Minute), 60)
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != "ValidationError" || !strings.Contains(api.ErrorMessage(), tt.want) {
				t.Fatalf("err = %v, want a ValidationError containing %q", err, tt.want)
			}
			if errs := reported.take(); len(errs) != 1 {
				t.Errorf("reported %v, want the one error", errs)
			}
		})
	}
}
