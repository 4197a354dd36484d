package cwstandin

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// The CloudWatch API in the Smithy RPC v2 CBOR protocol: one path per
// operation under OperationPathPrefix.
const (
	OperationPathPrefix = "/service/GraniteServiceVersion20100801/operation/"
	PutMetricDataPath   = OperationPathPrefix + "PutMetricData"
	GetMetricDataPath   = OperationPathPrefix + "GetMetricData"
)

// cborOperation checks the RPC v2 CBOR envelope of r and returns the
// operation name and the (gunzipped) body.
func cborOperation(r *http.Request) (op string, raw []byte, err error) {
	op, ok := strings.CutPrefix(r.URL.Path, OperationPathPrefix)
	if r.Method != http.MethodPost || !ok || op == "" || strings.Contains(op, "/") {
		return "", nil, fmt.Errorf("not a CloudWatch request: want POST %s<Operation> (RPC v2 CBOR) or an X-Amz-Target: %s<Operation> header (CloudWatch Logs)", OperationPathPrefix, logsTargetPrefix)
	}
	if got := r.Header.Get("Smithy-Protocol"); got != "rpc-v2-cbor" {
		return op, nil, fmt.Errorf("Smithy-Protocol = %q, want rpc-v2-cbor", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/cbor" {
		return op, nil, fmt.Errorf("Content-Type = %q, want application/cbor", got)
	}
	raw, err = readBody(r)
	return op, raw, err
}

// readBody reads a request body, gunzipping it when the SDK compressed it
// (the CloudWatch client does for bodies of 10 KiB or more; awsemf may).
func readBody(r *http.Request) ([]byte, error) {
	var body io.Reader = r.Body
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		body = zr
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return raw, nil
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

// encMode encodes responses: timestamps as tag 1 around epoch seconds, as
// Smithy RPC v2 CBOR requires.
var encMode = func() cbor.EncMode {
	em, err := cbor.EncOptions{Time: cbor.TimeUnixDynamic, TimeTag: cbor.EncTagRequired}.EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// decode decodes one operation's input and checks what the CBOR types
// cannot say (required members, constraints).
func decode[T interface{ validate() error }](raw []byte) (T, error) {
	var in T
	if err := decMode.Unmarshal(raw, &in); err != nil {
		var unknown *cbor.UnknownFieldError
		if errors.As(err, &unknown) {
			err = fmt.Errorf("member not modelled by cwstandin: %w", err)
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

func writeCBORHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
}

func writeCBOR(w http.ResponseWriter, v any) {
	b, err := encMode.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("cwstandin: encode %T: %v", v, err)) // our own types always encode
	}
	writeCBORHeaders(w)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// CloudWatch error codes the stand-in answers with. CloudWatch is an
// awsQuery-compatible service: the SDK takes the code from the
// X-Amzn-Query-Error header.
const (
	codeInvalidParameter = "InvalidParameterValue" // modelled: *types.InvalidParameterValueException
	codeInternal         = "InternalServiceError"  // modelled: *types.InternalServiceFault
	codeValidation       = "ValidationError"       // not modelled: a smithy.GenericAPIError with this code
)

// writeCBORError answers with a CloudWatch error the SDK can deserialize.
func writeCBORError(w http.ResponseWriter, status int, code, msg string) {
	shape, fault := code, "Sender"
	switch code {
	case codeInvalidParameter:
		shape = "com.amazonaws.cloudwatch#InvalidParameterValueException"
	case codeInternal:
		shape, fault = "com.amazonaws.cloudwatch#InternalServiceFault", "Receiver"
	}
	b, err := encMode.Marshal(errorBody{Type: shape, Message: msg})
	if err != nil {
		panic(err)
	}
	writeCBORHeaders(w)
	w.Header().Set("X-Amzn-Query-Error", code+";"+fault)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// errorBody is the RPC v2 CBOR error document.
type errorBody struct {
	Type    string `cbor:"__type"`
	Message string `cbor:"message"`
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
