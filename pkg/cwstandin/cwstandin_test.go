package cwstandin_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"maps"
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
	"github.com/fxamacker/cbor/v2"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
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
			},
			{
				MetricName:      aws.String("Set"),
				StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(4), Sum: aws.Float64(5.5), Minimum: aws.Float64(1), Maximum: aws.Float64(2.5)},
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
	want := []cwstandin.Datum{
		{MetricName: "RequestPerSecond", Unit: "Count/Second", Value: 2.5, Timestamp: ts,
			Dimensions: map[string]string{"Host": "pod-1", "Zone": "a"}},
		{MetricName: "Bare", Value: -3},
		{MetricName: "Distribution"},
		{MetricName: "Set"},
	}
	if len(c.Data) == 4 {
		// No Value member: NaN, which DeepEqual cannot compare.
		for _, i := range []int{2, 3} {
			if !math.IsNaN(c.Data[i].Value) {
				t.Errorf("Value of a datum without one = %v, want NaN", c.Data[i].Value)
			}
			c.Data[i].Value = 0
		}
	}
	if !reflect.DeepEqual(c.Data, want) {
		t.Errorf("Data = %+v\nwant   %+v", c.Data, want)
	}
	if got := c.Header.Get("Amz-Sdk-Request"); got != "attempt=1; max=3" {
		t.Errorf("Amz-Sdk-Request = %q", got)
	}
	if err := cbor.Wellformed(c.Raw); err != nil {
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
	if err := cbor.Wellformed(c.Raw); err != nil {
		t.Errorf("Raw is not the gunzipped CBOR body: %v", err)
	}
}

func TestWithStatus(t *testing.T) {
	cw := cwtest.New(t, cwstandin.WithStatus(func(n int) int {
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
	cw := cwtest.New(t, cwstandin.WithStatus(func(int) int { return http.StatusInternalServerError }))
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
	type m = map[string]any
	enc := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tag := func(n uint64, v any) cbor.Tag { return cbor.Tag{Number: n, Content: v} }
	datum := func(extra m) m {
		d := m{"MetricName": "m", "Value": 1.0}
		maps.Copy(d, extra)
		return d
	}
	body := func(data ...any) []byte { return enc(m{"Namespace": "NS", "MetricData": data}) }
	// The SDK never sends a key twice; a map with one must be written by hand:
	// {"Namespace": "NS", "Namespace": "NS", "MetricData": [{"MetricName": "m"}]}.
	dupKey := append([]byte{0xa3}, enc("Namespace")...)
	dupKey = append(append(dupKey, enc("NS")...), enc("Namespace")...)
	dupKey = append(append(dupKey, enc("NS")...), enc("MetricData")...)
	dupKey = append(dupKey, enc([]any{m{"MetricName": "m"}})...)

	const ok = http.StatusOK
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        []byte
		wantErr     string // "" = accepted
	}{
		{"well formed", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(nil)), ""},
		{"integer timestamp", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Timestamp": tag(1, 1_700_000_000)})), ""},
		{"integer value", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Value": 3})), ""},
		{"null member is absent", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Unit": nil})), ""},
		{"wrong operation", "POST", "/service/GraniteServiceVersion20100801/operation/ListMetrics", "application/cbor", body(datum(nil)), "operation ListMetrics is not supported"},
		{"GET", "GET", cwstandin.PutMetricDataPath, "application/cbor", nil, "not a CloudWatch request"},
		{"no operation", "POST", "/", "application/cbor", body(datum(nil)), "not a CloudWatch request"},
		{"value and values", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Values": []any{1.0}})), "mutually exclusive"},
		{"counts without values", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Counts": []any{1.0}})), "want as many"},
		{"JSON", "POST", cwstandin.PutMetricDataPath, "application/json", []byte(`{}`), "Content-Type"},
		{"not CBOR", "POST", cwstandin.PutMetricDataPath, "application/cbor", []byte{0xff, 0x00}, "decode CBOR"},
		{"body not a map", "POST", cwstandin.PutMetricDataPath, "application/cbor", enc([]any{}), "cannot unmarshal array"},
		{"no namespace", "POST", cwstandin.PutMetricDataPath, "application/cbor", enc(m{"MetricData": []any{datum(nil)}}), "Namespace is missing"},
		{"no data", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(), "non-empty list"},
		{"entity data", "POST", cwstandin.PutMetricDataPath, "application/cbor",
			enc(m{"Namespace": "NS", "MetricData": []any{datum(nil)}, "EntityMetricData": []any{}}), "member not modelled"},
		{"duplicate key", "POST", cwstandin.PutMetricDataPath, "application/cbor", dupKey, "duplicate map key"},
		{"member name in another case", "POST", cwstandin.PutMetricDataPath, "application/cbor", enc(m{"namespace": "NS", "MetricData": []any{datum(nil)}}), "member not modelled"},
		{"no value", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(m{"MetricName": "m"}), ""},
		{"no metric name", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(m{"Value": 1.0}), "MetricName is missing"},
		{"string value", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Value": "1"})), "text string into Go struct field cwstandin.putMetricDataInput.MetricData of type float64"},
		{"NaN value", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Value": math.NaN()})), "NaN"},
		{"infinite count", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Counts": []any{1.0, math.Inf(1)}})), "infinity"},
		{"unknown member", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Unitt": "Count"})), "member not modelled"},
		{"incomplete statistic values", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"StatisticValues": m{
			"SampleCount": 1, "Sum": 1.0, "Minimum": 1.0,
		}})), "StatisticValues.Maximum is missing"},
		{"values not a list", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Values": 1.0})), "of type []float64"},
		{"string storage resolution", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"StorageResolution": "1"})), "text string into Go struct field cwstandin.putMetricDataInput.MetricData of type int32"},
		{"fractional storage resolution", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"StorageResolution": 1.5})), "of type int32"},
		{"untagged timestamp", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Timestamp": 1.0})), "timestamp"},
		{"RFC 3339 timestamp (tag 0)", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Timestamp": tag(0, "2026-01-02T03:04:05Z")})), "want tag 1"},
		{"duplicate dimension", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Dimensions": []any{
			m{"Name": "Host", "Value": "a"},
			m{"Name": "Host", "Value": "b"},
		}})), `"Host" appears twice`},
		{"dimension without value", "POST", cwstandin.PutMetricDataPath, "application/cbor", body(datum(m{"Dimensions": []any{
			m{"Name": "Host"},
		}})), "Value is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu   sync.Mutex
				errs []error
			)
			h := cwstandin.NewHandler(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
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
	cw := cwtest.New(t, cwstandin.OnCall(func(c cwstandin.Call) {
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
}

// A stand-in CloudWatch endpoint for a local demo: point the service at it
// with AWS_ENDPOINT_URL_CLOUDWATCH=http://127.0.0.1:4566.
func ExampleNewHandler() {
	h := cwstandin.NewHandler(
		func(err error) { log.Print(err) },
		cwstandin.OnCall(func(c cwstandin.Call) {
			for _, d := range c.Data {
				fmt.Printf("%s %s %v %s=%g %s\n", d.Timestamp.Format(time.RFC3339Nano), c.Namespace, d.Dimensions, d.MetricName, d.Value, d.Unit)
			}
		}),
	)
	log.Fatal(http.ListenAndServe("127.0.0.1:4566", h))
}
