package cwstandin

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"
)

// Datum is one decoded MetricDatum. The members StatisticValues, Values,
// Counts and StorageResolution are checked but not carried; read Call.Raw
// for them (the stored Datapoints carry what they add up to).
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

func decodePutMetricData(raw []byte) (Call, []metricDatum, error) {
	in, err := decode[putMetricDataInput](raw)
	if err != nil {
		return Call{}, nil, err
	}
	c := Call{Namespace: *in.Namespace, Data: make([]Datum, len(in.MetricData))}
	for i, md := range in.MetricData {
		c.Data[i] = md.datum()
	}
	return c, in.MetricData, nil
}

// The PutMetricData shapes (com.amazonaws.cloudwatch). A field's name is
// its member's: decMode matches names exactly, and encMode writes them as
// they are. A nil pointer or slice is an absent member; a CBOR null decodes
// to absent too, as Smithy says it must.
type (
	putMetricDataInput struct {
		Namespace  *string
		MetricData []metricDatum
	}
	putMetricDataOutput struct{}

	metricDatum struct {
		MetricName        *string
		Dimensions        []dimension
		Timestamp         *epochTime
		Value             *float64
		StatisticValues   *statisticSet
		Values            []float64
		Counts            []float64
		Unit              *string
		StorageResolution *int32
	}
	dimension struct {
		Name  *string
		Value *string
	}
	statisticSet struct {
		SampleCount *float64
		Sum         *float64
		Minimum     *float64
		Maximum     *float64
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
	// CloudWatch answers InvalidParameterCombination when a datum carries
	// more than one of these; the stand-in would not know which to store.
	carried := 0
	for _, set := range []bool{d.Value != nil, d.Values != nil, d.StatisticValues != nil} {
		if set {
			carried++
		}
	}
	if carried > 1 {
		return errors.New("members Value, Values and StatisticValues are mutually exclusive")
	}
	if d.Counts != nil && len(d.Counts) != len(d.Values) {
		return fmt.Errorf("member Counts has %d items, Values %d: want as many", len(d.Counts), len(d.Values))
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

// sample is what a datum adds to its metric: CloudWatch keeps a statistic
// set per datum (a single Value is the set {1, v, v, v}; Values/Counts
// repeat each value Counts times). ok is false when the datum carries no
// value at all.
func (d metricDatum) sample() (s stats, ok bool) {
	switch {
	case d.StatisticValues != nil:
		v := d.StatisticValues
		return stats{Count: *v.SampleCount, Sum: *v.Sum, Min: *v.Minimum, Max: *v.Maximum}, true
	case d.Values != nil:
		for i, v := range d.Values {
			n := 1.0
			if d.Counts != nil {
				n = d.Counts[i]
			}
			s.add(stats{Count: n, Sum: v * n, Min: v, Max: v})
		}
		return s, len(d.Values) > 0
	case d.Value != nil:
		v := *d.Value
		return stats{Count: 1, Sum: v, Min: v, Max: v}, true
	}
	return stats{}, false
}
