package cwstandin_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
	"github.com/keda-eks-samples/workloads/pkg/testutil/cwtest"
)

// logsClient is a real CloudWatch Logs client for endpoint. With emf it
// sends the header the EMF specification requires on PutLogEvents
// (x-amzn-logs-format: json/emf), as the collector's awsemf does.
func logsClient(t *testing.T, endpoint string, emf bool) *cloudwatchlogs.Client {
	t.Helper()
	cwtest.ClearAWSEnv(t)
	o := cloudwatchlogs.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer:      retry.AddWithMaxAttempts(retry.NewStandard(), 1),
	}
	if emf {
		o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue("X-Amzn-Logs-Format", "json/emf"))
	}
	return cloudwatchlogs.New(o)
}

func putEvents(t *testing.T, c *cloudwatchlogs.Client, group, stream string, at time.Time, messages ...string) error {
	t.Helper()
	events := make([]logtypes.InputLogEvent, len(messages))
	for i, m := range messages {
		events[i] = logtypes.InputLogEvent{Message: aws.String(m), Timestamp: aws.Int64(at.UnixMilli())}
	}
	_, err := c.PutLogEvents(t.Context(), &cloudwatchlogs.PutLogEventsInput{
		LogGroupName: aws.String(group), LogStreamName: aws.String(stream), LogEvents: events,
	})
	return err
}

// TestLogGroupsAndStreamsBehaveLikeAWS: the calls awsemf makes, answered
// as CloudWatch Logs answers them — its create-on-ResourceNotFound path
// depends on these errors.
func TestLogGroupsAndStreamsBehaveLikeAWS(t *testing.T) {
	cw := cwtest.New(t)
	c := logsClient(t, cw.URL, true)
	ctx := t.Context()
	var notFound *logtypes.ResourceNotFoundException
	var exists *logtypes.ResourceAlreadyExistsException

	if err := putEvents(t, c, "/metrics/NS", "s", time.Now(), "x"); !errors.As(err, &notFound) {
		t.Fatalf("PutLogEvents to a missing group: %v, want ResourceNotFoundException", err)
	}
	if _, err := c.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("/metrics/NS"), LogStreamName: aws.String("s")}); !errors.As(err, &notFound) {
		t.Fatalf("CreateLogStream in a missing group: %v, want ResourceNotFoundException", err)
	}
	if _, err := c.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/metrics/NS"), Tags: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/metrics/NS")}); !errors.As(err, &exists) {
		t.Fatalf("second CreateLogGroup: %v, want ResourceAlreadyExistsException", err)
	}
	if _, err := c.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("/metrics/NS"), RetentionInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	if err := putEvents(t, c, "/metrics/NS", "s", time.Now(), "x"); !errors.As(err, &notFound) {
		t.Fatalf("PutLogEvents to a missing stream: %v, want ResourceNotFoundException", err)
	}
	if _, err := c.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("/metrics/NS"), LogStreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("/metrics/NS"), LogStreamName: aws.String("s")}); !errors.As(err, &exists) {
		t.Fatalf("second CreateLogStream: %v, want ResourceAlreadyExistsException", err)
	}
	if err := putEvents(t, c, "/metrics/NS", "s", time.Now(), "hello", "world"); err != nil {
		t.Fatal(err)
	}
	ev := cw.LogEvents()
	if len(ev) != 2 || ev[0].Message != "hello" || ev[1].Group != "/metrics/NS" || ev[1].Stream != "s" || ev[0].EMF {
		t.Errorf("events %+v", ev)
	}
}

// emfRecord is an EMF record as awsemf writes one for our collector config.
func emfRecord(ts time.Time, service string, active float64) string {
	return fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"KedaSamples/WebApi","Dimensions":[["Service"]],`+
		`"Metrics":[{"Name":"http.server.active_requests","Unit":"Count"}]}]},`+
		`"OTelLib":"github.com/keda-eks-samples/workloads/pkg/telemetry","Service":%q,"http.server.active_requests":%v}`, ts.UnixMilli(), service, active)
}

// TestEMFRecordsBecomeMetrics sends EMF records with the real Logs client
// and reads the metrics back with the real CloudWatch client, through the
// sidecar/gateway trigger's own query.
func TestEMFRecordsBecomeMetrics(t *testing.T) {
	cw := cwtest.New(t)
	logs := logsClient(t, cw.URL, true)
	metrics := client(t, cw.URL)
	ctx := t.Context()
	for _, s := range []string{"pod-a", "pod-b"} {
		if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/metrics/KedaSamples/WebApi")}); err != nil && s == "pod-a" {
			t.Fatal(err)
		}
		if _, err := logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("/metrics/KedaSamples/WebApi"), LogStreamName: aws.String(s)}); err != nil {
			t.Fatal(err)
		}
	}
	at := minute.Add(20 * time.Second)
	// Two pods' collectors: pod-a in flight 4 then 6, pod-b 2. Every pod's
	// record has the same dimension set (Service), so it is one series.
	if err := putEvents(t, logs, "/metrics/KedaSamples/WebApi", "pod-a", at, emfRecord(at, "webapi", 4), emfRecord(at, "webapi", 6)); err != nil {
		t.Fatal(err)
	}
	if err := putEvents(t, logs, "/metrics/KedaSamples/WebApi", "pod-b", at, emfRecord(at, "webapi", 2), "a plain log line"); err != nil {
		t.Fatal(err)
	}
	out, err := insights(t, metrics, `SELECT AVG("http.server.active_requests") FROM SCHEMA("KedaSamples/WebApi", Service)`, minute, minute.Add(time.Minute), 60)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.MetricDataResults[0].Values; !reflect.DeepEqual(got, []float64{4}) {
		t.Errorf("AVG over the pods' records = %v, want [4]", got)
	}
	ev := cw.LogEvents()
	if len(ev) != 4 || !ev[0].EMF || ev[0].EMFError != "" || ev[3].EMF || ev[0].Message != emfRecord(at, "webapi", 4) {
		t.Errorf("events %+v", ev)
	}
	if got := ev[0].Header.Get("X-Amzn-Logs-Format"); got != "json/emf" {
		t.Errorf("header x-amzn-logs-format = %q", got)
	}
	p := cw.Datapoints()[0]
	want := cwstandin.Datapoint{
		Namespace: "KedaSamples/WebApi", MetricName: "http.server.active_requests", Dimensions: map[string]string{"Service": "webapi"},
		Unit: "Count", Timestamp: at, Stats: cwstandin.Stats{SampleCount: 1, Sum: 4, Minimum: 4, Maximum: 4}, Source: cwstandin.SourceEMF,
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("datapoint %+v\nwant      %+v", p, want)
	}
}

// TestEMFExtractionFollowsTheSpecification: the specification's own example
// record, several dimension sets, value arrays, and records that break a
// MUST (kept as logs, no metrics) — per
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
func TestEMFExtractionFollowsTheSpecification(t *testing.T) {
	cw := cwtest.New(t)
	logs := logsClient(t, cw.URL, true)
	metrics := client(t, cw.URL)
	ctx := t.Context()
	if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	if _, err := logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	// "Embedded metric format example": Timestamp 1574109732004, namespace
	// lambda-function-metrics, dimension set [functionVersion], metric
	// time (Milliseconds) = 100; requestId is a plain member.
	specExample := `{"_aws":{"Timestamp":1574109732004,"CloudWatchMetrics":[{"Namespace":"lambda-function-metrics","Dimensions":[["functionVersion"]],"Metrics":[{"Name":"time","Unit":"Milliseconds"}]}]},"functionVersion":"$LATEST","time":100,"requestId":"989ffbf8-9ace-4817-a57c-e4dd734019ee"}`
	specAt := time.UnixMilli(1574109732004).UTC()
	ts := minute.UnixMilli()
	// "Every DimensionSet used creates a new metric"; an empty set is a
	// metric without dimensions; an array value is one sample per number.
	twoSets := fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"NS","Dimensions":[["Service"],[]],"Metrics":[{"Name":"lat"}]}]},"Service":"api","lat":[1,2,6]}`, ts)
	broken := map[string]string{
		"dimension target missing":  fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"NS","Dimensions":[["Pod"]],"Metrics":[{"Name":"bad"}]}]},"bad":1}`, ts),
		"dimension target a number": fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"NS","Dimensions":[["Pod"]],"Metrics":[{"Name":"bad"}]}]},"Pod":3,"bad":1}`, ts),
		"metric target a string":    fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"NS","Dimensions":[[]],"Metrics":[{"Name":"bad"}]}]},"bad":"1"}`, ts),
		"no timestamp":              `{"_aws":{"CloudWatchMetrics":[{"Namespace":"NS","Dimensions":[[]],"Metrics":[{"Name":"bad"}]}]},"bad":1}`,
		"no namespace":              fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Dimensions":[[]],"Metrics":[{"Name":"bad"}]}]},"bad":1}`, ts),
		"nested target":             fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"NS","Dimensions":[[]],"Metrics":[{"Name":"a.b"}]}]},"a":{"b":1}}`, ts),
	}
	if err := putEvents(t, logs, "g", "s", specAt, specExample); err != nil {
		t.Fatal(err)
	}
	msgs := []string{twoSets}
	for _, m := range broken {
		msgs = append(msgs, m)
	}
	if err := putEvents(t, logs, "g", "s", minute, msgs...); err != nil {
		t.Fatal(err)
	}

	value := func(expr string, at time.Time) []float64 {
		t.Helper()
		out, err := insights(t, metrics, expr, at.Truncate(time.Minute), at.Truncate(time.Minute).Add(time.Minute), 60)
		if err != nil {
			t.Fatal(err)
		}
		return out.MetricDataResults[0].Values
	}
	if got := value(`SELECT MAX("time") FROM SCHEMA("lambda-function-metrics", functionVersion) WHERE functionVersion = '$LATEST'`, specAt); !reflect.DeepEqual(got, []float64{100}) {
		t.Errorf("spec example: %v, want [100]", got)
	}
	for expr, want := range map[string]float64{
		`SELECT COUNT(lat) FROM SCHEMA(NS, Service)`: 3,  // one sample per number
		`SELECT AVG(lat) FROM SCHEMA(NS)`:            3,  // the empty dimension set's metric
		`SELECT SUM(lat) FROM NS`:                    18, // both sets' copies: 2 x (1+2+6)
	} {
		if got := value(expr, minute); !reflect.DeepEqual(got, []float64{want}) {
			t.Errorf("%s = %v, want [%v]", expr, got, want)
		}
	}
	if got := value(`SELECT COUNT(bad) FROM NS`, minute); len(got) != 0 {
		t.Errorf("records that break the specification gave metrics: %v", got)
	}
	events := cw.LogEvents()
	errs := map[string]string{}
	for _, e := range events {
		if !e.EMF {
			t.Errorf("event not seen as EMF: %s", e.Message)
		}
		errs[e.Message] = e.EMFError
	}
	if errs[specExample] != "" || errs[twoSets] != "" {
		t.Errorf("valid records have errors: %q, %q", errs[specExample], errs[twoSets])
	}
	for name, m := range broken {
		if errs[m] == "" {
			t.Errorf("%s: no EMFError for %s", name, m)
		}
	}
	if units := []string{cw.Datapoints()[0].Unit, cw.Datapoints()[1].Unit}; !reflect.DeepEqual(units, []string{"Milliseconds", "None"}) {
		t.Errorf("units %v, want the definition's, else None", units)
	}
}

// TestEMFNeedsTheLogFormatHeader: without x-amzn-logs-format: json/emf the
// record is a plain log event, as the specification defines EMF documents
// by that header.
func TestEMFNeedsTheLogFormatHeader(t *testing.T) {
	cw := cwtest.New(t)
	logs := logsClient(t, cw.URL, false)
	ctx := t.Context()
	if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	if _, err := logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	if err := putEvents(t, logs, "g", "s", minute, emfRecord(minute, "webapi", 4)); err != nil {
		t.Fatal(err)
	}
	if ev := cw.LogEvents(); len(ev) != 1 || ev[0].EMF {
		t.Errorf("events %+v, want one plain event", ev)
	}
	if p := cw.Datapoints(); len(p) != 0 {
		t.Errorf("datapoints %+v, want none", p)
	}
}

// TestMalformedLogsRequestsAreRejected: the PutLogEvents constraints a
// client can break, and requests no SDK sends.
func TestMalformedLogsRequestsAreRejected(t *testing.T) {
	var reported validationErrors
	url := newServer(t, cwstandin.NewHandler(reported.add))
	logs := logsClient(t, url, true)
	ctx := t.Context()
	if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	if _, err := logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	_, err := logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), LogEvents: []logtypes.InputLogEvent{
		{Message: aws.String("b"), Timestamp: aws.Int64(2000)}, {Message: aws.String("a"), Timestamp: aws.Int64(1000)},
	}})
	var invalid *logtypes.InvalidParameterException
	if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "chronological") {
		t.Errorf("events out of order: %v, want InvalidParameterException", err)
	}
	_, err = logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "UnknownOperationException" {
		t.Errorf("DescribeLogGroups: %v, want UnknownOperationException", err)
	}
	if errs := reported.take(); len(errs) != 2 {
		t.Errorf("reported %v, want both", errs)
	}
}
