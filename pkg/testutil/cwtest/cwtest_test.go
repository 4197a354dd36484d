package cwtest_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/encoding/cbor"

	"github.com/keda-eks-samples/workloads/pkg/testutil/cwtest"
)

// client is a real SDK client for endpoint with fast retries.
func client(t *testing.T, endpoint string, optFns ...func(*cloudwatch.Options)) *cloudwatch.Client {
	t.Helper()
	cwtest.ClearAWSEnv(t)
	return cloudwatch.New(cloudwatch.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer: retry.AddWithMaxBackoffDelay(retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
		}), time.Millisecond),
	}, optFns...)
}

var ts = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

func TestDecodesWhatTheSDKSends(t *testing.T) {
	cw := cwtest.New(t)
	_, err := client(t, cw.URL).PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{
		Namespace: aws.String("NS"),
		MetricData: []types.MetricDatum{
			{
				MetricName: aws.String("RequestPerSecond"),
				Unit:       types.StandardUnitCountSecond,
				Value:      aws.Float64(2.5),
				Timestamp:  aws.Time(ts.Add(999 * time.Microsecond)), // the SDK truncates to ms
				Dimensions: []types.Dimension{
					{Name: aws.String("Host"), Value: aws.String("pod-1")},
					{Name: aws.String("Zone"), Value: aws.String("a")},
				},
			},
			{MetricName: aws.String("Bare"), Value: aws.Float64(-3)},
			{
				MetricName:        aws.String("Distribution"),
				StorageResolution: aws.Int32(1),
				Values:            []float64{1, 2.5},
				Counts:            []float64{3, 1},
				StatisticValues:   &types.StatisticSet{SampleCount: aws.Float64(4), Sum: aws.Float64(5.5), Minimum: aws.Float64(1), Maximum: aws.Float64(2.5)},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := cw.Calls()
	if len(calls) != 1 {
		t.Fatalf("got %d calls, want 1", len(calls))
	}
	c := calls[0]
	if c.Namespace != "NS" {
		t.Errorf("Namespace = %q", c.Namespace)
	}
	want := []cwtest.Datum{
		{MetricName: "RequestPerSecond", Unit: "Count/Second", Value: 2.5, Timestamp: ts,
			Dimensions: map[string]string{"Host": "pod-1", "Zone": "a"}},
		{MetricName: "Bare", Value: -3},
		{MetricName: "Distribution"},
	}
	if len(c.Data) == 3 {
		// No Value member: NaN, which DeepEqual cannot compare.
		if !math.IsNaN(c.Data[2].Value) {
			t.Errorf("Value of a datum without one = %v, want NaN", c.Data[2].Value)
		}
		c.Data[2].Value = 0
	}
	if !reflect.DeepEqual(c.Data, want) {
		t.Errorf("Data = %+v\nwant   %+v", c.Data, want)
	}
	if got := c.Header.Get("Amz-Sdk-Request"); got != "attempt=1; max=3" {
		t.Errorf("Amz-Sdk-Request = %q", got)
	}
	if _, err := cbor.Decode(c.Raw); err != nil {
		t.Errorf("Raw is not the CBOR body: %v", err)
	}
}

func TestGunzipsLargeBodies(t *testing.T) {
	cw := cwtest.New(t)
	data := make([]types.MetricDatum, 300)
	for i := range data {
		data[i] = types.MetricDatum{MetricName: aws.String(fmt.Sprintf("metric-%03d-%s", i, strings.Repeat("x", 40))), Value: aws.Float64(float64(i))}
	}
	_, err := client(t, cw.URL).PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("NS"), MetricData: data})
	if err != nil {
		t.Fatal(err)
	}
	c := cw.Calls()[0]
	if got := c.Header.Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("Content-Encoding = %q, want gzip (body of %d bytes)", got, len(c.Raw))
	}
	if len(c.Data) != len(data) || c.Data[299].Value != 299 || c.Data[299].MetricName != *data[299].MetricName {
		t.Errorf("decoded %d datums, last %+v", len(c.Data), c.Data[len(c.Data)-1])
	}
	if _, err := cbor.Decode(c.Raw); err != nil {
		t.Errorf("Raw is not the gunzipped CBOR body: %v", err)
	}
}

func TestWithStatus(t *testing.T) {
	cw := cwtest.New(t, cwtest.WithStatus(func(n int) int {
		switch n {
		case 1:
			return http.StatusServiceUnavailable
		case 3:
			return http.StatusBadRequest
		}
		return http.StatusOK
	}))
	c := client(t, cw.URL)
	in := &cloudwatch.PutMetricDataInput{Namespace: aws.String("NS"), MetricData: []types.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}}}

	// Calls 1 (503, retried) and 2 (200).
	if _, err := c.PutMetricData(t.Context(), in); err != nil {
		t.Fatalf("first PutMetricData: %v", err)
	}
	// Call 3: 400, not retried.
	_, err := c.PutMetricData(t.Context(), in)
	var invalid *types.InvalidParameterValueException
	if !errors.As(err, &invalid) {
		t.Fatalf("second PutMetricData: err = %v, want InvalidParameterValueException", err)
	}
	calls := cw.Calls()
	if len(calls) != 3 {
		t.Fatalf("got %d calls, want 3", len(calls))
	}
	for i, want := range []string{"attempt=1; max=3", "attempt=2; max=3", "attempt=1; max=3"} {
		if got := calls[i].Header.Get("Amz-Sdk-Request"); got != want {
			t.Errorf("call %d: Amz-Sdk-Request = %q, want %q", i+1, got, want)
		}
	}
}

func TestInternalServiceFaultAfterRetries(t *testing.T) {
	cw := cwtest.New(t, cwtest.WithStatus(func(int) int { return http.StatusInternalServerError }))
	_, err := client(t, cw.URL).PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{
		Namespace: aws.String("NS"), MetricData: []types.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}},
	})
	var fault *types.InternalServiceFault
	if !errors.As(err, &fault) {
		t.Fatalf("err = %v, want InternalServiceFault", err)
	}
	if n := len(cw.Calls()); n != 3 {
		t.Fatalf("got %d calls, want 3 attempts", n)
	}
}

func TestMalformedRequestsAreRejected(t *testing.T) {
	tag := func(v cbor.Value) cbor.Value { return &cbor.Tag{ID: 1, Value: v} }
	datum := func(extra cbor.Map) cbor.Map {
		m := cbor.Map{"MetricName": cbor.String("m"), "Value": cbor.Float64(1)}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	body := func(data ...cbor.Value) []byte {
		return cbor.Encode(cbor.Map{"Namespace": cbor.String("NS"), "MetricData": cbor.List(data)})
	}
	const ok = http.StatusOK
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        []byte
		wantErr     string // "" = accepted
	}{
		{"well formed", "POST", cwtest.PutMetricDataPath, "application/cbor", body(datum(nil)), ""},
		{"integer timestamp", "POST", cwtest.PutMetricDataPath, "application/cbor", body(datum(cbor.Map{"Timestamp": tag(cbor.Uint(1_700_000_000))})), ""},
		{"wrong operation", "POST", "/service/GraniteServiceVersion20100801/operation/ListMetrics", "application/cbor", body(datum(nil)), "not a PutMetricData request"},
		{"GET", "GET", cwtest.PutMetricDataPath, "application/cbor", nil, "not a PutMetricData request"},
		{"JSON", "POST", cwtest.PutMetricDataPath, "application/json", []byte(`{}`), "Content-Type"},
		{"not CBOR", "POST", cwtest.PutMetricDataPath, "application/cbor", []byte{0xff, 0x00}, "decode CBOR"},
		{"body not a map", "POST", cwtest.PutMetricDataPath, "application/cbor", cbor.Encode(cbor.List{}), "want a map"},
		{"no namespace", "POST", cwtest.PutMetricDataPath, "application/cbor", cbor.Encode(cbor.Map{"MetricData": cbor.List{datum(nil)}}), "Namespace is missing"},
		{"no data", "POST", cwtest.PutMetricDataPath, "application/cbor", body(), "non-empty list"},
		{"entity data", "POST", cwtest.PutMetricDataPath, "application/cbor",
			cbor.Encode(cbor.Map{"Namespace": cbor.String("NS"), "MetricData": cbor.List{datum(nil)}, "EntityMetricData": cbor.List{}}), `"EntityMetricData" is not modelled`},
		{"no value", "POST", cwtest.PutMetricDataPath, "application/cbor", body(cbor.Map{"MetricName": cbor.String("m")}), ""},
		{"no metric name", "POST", cwtest.PutMetricDataPath, "application/cbor", body(cbor.Map{"Value": cbor.Float64(1)}), "MetricName is missing"},
		{"string value", "POST", cwtest.PutMetricDataPath, "application/cbor", body(datum(cbor.Map{"Value": cbor.String("1")})), "not a CBOR number"},
		{"NaN value", "POST", cwtest.PutMetricDataPath, "application/cbor", body(datum(cbor.Map{"Value": cbor.Float64(math.NaN())})), "not a finite number"},
		{"unknown member", "POST", cwtest.PutMetricDataPath, "application/cbor", body(datum(cbor.Map{"Unitt": cbor.String("Count")})), `"Unitt" is not modelled`},
		{"incomplete statistic values", "POST", cwtest.PutMetricDataPath, "application/cbor", body(datum(cbor.Map{"StatisticValues": cbor.Map{
			"SampleCount": cbor.Uint(1), "Sum": cbor.Float64(1), "Minimum": cbor.Float64(1),
		}})), "StatisticValues.Maximum is missing"},
		{"values not a list", "POST", cwtest.PutMetricDataPath, "application/cbor", body(datum(cbor.Map{"Values": cbor.Float64(1)})), "Values is"},
		{"string storage resolution", "POST", cwtest.PutMetricDataPath, "application/cbor", body(datum(cbor.Map{"StorageResolution": cbor.String("1")})), "StorageResolution"},
		{"untagged timestamp", "POST", cwtest.PutMetricDataPath, "application/cbor", body(datum(cbor.Map{"Timestamp": cbor.Float64(1)})), "not CBOR tag 1"},
		{"duplicate dimension", "POST", cwtest.PutMetricDataPath, "application/cbor", body(datum(cbor.Map{"Dimensions": cbor.List{
			cbor.Map{"Name": cbor.String("Host"), "Value": cbor.String("a")},
			cbor.Map{"Name": cbor.String("Host"), "Value": cbor.String("b")},
		}})), `"Host" appears twice`},
		{"dimension without value", "POST", cwtest.PutMetricDataPath, "application/cbor", body(datum(cbor.Map{"Dimensions": cbor.List{
			cbor.Map{"Name": cbor.String("Host")},
		}})), "Value is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu   sync.Mutex
				errs []error
			)
			h := cwtest.NewHandler(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
			srv := httptest.NewServer(h)
			defer srv.Close()
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tt.contentType)
			req.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			mu.Lock()
			defer mu.Unlock()
			if tt.wantErr == "" {
				if resp.StatusCode != ok || len(errs) != 0 || len(h.Calls()) != 1 {
					t.Fatalf("status %d, errors %v, %d calls; want 200, none, 1", resp.StatusCode, errs, len(h.Calls()))
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.wantErr) {
				t.Errorf("errors %v, want one containing %q", errs, tt.wantErr)
			}
			if n := len(h.Calls()); n != 0 {
				t.Errorf("%d calls recorded, want 0", n)
			}
		})
	}
}

func TestOnCall(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	cw := cwtest.New(t, cwtest.OnCall(func(c cwtest.Call) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, c.Namespace+"/"+c.Data[0].MetricName)
	}))
	_, err := client(t, cw.URL).PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{
		Namespace: aws.String("NS"), MetricData: []types.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(seen, []string{"NS/m"}) {
		t.Errorf("OnCall saw %v", seen)
	}
	if cw.Handler() == nil {
		t.Error("Handler() is nil")
	}
}

// A stand-in CloudWatch endpoint for a local demo: point the service at it
// with AWS_ENDPOINT_URL_CLOUDWATCH=http://127.0.0.1:4566.
func ExampleNewHandler() {
	h := cwtest.NewHandler(
		func(err error) { log.Print(err) },
		cwtest.OnCall(func(c cwtest.Call) {
			for _, d := range c.Data {
				fmt.Printf("%s %s %v %s=%g %s\n", d.Timestamp.Format(time.RFC3339Nano), c.Namespace, d.Dimensions, d.MetricName, d.Value, d.Unit)
			}
		}),
	)
	log.Fatal(http.ListenAndServe("127.0.0.1:4566", h))
}
