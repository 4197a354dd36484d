// Package cwstandin is a loopback Amazon CloudWatch for the tests and make
// demo: a STAND-IN, not an emulator of the whole service. It exists because nothing
// that runs here speaks the protocol the SDKs use: aws-sdk-go-v2's
// CloudWatch client (v1.53 and later) talks Smithy RPC v2 CBOR, the moto
// 5.2.1 server answers that with 404, and moto's Metrics Insights
// SELECT AVG(m) FROM ns over two series (4 and 2) returned their sum, 6.
//
// One server (one URL) answers both services, told apart the way the SDKs
// address them:
//
//   - CloudWatch, Smithy RPC v2 CBOR, POST /service/GraniteServiceVersion20100801/operation/<Op>:
//     PutMetricData stores datapoints; GetMetricData answers Metrics
//     Insights queries and MetricStat queries from them (see below).
//   - CloudWatch Logs, AWS JSON 1.1, POST / with X-Amz-Target: Logs_20140328.<Op>:
//     CreateLogGroup, CreateLogStream (ResourceAlreadyExistsException when
//     they exist, ResourceNotFoundException for a stream of a missing
//     group), PutRetentionPolicy, and PutLogEvents (ResourceNotFoundException
//     for a missing group or stream, as awsemf expects), which keeps every
//     event as sent (LogEvents) and turns embedded metric format records
//     into datapoints as CloudWatch documents EMF extraction (extractEMF).
//
// So AWS_ENDPOINT_URL_CLOUDWATCH, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS, the
// collector's awsemf `endpoint:` and KEDA's awsEndpoint all take the URL a
// Handler is served at (a test starts one with cwtest.New; make demo serves
// NewHandler itself). Signatures are not checked; any static credentials do.
//
//	cw := cwtest.New(t)
//	cwtest.ClearAWSEnv(t)
//	client := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(cw.URL) })
//	// ... code under test publishes ...
//	calls := cw.Calls()          // PutMetricData requests, decoded
//	points := cw.Datapoints()    // what CloudWatch would store
//	// ... and GetMetricData answers from points.
//
// What the SDK sends for one PutMetricData datum (observed against this
// stand-in):
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
// # GetMetricData
//
// Each MetricDataQuery is a MetricStat (the metric with exactly that
// namespace, name and dimension set; Average, Sum, Minimum, Maximum or
// SampleCount; Unit filters when set) or an Expression holding one Metrics
// Insights query of this subset (what the shipped triggers use):
//
//	SELECT AVG|SUM|MIN|MAX|COUNT(metric) FROM namespace | SCHEMA(namespace[, dim ...])
//	[WHERE dim = 'value' [AND ...]]
//
// with CloudWatch's documented semantics: plain FROM matches every series
// of the metric in the namespace whatever its dimensions, SCHEMA only the
// exact dimension set; the function pools the observations of every matched
// series in each period bucket (AVG = their mean, SUM their sum, COUNT the
// sample count); buckets start at StartTime rounded as CloudWatch rounds it,
// EndTime is exclusive, a bucket without data has no value, results are
// newest first unless ScanBy is TimestampAscending, and no data gives an
// empty result. Anything else — GROUP BY, ORDER BY, LIMIT, !=, OR, metric
// math, SEARCH, percentile statistics, cross-account, pagination, more than
// one Insights query per request — is answered 400 ValidationError naming
// what is not supported, never approximately. Not modelled: storage
// resolution (data is kept as sent, any period may read it), the 3-hour
// limit of Metrics Insights, data retention.
//
// # Strictness
//
// Bodies are decoded strictly into typed structs that mirror the Smithy
// shapes (CBOR with fxamacker/cbor, JSON with exact member names): a
// request that is not well-formed (wrong operation or headers, bad CBOR or
// JSON, a member of the wrong type, a missing required member, an unknown
// member, a duplicate map key or dimension, a NaN or infinite number) and a
// GetMetricData the stand-in does not evaluate are answered 400 and
// reported (the onError callback of NewHandler; cwtest.New makes it t.Errorf); for
// CloudWatch the error is InvalidParameterValue for a malformed request and
// ValidationError for a query, for Logs SerializationException,
// InvalidParameterException or UnknownOperationException. The Logs answers
// ResourceNotFoundException and ResourceAlreadyExistsException are part of
// the normal flow and not reported. The PutMetricData entity members
// EntityMetricData and StrictEntityValidation are not modelled and are
// rejected.
package cwstandin

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Option configures a Handler.
type Option func(*Handler)

// WithStatus makes status choose the HTTP status of the n-th recorded
// PutMetricData call (1-based, counting retries as calls). The default is
// 200. A status of 500 or more is answered with an InternalServiceFault
// error (the SDK retries it), any other non-200 status with an
// InvalidParameterValue error; the datapoints of a call not answered 200 are
// not stored. status runs on the server's goroutine.
func WithStatus(status func(n int) int) Option {
	return func(h *Handler) { h.status = status }
}

// OnCall makes f see every PutMetricData call as it is recorded, before it
// is answered; f runs on the server's goroutine.
func OnCall(f func(Call)) Option {
	return func(h *Handler) { h.onCall = f }
}

// WithTimeShift is TEST-ONLY time travel: every datapoint is stored at its
// timestamp plus d (PutMetricData datums and EMF records alike; Calls and
// LogEvents keep the timestamps as sent). A trigger that reads "the newest
// whole minute ending metricEndTimeOffset seconds ago" can then be tested
// against data produced moments ago: with d = -2 minutes, a query at time T
// with period 60 and offset 60 reads the bucket holding what was sent since
// the start of T's minute. Real CloudWatch has no such thing.
func WithTimeShift(d time.Duration) Option {
	return func(h *Handler) { h.shift = d }
}

// Handler is the stand-in as an http.Handler, usable without a testing.TB
// (for instance by a demo program standing in for CloudWatch).
type Handler struct {
	onError func(error)
	status  func(n int) int
	onCall  func(Call)
	shift   time.Duration
	now     func() time.Time

	mu     sync.Mutex
	calls  []Call
	points []Datapoint
	groups map[string]map[string]bool // log group -> its streams
	events []LogEvent
}

// NewHandler returns a Handler that passes every malformed or unsupported
// request to onError (which may be nil) before answering it 400.
func NewHandler(onError func(error), opts ...Option) *Handler {
	h := &Handler{onError: onError, now: time.Now, groups: map[string]map[string]bool{}}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Calls returns the well-formed PutMetricData requests received so far, in
// arrival order, whatever status they were answered with.
func (h *Handler) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Call(nil), h.calls...)
}

// Datapoints returns every stored datapoint (from PutMetricData and EMF),
// in arrival order.
func (h *Handler) Datapoints() []Datapoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Datapoint(nil), h.points...)
}

// LogEvents returns every event of the accepted PutLogEvents requests, in
// arrival order.
func (h *Handler) LogEvents() []LogEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]LogEvent(nil), h.events...)
}

// ServeHTTP routes one request: CloudWatch Logs by X-Amz-Target, CloudWatch
// by path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		h.serveLogs(w, r, target)
		return
	}
	op, raw, err := cborOperation(r)
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, codeInvalidParameter, err)
		return
	}
	switch op {
	case "PutMetricData":
		h.putMetricData(w, r, raw)
	case "GetMetricData":
		h.getMetricData(w, r, raw)
	default:
		h.reject(w, r, http.StatusBadRequest, codeInvalidParameter,
			fmt.Errorf("operation %s is not supported by cwstandin (PutMetricData, GetMetricData)", op))
	}
}

// reject reports err and answers it as a CloudWatch error.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, status int, code string, err error) {
	if h.onError != nil {
		h.onError(fmt.Errorf("cwstandin: %s %s: %w", r.Method, r.URL.Path, err))
	}
	writeCBORError(w, status, code, err.Error())
}

func (h *Handler) putMetricData(w http.ResponseWriter, r *http.Request, raw []byte) {
	c, data, err := decodePutMetricData(raw)
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, codeInvalidParameter, err)
		return
	}
	c.Header, c.Raw = r.Header.Clone(), raw
	received := h.now().UTC()
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
		code := codeInvalidParameter
		if status >= 500 {
			code = codeInternal
		}
		writeCBORError(w, status, code, "injected failure")
		return
	}
	points := make([]Datapoint, 0, len(data))
	for i, d := range data {
		s, ok := d.sample()
		if !ok {
			continue // a datum without a value stores nothing
		}
		ts := c.Data[i].Timestamp
		if ts.IsZero() {
			ts = received // "If you omit Timestamp, CloudWatch uses the time it receives the data"
		}
		unit := c.Data[i].Unit
		if unit == "" {
			unit = "None"
		}
		points = append(points, Datapoint{
			Namespace: c.Namespace, MetricName: c.Data[i].MetricName, Dimensions: maps.Clone(c.Data[i].Dimensions),
			Unit: unit, Timestamp: ts.Add(h.shift), Stats: s.public(), Source: SourcePutMetricData,
		})
	}
	h.mu.Lock()
	h.points = append(h.points, points...)
	h.mu.Unlock()
	writeCBOR(w, putMetricDataOutput{})
}

func (h *Handler) getMetricData(w http.ResponseWriter, r *http.Request, raw []byte) {
	in, err := decode[getMetricDataInput](raw)
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, codeInvalidParameter, err)
		return
	}
	out, err := evaluate(in, h.Datapoints())
	if err != nil {
		code := codeInvalidParameter
		var v *validationError
		if errors.As(err, &v) {
			code = codeValidation
		}
		h.reject(w, r, http.StatusBadRequest, code, err)
		return
	}
	writeCBOR(w, out)
}

func (h *Handler) serveLogs(w http.ResponseWriter, r *http.Request, target string) {
	op, ok := strings.CutPrefix(target, logsTargetPrefix)
	var (
		out any
		err error
	)
	if !ok || r.Method != http.MethodPost {
		err = badLogsRequest("UnknownOperationException", "X-Amz-Target %q on %s: want POST with %s<Operation>", target, r.Method, logsTargetPrefix)
	} else {
		out, err = h.logs(op, r)
	}
	if err == nil {
		writeLogsJSON(w, http.StatusOK, out)
		return
	}
	var le *logsError
	if !errors.As(err, &le) {
		le = &logsError{Type: "ServiceUnavailableException", Message: err.Error(), report: true}
	}
	if le.report && h.onError != nil {
		h.onError(fmt.Errorf("cwstandin: Logs %s: %w", target, le))
	}
	writeLogsJSON(w, http.StatusBadRequest, map[string]string{"__type": le.Type, "message": le.Message})
}
