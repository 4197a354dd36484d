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
// Decoding is strict: the body is decoded with fxamacker/cbor into typed
// structs that mirror the Smithy shapes (putMetricDataInput and its
// members), and a request that is not a well-formed PutMetricData (wrong
// operation or headers, bad CBOR, a member of the wrong type, a missing
// required member, an unknown member, a duplicate map key or dimension, a
// NaN or infinite number) is answered 400 InvalidParameterValue and reported
// (t.Errorf for New, the onError callback for NewHandler) instead of being
// recorded. The entity members EntityMetricData and StrictEntityValidation
// are not modelled and are rejected the same way. Another operation is one
// more pair of input/output structs with a validate method.
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

	"github.com/fxamacker/cbor/v2"
)

// PutMetricDataPath is the request path of PutMetricData in the RPC v2 CBOR
// protocol.
const PutMetricDataPath = "/service/GraniteServiceVersion20100801/operation/PutMetricData"

// Datum is one decoded MetricDatum. The members StatisticValues, Values,
// Counts and StorageResolution are checked but not carried; read Call.Raw
// for them.
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
	writeBody(w, putMetricDataOutput{})
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
	writeBody(w, errorBody{Type: "com.amazonaws.cloudwatch#" + shape, Message: msg})
}

// errorBody is the RPC v2 CBOR error document.
type errorBody struct {
	Type    string `cbor:"__type"`
	Message string `cbor:"message"`
}

func writeBody(w http.ResponseWriter, v any) {
	b, err := cbor.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("cwtest: encode %T: %v", v, err)) // our own types always encode
	}
	_, _ = w.Write(b)
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
	in, err := decode[putMetricDataInput](raw)
	if err != nil {
		return Call{}, err
	}
	c := Call{Namespace: *in.Namespace, Data: make([]Datum, len(in.MetricData))}
	for i, md := range in.MetricData {
		c.Data[i] = md.datum()
	}
	return c, nil
}

// decMode decodes Smithy RPC v2 CBOR bodies strictly: members are matched
// by their exact names, an unknown member, a duplicate key, NaN and
// infinities are errors. Indefinite-length maps and lists (what the SDK
// sends) are allowed.
var decMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		UTF8:              cbor.UTF8RejectInvalid,
		NaN:               cbor.NaNDecodeForbidden,
		Inf:               cbor.InfDecodeForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// decode decodes one operation's input and checks what the CBOR types
// cannot say (required members, constraints).
func decode[T interface{ validate() error }](raw []byte) (T, error) {
	var in T
	if err := decMode.Unmarshal(raw, &in); err != nil {
		var unknown *cbor.UnknownFieldError
		if errors.As(err, &unknown) {
			err = fmt.Errorf("member not modelled by cwtest: %w", err)
		}
		return in, fmt.Errorf("decode CBOR body %s: %w", diagnose(raw), err)
	}
	return in, in.validate()
}

// diagnose renders the start of a body in CBOR diagnostic notation, so an
// error shows what was sent (the library's errors name a map index, not the
// member).
func diagnose(raw []byte) string {
	const limit = 300
	d, err := cbor.Diagnose(raw)
	if err != nil {
		return fmt.Sprintf("(%d bytes, not well-formed)", len(raw))
	}
	if len(d) > limit {
		d = d[:limit] + "..."
	}
	return d
}

// The PutMetricData shapes (com.amazonaws.cloudwatch). A nil pointer or
// slice is an absent member; a CBOR null decodes to absent too, as Smithy
// says it must.
type (
	putMetricDataInput struct {
		Namespace  *string       `cbor:"Namespace"`
		MetricData []metricDatum `cbor:"MetricData"`
	}
	putMetricDataOutput struct{}

	metricDatum struct {
		MetricName        *string       `cbor:"MetricName"`
		Dimensions        []dimension   `cbor:"Dimensions"`
		Timestamp         *epochTime    `cbor:"Timestamp"`
		Value             *float64      `cbor:"Value"`
		StatisticValues   *statisticSet `cbor:"StatisticValues"`
		Values            []float64     `cbor:"Values"`
		Counts            []float64     `cbor:"Counts"`
		Unit              *string       `cbor:"Unit"`
		StorageResolution *int32        `cbor:"StorageResolution"`
	}
	dimension struct {
		Name  *string `cbor:"Name"`
		Value *string `cbor:"Value"`
	}
	statisticSet struct {
		SampleCount *float64 `cbor:"SampleCount"`
		Sum         *float64 `cbor:"Sum"`
		Minimum     *float64 `cbor:"Minimum"`
		Maximum     *float64 `cbor:"Maximum"`
	}
)

func (in putMetricDataInput) validate() error {
	if in.Namespace == nil {
		return errors.New("member Namespace is missing")
	}
	if len(in.MetricData) == 0 {
		return errors.New("member MetricData is missing or empty, want a non-empty list")
	}
	for i, d := range in.MetricData {
		if err := d.validate(); err != nil {
			return fmt.Errorf("MetricData[%d]: %w", i, err)
		}
	}
	return nil
}

func (d metricDatum) validate() error {
	if d.MetricName == nil {
		return errors.New("member MetricName is missing")
	}
	if s := d.StatisticValues; s != nil {
		names := [...]string{"SampleCount", "Sum", "Minimum", "Maximum"}
		for i, v := range [...]*float64{s.SampleCount, s.Sum, s.Minimum, s.Maximum} {
			if v == nil {
				return fmt.Errorf("member StatisticValues.%s is missing", names[i])
			}
		}
	}
	seen := make(map[string]bool, len(d.Dimensions))
	for i, dim := range d.Dimensions {
		switch {
		case dim.Name == nil:
			return fmt.Errorf("member Dimensions[%d].Name is missing", i)
		case dim.Value == nil:
			return fmt.Errorf("member Dimensions[%d].Value is missing", i)
		case seen[*dim.Name]:
			return fmt.Errorf("dimension %q appears twice", *dim.Name)
		}
		seen[*dim.Name] = true
	}
	return nil
}

// datum is what a Call carries of a validated metricDatum.
func (d metricDatum) datum() Datum {
	out := Datum{MetricName: *d.MetricName, Value: math.NaN()}
	if d.Unit != nil {
		out.Unit = *d.Unit
	}
	if d.Value != nil {
		out.Value = *d.Value
	}
	if d.Timestamp != nil {
		out.Timestamp = time.Time(*d.Timestamp)
	}
	if len(d.Dimensions) > 0 {
		out.Dimensions = make(map[string]string, len(d.Dimensions))
		for _, dim := range d.Dimensions {
			out.Dimensions[*dim.Name] = *dim.Value
		}
	}
	return out
}

// epochTime is a Smithy timestamp: CBOR tag 1 around epoch seconds (any
// CBOR number), kept to the millisecond the SDK sends.
type epochTime time.Time

func (t *epochTime) UnmarshalCBOR(data []byte) error {
	var tag cbor.RawTag
	if err := decMode.Unmarshal(data, &tag); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	if tag.Number != 1 {
		return fmt.Errorf("timestamp has tag %d, want tag 1 (epoch seconds)", tag.Number)
	}
	var sec float64
	if err := decMode.Unmarshal(tag.Content, &sec); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	*t = epochTime(time.UnixMilli(int64(math.Round(sec * 1e3))).UTC())
	return nil
}
