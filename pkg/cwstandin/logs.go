package cwstandin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"
)

// logsTargetPrefix starts the X-Amz-Target header of every CloudWatch Logs
// operation (AWS JSON 1.1).
const logsTargetPrefix = "Logs_20140328."

// LogEvent is one event a PutLogEvents request carried, kept as sent.
type LogEvent struct {
	Group, Stream string
	Timestamp     time.Time // the event's own timestamp (ms)
	Message       string    // the raw record
	// EMF is true when the message is an embedded metric format record: a
	// JSON object with an "_aws" member, sent with the header
	// x-amzn-logs-format: json/emf that the EMF specification requires.
	EMF bool
	// EMFError says why no metrics were extracted from an EMF record; ""
	// when they were. CloudWatch accepts such events as plain logs (and
	// counts them in AWS/Logs EMFValidationErrors); so does the stand-in.
	EMFError string
	Header   http.Header // the request's headers
}

// logsError is an AWS JSON 1.1 error: status 400, {"__type", "message"}.
type logsError struct {
	Type, Message string
	report        bool // a malformed request, passed to onError
}

func (e *logsError) Error() string { return e.Type + ": " + e.Message }

func badLogsRequest(typ, format string, args ...any) *logsError {
	return &logsError{Type: typ, Message: fmt.Sprintf(format, args...), report: true}
}

func writeLogsJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// The CloudWatch Logs shapes the stand-in answers (com.amazonaws.cloudwatchlogs).
type (
	createLogGroupInput struct {
		LogGroupName              *string           `json:"logGroupName"`
		KmsKeyId                  *string           `json:"kmsKeyId"`
		Tags                      map[string]string `json:"tags"`
		LogGroupClass             *string           `json:"logGroupClass"`
		DeletionProtectionEnabled *bool             `json:"deletionProtectionEnabled"`
	}
	createLogStreamInput struct {
		LogGroupName  *string `json:"logGroupName"`
		LogStreamName *string `json:"logStreamName"`
	}
	putRetentionPolicyInput struct {
		LogGroupName    *string `json:"logGroupName"`
		RetentionInDays *int32  `json:"retentionInDays"`
	}
	putLogEventsInput struct {
		LogGroupName  *string         `json:"logGroupName"`
		LogStreamName *string         `json:"logStreamName"`
		LogEvents     []inputLogEvent `json:"logEvents"`
		SequenceToken *string         `json:"sequenceToken"` // ignored, as CloudWatch now does
		Entity        json.RawMessage `json:"entity"`        // accepted, not modelled
	}
	inputLogEvent struct {
		Timestamp *int64  `json:"timestamp"`
		Message   *string `json:"message"`
	}
)

// decodeJSON decodes an AWS JSON 1.1 body strictly: every member must be
// one the shape has, spelled exactly (encoding/json alone matches names
// case-insensitively).
func decodeJSON(raw []byte, v any) error {
	if err := exactMembers(raw, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON document")
	}
	return nil
}

// exactMembers checks the top-level member names of raw against v's json
// tags.
func exactMembers(raw []byte, v any) error {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return err
	}
	known := jsonNames(v)
	for name := range members {
		if !slices.Contains(known, name) {
			return fmt.Errorf("member %q not modelled by cwstandin (want one of %v)", name, known)
		}
	}
	return nil
}

// logs handles one CloudWatch Logs request; op is the X-Amz-Target suffix.
func (h *Handler) logs(op string, r *http.Request) (any, error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		return nil, badLogsRequest("SerializationException", "Content-Type = %q, want application/x-amz-json-1.1", ct)
	}
	raw, err := readBody(r)
	if err != nil {
		return nil, badLogsRequest("SerializationException", "%v", err)
	}
	decodeErr := func(err error) error {
		return badLogsRequest("SerializationException", "%s body %s: %v", op, raw, err)
	}
	switch op {
	case "CreateLogGroup":
		var in createLogGroupInput
		if err := decodeJSON(raw, &in); err != nil {
			return nil, decodeErr(err)
		}
		if in.LogGroupName == nil || *in.LogGroupName == "" {
			return nil, badLogsRequest("InvalidParameterException", "logGroupName is required")
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.groups[*in.LogGroupName]; ok {
			return nil, &logsError{Type: "ResourceAlreadyExistsException", Message: "The specified log group already exists"}
		}
		h.groups[*in.LogGroupName] = map[string]bool{}
		return struct{}{}, nil
	case "CreateLogStream":
		var in createLogStreamInput
		if err := decodeJSON(raw, &in); err != nil {
			return nil, decodeErr(err)
		}
		if in.LogGroupName == nil || in.LogStreamName == nil || *in.LogStreamName == "" {
			return nil, badLogsRequest("InvalidParameterException", "logGroupName and logStreamName are required")
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		streams, ok := h.groups[*in.LogGroupName]
		switch {
		case !ok:
			return nil, &logsError{Type: "ResourceNotFoundException", Message: "The specified log group does not exist."}
		case streams[*in.LogStreamName]:
			return nil, &logsError{Type: "ResourceAlreadyExistsException", Message: "The specified log stream already exists"}
		}
		streams[*in.LogStreamName] = true
		return struct{}{}, nil
	case "PutRetentionPolicy": // awsemf calls it after CreateLogGroup when log_retention is set
		var in putRetentionPolicyInput
		if err := decodeJSON(raw, &in); err != nil {
			return nil, decodeErr(err)
		}
		if in.LogGroupName == nil || in.RetentionInDays == nil {
			return nil, badLogsRequest("InvalidParameterException", "logGroupName and retentionInDays are required")
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.groups[*in.LogGroupName]; !ok {
			return nil, &logsError{Type: "ResourceNotFoundException", Message: "The specified log group does not exist."}
		}
		return struct{}{}, nil
	case "PutLogEvents":
		var in putLogEventsInput
		if err := decodeJSON(raw, &in); err != nil {
			return nil, decodeErr(err)
		}
		if err := in.validate(); err != nil {
			return nil, err
		}
		if err := h.putLogEvents(in, r.Header); err != nil {
			return nil, err
		}
		// CloudWatch Logs still answers a (deprecated, ignored) sequence
		// token, and awsemf depends on it: its PutLogEvents loop
		// (internal/aws/cwlogs) re-sends the same batch up to retryCnt more
		// times until the answer carries nextSequenceToken, so an answer
		// without one makes every EMF record arrive three times.
		h.mu.Lock()
		n := len(h.events)
		h.mu.Unlock()
		return map[string]string{"nextSequenceToken": fmt.Sprintf("%056d", n)}, nil
	}
	return nil, badLogsRequest("UnknownOperationException", "operation %s is not supported by cwstandin (CreateLogGroup, CreateLogStream, PutRetentionPolicy, PutLogEvents)", op)
}

// validate checks the constraints the PutLogEvents reference lists that a
// client can get wrong: required members, at least one event, events in
// chronological order, a batch spanning at most 24 hours.
func (in putLogEventsInput) validate() error {
	if in.LogGroupName == nil || in.LogStreamName == nil {
		return badLogsRequest("InvalidParameterException", "logGroupName and logStreamName are required")
	}
	if len(in.LogEvents) == 0 {
		return badLogsRequest("InvalidParameterException", "logEvents must hold at least one event")
	}
	for i, e := range in.LogEvents {
		if e.Timestamp == nil || e.Message == nil || *e.Message == "" {
			return badLogsRequest("InvalidParameterException", "logEvents[%d]: timestamp and a non-empty message are required", i)
		}
		if i > 0 && *e.Timestamp < *in.LogEvents[i-1].Timestamp {
			return badLogsRequest("InvalidParameterException", "Log events in a single PutLogEvents request must be in chronological order (logEvents[%d])", i)
		}
	}
	if span := *in.LogEvents[len(in.LogEvents)-1].Timestamp - *in.LogEvents[0].Timestamp; span > 24*time.Hour.Milliseconds() {
		return badLogsRequest("InvalidParameterException", "A batch of log events in a single request cannot span more than 24 hours")
	}
	return nil
}

func (h *Handler) putLogEvents(in putLogEventsInput, header http.Header) error {
	emfHeader := strings.EqualFold(header.Get("X-Amzn-Logs-Format"), "json/emf")
	events := make([]LogEvent, len(in.LogEvents))
	var points []Datapoint
	for i, e := range in.LogEvents {
		ev := LogEvent{
			Group: *in.LogGroupName, Stream: *in.LogStreamName,
			Timestamp: time.UnixMilli(*e.Timestamp).UTC(), Message: *e.Message, Header: header,
		}
		if emfHeader && hasAWSMember(ev.Message) {
			ev.EMF = true
			ps, err := extractEMF(ev.Message, h.shift)
			if err != nil {
				ev.EMFError = err.Error()
			}
			points = append(points, ps...)
		}
		events[i] = ev
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	streams, ok := h.groups[*in.LogGroupName]
	switch {
	case !ok:
		return &logsError{Type: "ResourceNotFoundException", Message: "The specified log group does not exist."}
	case !streams[*in.LogStreamName]:
		return &logsError{Type: "ResourceNotFoundException", Message: "The specified log stream does not exist."}
	}
	h.events = append(h.events, events...)
	h.points = append(h.points, points...)
	return nil
}

func hasAWSMember(msg string) bool {
	var root map[string]json.RawMessage
	if json.Unmarshal([]byte(msg), &root) != nil {
		return false
	}
	_, ok := root["_aws"]
	return ok
}

// extractEMF turns one EMF record into datapoints the way the EMF
// specification says CloudWatch does
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
// for every MetricDirective in _aws.CloudWatchMetrics, every DimensionSet
// in its Dimensions and every MetricDefinition in its Metrics, one metric
// in the directive's Namespace named by the definition's Name, whose
// dimensions are the set's keys with the string values of the root members
// of those names, whose value is the root member named like the metric (a
// number, or an array of up to 100 numbers: one sample each), with the
// definition's Unit (default "None"), at _aws.Timestamp (milliseconds since
// the epoch). "Every DimensionSet used creates a new metric": a record with
// two sets yields each value twice, once per dimension set. An empty set
// gives a metric without dimensions. A record that breaks a MUST of the
// specification yields no datapoints at all and an error.
func extractEMF(msg string, shift time.Duration) ([]Datapoint, error) {
	dec := json.NewDecoder(strings.NewReader(msg))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	aws, ok := root["_aws"].(map[string]any)
	if !ok {
		return nil, errors.New("_aws is not an object")
	}
	tsNum, ok := aws["Timestamp"].(json.Number)
	if !ok {
		return nil, errors.New("_aws.Timestamp is missing or not a number")
	}
	ms, err := tsNum.Int64()
	if err != nil {
		return nil, fmt.Errorf("_aws.Timestamp %s is not an integer number of milliseconds", tsNum)
	}
	ts := time.UnixMilli(ms).UTC().Add(shift)
	directives, ok := aws["CloudWatchMetrics"].([]any)
	if !ok {
		return nil, errors.New("_aws.CloudWatchMetrics is missing or not an array")
	}
	var points []Datapoint
	for i, d := range directives {
		dir, ok := d.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("CloudWatchMetrics[%d] is not an object", i)
		}
		ns, _ := dir["Namespace"].(string)
		if ns == "" {
			return nil, fmt.Errorf("CloudWatchMetrics[%d].Namespace is missing or not a non-empty string", i)
		}
		sets, ok := dir["Dimensions"].([]any)
		if !ok || len(sets) == 0 {
			return nil, fmt.Errorf("CloudWatchMetrics[%d].Dimensions is missing or not a non-empty array of dimension sets", i)
		}
		metrics, ok := dir["Metrics"].([]any)
		if !ok || len(metrics) > 100 {
			return nil, fmt.Errorf("CloudWatchMetrics[%d].Metrics is missing, not an array or longer than 100", i)
		}
		dimSets := make([]map[string]string, len(sets))
		for j, s := range sets {
			keys, ok := s.([]any)
			if !ok {
				return nil, fmt.Errorf("CloudWatchMetrics[%d].Dimensions[%d] is not an array", i, j)
			}
			dims := map[string]string{}
			for _, k := range keys {
				key, ok := k.(string)
				if !ok {
					return nil, fmt.Errorf("CloudWatchMetrics[%d].Dimensions[%d] holds a non-string", i, j)
				}
				val, ok := root[key].(string)
				if !ok {
					return nil, fmt.Errorf("dimension %q: the root member is missing or not a string", key)
				}
				dims[key] = val
			}
			if len(dims) == 0 {
				dims = nil
			}
			dimSets[j] = dims
		}
		for j, m := range metrics {
			def, ok := m.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("CloudWatchMetrics[%d].Metrics[%d] is not an object", i, j)
			}
			name, _ := def["Name"].(string)
			if name == "" {
				return nil, fmt.Errorf("CloudWatchMetrics[%d].Metrics[%d].Name is missing", i, j)
			}
			unit := "None"
			if u, ok := def["Unit"].(string); ok && u != "" {
				unit = u
			}
			values, err := metricValues(root[name])
			if err != nil {
				return nil, fmt.Errorf("metric %q: %v", name, err)
			}
			for _, dims := range dimSets {
				for _, v := range values {
					points = append(points, Datapoint{
						Namespace: ns, MetricName: name, Dimensions: dims, Unit: unit, Timestamp: ts,
						Stats: Stats{SampleCount: 1, Sum: v, Minimum: v, Maximum: v}, Source: SourceEMF,
					})
				}
			}
		}
	}
	return points, nil
}

// metricValues reads a metric target member: a number or an array of up to
// 100 numbers.
func metricValues(v any) ([]float64, error) {
	num := func(x any) (float64, error) {
		n, ok := x.(json.Number)
		if !ok {
			return 0, fmt.Errorf("value %v is not a number", x)
		}
		return n.Float64()
	}
	switch v := v.(type) {
	case nil:
		return nil, errors.New("the root member is missing")
	case []any:
		if len(v) > 100 {
			return nil, fmt.Errorf("array of %d values, more than 100", len(v))
		}
		out := make([]float64, len(v))
		for i, x := range v {
			f, err := num(x)
			if err != nil {
				return nil, err
			}
			out[i] = f
		}
		return out, nil
	default:
		f, err := num(v)
		if err != nil {
			return nil, err
		}
		return []float64{f}, nil
	}
}

// jsonNames lists the json member names of the struct v points to.
func jsonNames(v any) []string {
	t := reflect.TypeOf(v).Elem()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}
