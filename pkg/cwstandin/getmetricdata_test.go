package cwstandin_test

import (
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
	"github.com/keda-eks-samples/workloads/pkg/testutil/cwtest"
)

func newServer(t *testing.T, h *cwstandin.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// kedaQuery is the GetMetricData request KEDA v2.21's aws-cloudwatch scaler
// builds for an expression trigger (createCloudwatchMetricDataInput):
// end = (now - offset) truncated to the period, start = end - collection
// time, one query "q1" with the trigger's period, newest first.
func kedaQuery(now time.Time, expr string, period, offset, collection int64) *cloudwatch.GetMetricDataInput {
	end := now.Add(-time.Duration(offset) * time.Second).Truncate(time.Duration(period) * time.Second)
	start := end.Add(-time.Duration(collection) * time.Second)
	return &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(start), EndTime: aws.Time(end), ScanBy: types.ScanByTimestampDescending,
		MetricDataQueries: []types.MetricDataQuery{{Expression: aws.String(expr), Id: aws.String("q1"), Period: aws.Int32(int32(period))}},
	}
}

// TestPeriodBucketsNewestFirst: data over several minutes comes back one
// value per period bucket that has data, labelled with the bucket's start,
// newest first (ScanBy TimestampDescending, KEDA's and the default),
// StartTime inclusive and EndTime exclusive.
func TestPeriodBucketsNewestFirst(t *testing.T) {
	cw := cwtest.New(t)
	c := client(t, cw.URL)
	m0 := minute.Add(-5 * time.Minute)
	host := map[string]string{"Host": "pod-a"}
	const ns, name = "KedaSamples/WebApi", "RequestPerSecond"
	put(t, c, series{ns, name, host, []float64{1, 3}}, m0)                                // minute 0: avg 2
	put(t, c, series{ns, name, host, []float64{10}}, m0.Add(2*time.Minute))               // minute 2 (minute 1 empty)
	put(t, c, series{ns, name, host, []float64{7}}, m0.Add(3*time.Minute+59*time.Second)) // minute 3, last second
	put(t, c, series{ns, name, host, []float64{1000}}, m0.Add(4*time.Minute))             // at EndTime: excluded
	put(t, c, series{ns, name, host, []float64{-1}}, m0.Add(-time.Millisecond))           // before StartTime: excluded
	expr := `SELECT AVG(RequestPerSecond) FROM SCHEMA("KedaSamples/WebApi", Host)`

	out, err := insights(t, c, expr, m0, m0.Add(4*time.Minute), 60)
	if err != nil {
		t.Fatal(err)
	}
	r := out.MetricDataResults[0]
	wantTimes := []time.Time{m0.Add(3 * time.Minute), m0.Add(2 * time.Minute), m0}
	if !reflect.DeepEqual(r.Values, []float64{7, 10, 2}) || !equalTimes(r.Timestamps, wantTimes) {
		t.Errorf("values %v at %v\nwant  [7 10 2] at %v", r.Values, r.Timestamps, wantTimes)
	}

	// Ascending on request; a 5-minute period pools all four minutes
	// (1, 3, 10, 7 → 21/4).
	asc, err := c.GetMetricData(t.Context(), &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(m0), EndTime: aws.Time(m0.Add(4 * time.Minute)), ScanBy: types.ScanByTimestampAscending,
		MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("q1"), Expression: aws.String(expr), Period: aws.Int32(60)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := asc.MetricDataResults[0].Values; !reflect.DeepEqual(got, []float64{2, 10, 7}) {
		t.Errorf("ascending values %v, want [2 10 7]", got)
	}
	out, err = insights(t, c, expr, m0, m0.Add(4*time.Minute), 240)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.MetricDataResults[0].Values; !reflect.DeepEqual(got, []float64{21.0 / 4}) {
		t.Errorf("one 240 s bucket: %v, want [5.25]", got)
	}

	// No data in the window: an empty, complete result.
	out, err = insights(t, c, expr, m0.Add(-time.Hour), m0.Add(-50*time.Minute), 60)
	if err != nil {
		t.Fatal(err)
	}
	if r := out.MetricDataResults; len(r) != 1 || len(r[0].Values) != 0 || len(r[0].Timestamps) != 0 || r[0].StatusCode != types.StatusCodeComplete {
		t.Errorf("empty window: %+v, want one complete result without values", r)
	}
}

func equalTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// TestStartTimeRoundsAsCloudWatchDoes: a StartTime inside a minute is
// rounded down to the minute (periods of 60 s or more) or to the period
// (shorter periods), so buckets start there — the GetMetricData reference's
// example: "a query at 15:07:17 for the previous 5 minutes of data, using a
// period of 5 seconds, ... data timestamped between 15:02:15 and 15:07:15".
func TestStartTimeRoundsAsCloudWatchDoes(t *testing.T) {
	cw := cwtest.New(t)
	c := client(t, cw.URL)
	h := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	at := func(m, s int) time.Time { return h.Add(time.Duration(m)*time.Minute + time.Duration(s)*time.Second) }
	put(t, c, series{"NS", "m", nil, []float64{1}}, at(2, 15))  // first 5 s bucket
	put(t, c, series{"NS", "m", nil, []float64{2}}, at(7, 15))  // last 5 s bucket, partial: 15:07:15–15:07:17
	put(t, c, series{"NS", "m", nil, []float64{99}}, at(7, 17)) // at EndTime
	out, err := insights(t, c, `SELECT SUM(m) FROM NS`, at(2, 17), at(7, 17), 5)
	if err != nil {
		t.Fatal(err)
	}
	r := out.MetricDataResults[0]
	if !reflect.DeepEqual(r.Values, []float64{2, 1}) || !equalTimes(r.Timestamps, []time.Time{at(7, 15), at(2, 15)}) {
		t.Errorf("5 s period: %v at %v, want [2 1] at [%v %v]", r.Values, r.Timestamps, at(7, 15), at(2, 15))
	}
	out, err = insights(t, c, `SELECT SUM(m) FROM NS`, at(2, 17), at(8, 0), 60)
	if err != nil {
		t.Fatal(err)
	}
	r = out.MetricDataResults[0]
	if !reflect.DeepEqual(r.Values, []float64{101, 1}) || !equalTimes(r.Timestamps, []time.Time{at(7, 0), at(2, 0)}) {
		t.Errorf("60 s period from 02:17: %v at %v, want [101 1] at [%v %v]", r.Values, r.Timestamps, at(7, 0), at(2, 0))
	}
}

// TestMetricStatQueryAsKEDASendsIt: KEDA's non-expression trigger
// (namespace, metricName, dimensionName/Value, metricStat) is a MetricStat
// query; it reads exactly one metric — the namespace, name and full
// dimension set — with the statistic asked for, and the unit when one is
// set.
func TestMetricStatQueryAsKEDASendsIt(t *testing.T) {
	cw := cwtest.New(t)
	c := client(t, cw.URL)
	m0 := minute
	put(t, c, series{"AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": "q"}, []float64{3, 5}}, m0)
	put(t, c, series{"AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": "other"}, []float64{100}}, m0)
	put(t, c, series{"AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": "q", "Extra": "x"}, []float64{100}}, m0)
	_, err := c.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/SQS"), MetricData: []types.MetricDatum{{
		MetricName: aws.String("ApproximateNumberOfMessagesVisible"), Unit: types.StandardUnitCount, Value: aws.Float64(7),
		Timestamp: aws.Time(m0.Add(30 * time.Second)), Dimensions: []types.Dimension{{Name: aws.String("QueueName"), Value: aws.String("q")}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	query := func(stat string, unit types.StandardUnit) []float64 {
		t.Helper()
		out, err := c.GetMetricData(t.Context(), &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(m0), EndTime: aws.Time(m0.Add(time.Minute)), ScanBy: types.ScanByTimestampDescending,
			MetricDataQueries: []types.MetricDataQuery{{
				Id: aws.String("c1"),
				MetricStat: &types.MetricStat{
					Metric: &types.Metric{
						Namespace: aws.String("AWS/SQS"), MetricName: aws.String("ApproximateNumberOfMessagesVisible"),
						Dimensions: []types.Dimension{{Name: aws.String("QueueName"), Value: aws.String("q")}},
					},
					Period: aws.Int32(60), Stat: aws.String(stat), Unit: unit,
				},
				ReturnData: aws.Bool(true),
			}},
		})
		if err != nil {
			t.Fatalf("%s: %v", stat, err)
		}
		return out.MetricDataResults[0].Values
	}
	for stat, want := range map[string]float64{"Average": 5, "Sum": 15, "Minimum": 3, "Maximum": 7, "SampleCount": 3} {
		if got := query(stat, ""); !reflect.DeepEqual(got, []float64{want}) {
			t.Errorf("%s = %v, want [%v]", stat, got, want)
		}
	}
	if got := query("Sum", types.StandardUnitCount); !reflect.DeepEqual(got, []float64{7}) {
		t.Errorf("Sum with Unit Count = %v, want [7] (only the datum sent with that unit)", got)
	}
}

// TestStatisticSetsAndDistributionsPool: Values/Counts and StatisticValues
// add their samples, so AVG is the mean of every observation they stand
// for.
func TestStatisticSetsAndDistributionsPool(t *testing.T) {
	cw := cwtest.New(t)
	c := client(t, cw.URL)
	_, err := c.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("NS"), MetricData: []types.MetricDatum{
		{MetricName: aws.String("lat"), Values: []float64{1, 10}, Counts: []float64{3, 1}, Timestamp: aws.Time(minute)},                                                                                            // 4 samples, sum 13
		{MetricName: aws.String("lat"), StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(4), Sum: aws.Float64(27), Minimum: aws.Float64(0.5), Maximum: aws.Float64(20)}, Timestamp: aws.Time(minute)}, // 4 samples, sum 27
	}})
	if err != nil {
		t.Fatal(err)
	}
	for fn, want := range map[string]float64{"AVG": 5, "SUM": 40, "COUNT": 8, "MIN": 0.5, "MAX": 20} {
		out, err := insights(t, c, "SELECT "+fn+"(lat) FROM NS", minute, minute.Add(time.Minute), 60)
		if err != nil {
			t.Fatal(err)
		}
		if got := out.MetricDataResults[0].Values; !reflect.DeepEqual(got, []float64{want}) {
			t.Errorf("%s = %v, want [%v]", fn, got, want)
		}
	}
}

// TestPutThenGetWithTheSDK drives the stand-in as the CloudWatch-direct
// path runs in production: PutMetricData per pod without timestamps (the
// stand-in stamps them on receipt), then the exact request KEDA builds for
// the shipped trigger, with metricEndTimeOffset 0 so the current minute is
// read.
func TestPutThenGetWithTheSDK(t *testing.T) {
	cw := cwtest.New(t)
	c := client(t, cw.URL)
	for pod, v := range map[string]float64{"pod-a": 3, "pod-b": 5} {
		_, err := c.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("KedaSamples/WebApi"), MetricData: []types.MetricDatum{{
			MetricName: aws.String("RequestPerSecond"), Unit: types.StandardUnitCountSecond, Value: aws.Float64(v),
			Dimensions: []types.Dimension{{Name: aws.String("Host"), Value: aws.String(pod)}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	expr := `SELECT AVG(RequestPerSecond) FROM SCHEMA("KedaSamples/WebApi", Host)`
	// KEDA truncates "now" to the period; with offset 0 and the window
	// ending at the next minute the data just sent is in the newest bucket.
	in := kedaQuery(time.Now().Add(time.Minute), expr, 60, 0, 300)
	out, err := c.GetMetricData(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	r := out.MetricDataResults
	if len(r) != 1 || len(r[0].Values) != 1 || r[0].Values[0] != 4 {
		t.Fatalf("results %+v, want AVG 4 of the pods' 3 and 5", r)
	}
	if pts := cw.Datapoints(); len(pts) != 2 || pts[0].Source != cwstandin.SourcePutMetricData || pts[0].Unit != "Count/Second" {
		t.Errorf("datapoints %+v", pts)
	}
}

// TestTimeShiftMovesStoredData: WithTimeShift stores datapoints earlier
// (or later) than sent — and only datapoints: Calls keep the timestamps
// as sent.
func TestTimeShiftMovesStoredData(t *testing.T) {
	cw := cwtest.New(t, cwstandin.WithTimeShift(-2*time.Minute))
	c := client(t, cw.URL)
	put(t, c, series{"NS", "m", nil, []float64{1}}, minute.Add(2*time.Minute+10*time.Second))
	out, err := insights(t, c, "SELECT SUM(m) FROM NS", minute, minute.Add(time.Minute), 60)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.MetricDataResults[0].Values; !reflect.DeepEqual(got, []float64{1}) {
		t.Errorf("shifted datum not in the minute two minutes earlier: %v", got)
	}
	if got := cw.Calls()[0].Data[0].Timestamp; !got.Equal(minute.Add(2*time.Minute + 10*time.Second)) {
		t.Errorf("Call timestamp %v, want as sent", got)
	}
}

// TestGetMetricDataRequestChecks: the request-level rules.
func TestGetMetricDataRequestChecks(t *testing.T) {
	var reported validationErrors
	c := client(t, newServer(t, cwstandin.NewHandler(reported.add)))
	expr := aws.String("SELECT SUM(m) FROM NS")
	q := func(id string) types.MetricDataQuery {
		return types.MetricDataQuery{Id: aws.String(id), Expression: expr, Period: aws.Int32(60)}
	}
	tests := []struct {
		name string
		in   cloudwatch.GetMetricDataInput
		want string
	}{
		{"start after end", cloudwatch.GetMetricDataInput{StartTime: aws.Time(minute), EndTime: aws.Time(minute), MetricDataQueries: []types.MetricDataQuery{q("q1")}}, "StartTime must be less"},
		{"two insights queries", cloudwatch.GetMetricDataInput{StartTime: aws.Time(minute), EndTime: aws.Time(minute.Add(time.Minute)), MetricDataQueries: []types.MetricDataQuery{q("q1"), q("q2")}}, "only one Metrics Insights query"},
		{"bad id", cloudwatch.GetMetricDataInput{StartTime: aws.Time(minute), EndTime: aws.Time(minute.Add(time.Minute)), MetricDataQueries: []types.MetricDataQuery{q("Q1")}}, "lowercase letter"},
		{"no period", cloudwatch.GetMetricDataInput{StartTime: aws.Time(minute), EndTime: aws.Time(minute.Add(time.Minute)), MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("q1"), Expression: expr}}}, "needs Period"},
		{"bad period", cloudwatch.GetMetricDataInput{StartTime: aws.Time(minute), EndTime: aws.Time(minute.Add(time.Minute)), MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("q1"), Expression: expr, Period: aws.Int32(90)}}}, "multiple of 60"},
		{"pagination", cloudwatch.GetMetricDataInput{StartTime: aws.Time(minute), EndTime: aws.Time(minute.Add(time.Minute)), NextToken: aws.String("x"), MetricDataQueries: []types.MetricDataQuery{q("q1")}}, "pagination"},
		{"percentile", cloudwatch.GetMetricDataInput{StartTime: aws.Time(minute), EndTime: aws.Time(minute.Add(time.Minute)), MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("c1"), MetricStat: &types.MetricStat{
			Metric: &types.Metric{Namespace: aws.String("NS"), MetricName: aws.String("m")}, Period: aws.Int32(60), Stat: aws.String("p90"),
		}}}}, `statistic "p90" is not supported`},
		{"cross-account", cloudwatch.GetMetricDataInput{StartTime: aws.Time(minute), EndTime: aws.Time(minute.Add(time.Minute)), MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("q1"), Expression: expr, Period: aws.Int32(60), AccountId: aws.String("1")}}}, "cross-account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.GetMetricData(t.Context(), &tt.in)
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
