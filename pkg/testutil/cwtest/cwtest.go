// Package cwtest is a fake Amazon CloudWatch endpoint for tests: an HTTP
// server that accepts the PutMetricData requests of the aws-sdk-go-v2
// CloudWatch client, decodes them and records them as Calls.
//
// The SDK speaks Smithy RPC v2 CBOR to CloudWatch. What it sends for one
// datum (observed against this fake):
//
//	POST /service/GraniteServiceVersion20100801/operation/PutMetricData
//	Content-Type: application/cbor, Accept: application/cbor,
//	Smithy-Protocol: rpc-v2-cbor, X-Amzn-Query-Mode: true,
//	Amz-Sdk-Request: attempt=1; max=5, SigV4 for service "monitoring",
//	Content-Encoding: gzip when the body is 10 KiB or more
//	body (indefinite-length CBOR maps/lists):
//	{"MetricData": [{"Dimensions": [{"Name": "Host", "Value": "pod-1"}],
//	  "MetricName": "RequestPerSecond", "Timestamp": 1(<float64 epoch s>),
//	  "Unit": "Count/Second", "Value": 2.5}],
//	 "Namespace": "MyApiNamespace"}
//
// Point a client at it with BaseEndpoint (or AWS_ENDPOINT_URL_CLOUDWATCH)
// and any static credentials; signatures are not checked.
//
//	cw := cwtest.New(t)
//	cwtest.ClearAWSEnv(t)
//	client := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(cw.URL) })
//	// ... code under test publishes ...
//	calls := cw.Calls()
//
// Decoding is strict: a request that is not a well-formed PutMetricData
// (wrong operation or headers, bad CBOR, a member of the wrong type, a
// missing required member, an unknown member, a duplicate dimension, a NaN or
// infinite number) is answered 400 InvalidParameterValue and reported
// (t.Errorf for New, the onError callback for NewHandler) instead of being
// recorded. The entity members EntityMetricData and StrictEntityValidation
// are not modelled and are rejected the same way.
package cwtest

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// PutMetricDataPath is the request path of PutMetricData in the RPC v2 CBOR
// protocol.
const PutMetricDataPath = "/service/GraniteServiceVersion20100801/operation/PutMetricData"

// Datum is one decoded MetricDatum. The members StatisticValues, Values,
// Counts and StorageResolution are type-checked but not decoded; read
// Call.Raw for them.
type Datum struct {
	MetricName string
	Unit       string // "" when the request left it out
	// Value is NaN when the request left it out (a datum may carry Values
	// or StatisticValues instead), so that no comparison mistakes a missing
	// value for a number.
	Value float64
	// Timestamp is in UTC with millisecond precision: the SDK truncates
	// timestamps to whole milliseconds on the wire. Zero when the request
	// left it out.
	Timestamp  time.Time
	Dimensions map[string]string // name -> value; nil when there are none
}

// Call is one decoded PutMetricData request.
type Call struct {
	Namespace string
	Data      []Datum
	Header    http.Header
	Raw       []byte // the CBOR body, gunzipped if it was compressed
}

// Option configures a Handler or Server.
type Option func(*Handler)

// WithStatus makes status choose the HTTP status of the n-th recorded call
// (1-based, counting retries as calls). The default is 200. A status of 500
// or more is answered with an InternalServiceFault error (the SDK retries
// it), any other non-200 status with an InvalidParameterValue error. status
// runs on the server's goroutine.
func WithStatus(status func(n int) int) Option {
	return func(h *Handler) { h.status = status }
}

// OnCall makes f see every call as it is recorded, before it is answered;
// f runs on the server's goroutine.
func OnCall(f func(Call)) Option {
	return func(h *Handler) { h.onCall = f }
}

// Handler is the fake CloudWatch endpoint as an http.Handler, usable without
// a testing.TB (for instance by a demo program standing in for CloudWatch).
type Handler struct {
	onError func(error)
	status  func(n int) int
	onCall  func(Call)

	mu    sync.Mutex
	calls []Call
}

// NewHandler returns a Handler that passes every malformed request to
// onError (which may be nil) before answering it 400.
func NewHandler(onError func(error), opts ...Option) *Handler {
	h := &Handler{onError: onError}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Calls returns the well-formed requests received so far, in arrival order,
// whatever status they were answered with.
func (h *Handler) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Call(nil), h.calls...)
}

// ServeHTTP decodes and records one PutMetricData request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := decodeRequest(r)
	if err != nil {
		if h.onError != nil {
			h.onError(fmt.Errorf("cwtest: %s %s: %w", r.Method, r.URL.Path, err))
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.mu.Lock()
	h.calls = append(h.calls, c)
	n := len(h.calls)
	h.mu.Unlock()
	if h.onCall != nil {
		h.onCall(c)
	}
	status := http.StatusOK
	if h.status != nil {
		status = h.status(n)
	}
	if status != http.StatusOK {
		writeError(w, status, "injected failure")
		return
	}
	writeHeaders(w)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(cbor.Encode(cbor.Map{})) // PutMetricDataOutput has no members
}

func writeHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
}

// writeError answers with a CloudWatch error the SDK can deserialize.
func writeError(w http.ResponseWriter, status int, msg string) {
	code, shape := "InvalidParameterValue;Sender", "InvalidParameterValueException"
	if status >= 500 {
		code, shape = "InternalServiceError;Receiver", "InternalServiceFault"
	}
	writeHeaders(w)
	w.Header().Set("X-Amzn-Query-Error", code)
	w.WriteHeader(status)
	_, _ = w.Write(cbor.Encode(cbor.Map{
		"__type":  cbor.String("com.amazonaws.cloudwatch#" + shape),
		"message": cbor.String(msg),
	}))
}

// Server is a Handler behind an httptest.Server.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:PORT.
	URL string
	h   *Handler
}

// New starts a fake CloudWatch for the duration of t. Malformed requests
// fail t with t.Errorf.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	h := NewHandler(func(err error) { t.Errorf("%v", err) }, opts...)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Server{URL: srv.URL, h: h}
}

// Calls returns the well-formed requests received so far; see
// Handler.Calls.
func (s *Server) Calls() []Call { return s.h.Calls() }

// Handler returns the server's handler.
func (s *Server) Handler() http.Handler { return s.h }

// ClearAWSEnv keeps the developer's AWS environment out of t: the shared
// config and credentials files point to a file that does not exist and the
// variables that change how the SDK picks endpoints, profiles, retries and
// compression are set to "" (which the SDK treats as unset). Tests that set
// the process environment cannot run in parallel.
func ClearAWSEnv(t testing.TB) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	for _, k := range []string{
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_NEW_RETRIES_2026",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
		"AWS_DISABLE_REQUEST_COMPRESSION", "AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES",
	} {
		t.Setenv(k, "")
	}
}

// decodeRequest checks the protocol envelope and decodes the body.
func decodeRequest(r *http.Request) (Call, error) {
	if r.Method != http.MethodPost || r.URL.Path != PutMetricDataPath {
		return Call{}, errors.New("not a PutMetricData request (want POST " + PutMetricDataPath + ")")
	}
	if got := r.Header.Get("Smithy-Protocol"); got != "rpc-v2-cbor" {
		return Call{}, fmt.Errorf("Smithy-Protocol = %q, want rpc-v2-cbor", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/cbor" {
		return Call{}, fmt.Errorf("Content-Type = %q, want application/cbor", got)
	}
	var body io.Reader = r.Body
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip": // the SDK compresses bodies of 10 KiB or more
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return Call{}, fmt.Errorf("gzip body: %w", err)
		}
		body = zr
	default:
		return Call{}, fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return Call{}, fmt.Errorf("read body: %w", err)
	}
	c, err := decodeBody(raw)
	if err != nil {
		return Call{}, err
	}
	c.Header, c.Raw = r.Header.Clone(), raw
	return c, nil
}

func decodeBody(raw []byte) (Call, error) {
	v, err := cbor.Decode(raw)
	if err != nil {
		return Call{}, fmt.Errorf("decode CBOR body: %w", err)
	}
	m, ok := v.(cbor.Map)
	if !ok {
		return Call{}, fmt.Errorf("body is %T, want a map", v)
	}
	if err := onlyKeys(m, "Namespace", "MetricData"); err != nil {
		return Call{}, fmt.Errorf("request: %w", err)
	}
	var c Call
	if c.Namespace, err = str(m, "Namespace", true); err != nil {
		return Call{}, err
	}
	list, ok := m["MetricData"].(cbor.List)
	if !ok || len(list) == 0 {
		return Call{}, fmt.Errorf("MetricData is %#v, want a non-empty list", m["MetricData"])
	}
	for i, item := range list {
		d, err := decodeDatum(item)
		if err != nil {
			return Call{}, fmt.Errorf("MetricData[%d]: %w", i, err)
		}
		c.Data = append(c.Data, d)
	}
	return c, nil
}

func decodeDatum(v cbor.Value) (Datum, error) {
	m, ok := v.(cbor.Map)
	if !ok {
		return Datum{}, fmt.Errorf("datum is %T, want a map", v)
	}
	if err := onlyKeys(m, "MetricName", "Unit", "Value", "Timestamp", "Dimensions",
		"StatisticValues", "Values", "Counts", "StorageResolution"); err != nil {
		return Datum{}, err
	}
	var (
		d   = Datum{Value: math.NaN()}
		err error
	)
	if d.MetricName, err = str(m, "MetricName", true); err != nil {
		return Datum{}, err
	}
	if d.Unit, err = str(m, "Unit", false); err != nil {
		return Datum{}, err
	}
	if val, ok := m["Value"]; ok {
		if d.Value, err = finite(val); err != nil {
			return Datum{}, fmt.Errorf("member Value: %w", err)
		}
	}
	if ts, ok := m["Timestamp"]; ok {
		if d.Timestamp, err = timestamp(ts); err != nil {
			return Datum{}, fmt.Errorf("member Timestamp: %w", err)
		}
	}
	if dv, ok := m["Dimensions"]; ok {
		if d.Dimensions, err = dimensions(dv); err != nil {
			return Datum{}, fmt.Errorf("member Dimensions: %w", err)
		}
	}
	if err := checkUndecoded(m); err != nil {
		return Datum{}, err
	}
	return d, nil
}

// checkUndecoded type-checks the datum members that Datum does not carry.
func checkUndecoded(m cbor.Map) error {
	if v, ok := m["StatisticValues"]; ok {
		sv, ok := v.(cbor.Map)
		if !ok {
			return fmt.Errorf("StatisticValues is %T, want a map", v)
		}
		stats := []string{"SampleCount", "Sum", "Minimum", "Maximum"}
		if err := onlyKeys(sv, stats...); err != nil {
			return fmt.Errorf("StatisticValues: %w", err)
		}
		for _, k := range stats {
			n, ok := sv[k]
			if !ok {
				return fmt.Errorf("StatisticValues.%s is missing", k)
			}
			if _, err := finite(n); err != nil {
				return fmt.Errorf("StatisticValues.%s: %w", k, err)
			}
		}
	}
	for _, k := range []string{"Values", "Counts"} {
		v, ok := m[k]
		if !ok {
			continue
		}
		list, ok := v.(cbor.List)
		if !ok {
			return fmt.Errorf("%s is %T, want a list", k, v)
		}
		for i, n := range list {
			if _, err := finite(n); err != nil {
				return fmt.Errorf("%s[%d]: %w", k, i, err)
			}
		}
	}
	if v, ok := m["StorageResolution"]; ok {
		if _, isUint := v.(cbor.Uint); !isUint {
			if _, isNeg := v.(cbor.NegInt); !isNeg {
				return fmt.Errorf("StorageResolution is %#v, want an integer", v)
			}
		}
	}
	return nil
}

func dimensions(v cbor.Value) (map[string]string, error) {
	list, ok := v.(cbor.List)
	if !ok {
		return nil, fmt.Errorf("%T, want a list", v)
	}
	if len(list) == 0 {
		return nil, nil
	}
	dims := make(map[string]string, len(list))
	for i, item := range list {
		m, ok := item.(cbor.Map)
		if !ok {
			return nil, fmt.Errorf("[%d] is %T, want a map", i, item)
		}
		if err := onlyKeys(m, "Name", "Value"); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		name, err := str(m, "Name", true)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		value, err := str(m, "Value", true)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		if _, dup := dims[name]; dup {
			return nil, fmt.Errorf("dimension %q appears twice", name)
		}
		dims[name] = value
	}
	return dims, nil
}

func onlyKeys(m cbor.Map, allowed ...string) error {
next:
	for k := range m {
		for _, a := range allowed {
			if k == a {
				continue next
			}
		}
		return fmt.Errorf("member %q is not modelled by cwtest (want only %v)", k, allowed)
	}
	return nil
}

func str(m cbor.Map, key string, required bool) (string, error) {
	v, ok := m[key]
	if !ok {
		if required {
			return "", fmt.Errorf("%s is missing", key)
		}
		return "", nil
	}
	s, ok := v.(cbor.String)
	if !ok {
		return "", fmt.Errorf("%s is %T, want a text string", key, v)
	}
	return string(s), nil
}

// number decodes a Smithy double, which may be sent as any CBOR number.
func number(v cbor.Value) (float64, error) {
	switch n := v.(type) {
	case cbor.Float64:
		return float64(n), nil
	case cbor.Float32:
		return float64(n), nil
	case cbor.Uint:
		return float64(n), nil
	case cbor.NegInt:
		if n == 0 { // -2^64
			return -math.Pow(2, 64), nil
		}
		return -float64(n), nil
	}
	return 0, fmt.Errorf("%#v is not a CBOR number", v)
}

// finite is number for values CloudWatch accepts: not NaN or infinite.
func finite(v cbor.Value) (float64, error) {
	f, err := number(v)
	if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
		err = fmt.Errorf("%v is not a finite number", f)
	}
	return f, err
}

// timestamp decodes a Smithy timestamp, tag 1 around epoch seconds, rounded
// to the millisecond the SDK sends.
func timestamp(v cbor.Value) (time.Time, error) {
	tag, ok := v.(*cbor.Tag)
	if !ok || tag.ID != 1 {
		return time.Time{}, fmt.Errorf("%#v is not CBOR tag 1 (epoch seconds)", v)
	}
	sec, err := number(tag.Value)
	if err != nil {
		return time.Time{}, err
	}
	if math.IsNaN(sec) || math.IsInf(sec, 0) {
		return time.Time{}, fmt.Errorf("epoch seconds %v", sec)
	}
	return time.UnixMilli(int64(math.Round(sec * 1e3))).UTC(), nil
}
