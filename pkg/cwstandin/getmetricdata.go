package cwstandin

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// The GetMetricData shapes (com.amazonaws.cloudwatch), modelled member for
// member so that nothing the SDK sends goes unnoticed; field names are
// member names, as for PutMetricData.
type (
	getMetricDataInput struct {
		MetricDataQueries []metricDataQuery
		StartTime         *epochTime
		EndTime           *epochTime
		NextToken         *string
		ScanBy            *string
		MaxDatapoints     *int32
		LabelOptions      *labelOptions
	}
	labelOptions struct {
		Timezone *string
	}
	metricDataQuery struct {
		Id         *string
		MetricStat *metricStat
		Expression *string
		Label      *string
		ReturnData *bool
		Period     *int32
		AccountId  *string
	}
	metricStat struct {
		Metric *metricShape
		Period *int32
		Stat   *string
		Unit   *string
	}
	metricShape struct {
		Namespace  *string
		MetricName *string
		Dimensions []dimension
	}

	getMetricDataOutput struct {
		MetricDataResults []metricDataResult
		Messages          []messageData
	}
	metricDataResult struct {
		Id         string
		Label      string
		Timestamps []time.Time
		Values     []float64
		StatusCode string
		Messages   []messageData
	}
	messageData struct {
		Code  string
		Value string
	}
)

// validate checks the members the API marks required and their types'
// constraints; what the stand-in does not evaluate is a validationError
// from evaluate.
func (in getMetricDataInput) validate() error {
	switch {
	case len(in.MetricDataQueries) == 0:
		return errors.New("member MetricDataQueries is missing or empty")
	case in.StartTime == nil:
		return errors.New("member StartTime is missing")
	case in.EndTime == nil:
		return errors.New("member EndTime is missing")
	}
	for i, q := range in.MetricDataQueries {
		if q.Id == nil {
			return fmt.Errorf("MetricDataQueries[%d]: member Id is missing", i)
		}
		if m := q.MetricStat; m != nil && (m.Metric == nil || m.Period == nil || m.Stat == nil) {
			return fmt.Errorf("MetricDataQueries[%d]: MetricStat needs Metric, Period and Stat", i)
		}
		if m := q.MetricStat; m != nil {
			for j, d := range m.Metric.Dimensions {
				if d.Name == nil || d.Value == nil {
					return fmt.Errorf("MetricDataQueries[%d]: Metric.Dimensions[%d] needs Name and Value", i, j)
				}
			}
		}
	}
	return nil
}

// validationError is a query CloudWatch would reject, or one the stand-in
// does not evaluate: answered 400 ValidationError.
type validationError struct{ msg string }

func (e *validationError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &validationError{fmt.Sprintf(format, args...)}
}

// queryID is the documented pattern of MetricDataQuery.Id.
var queryID = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

// statistics are the MetricStat statistics the stand-in computes.
var statistics = map[string]func(stats) float64{
	"Average":     func(s stats) float64 { return s.Sum / s.Count },
	"Sum":         func(s stats) float64 { return s.Sum },
	"Minimum":     func(s stats) float64 { return s.Min },
	"Maximum":     func(s stats) float64 { return s.Max },
	"SampleCount": func(s stats) float64 { return s.Count },
}

// validPeriod: 1, 5, 10, 20, 30 or a multiple of 60 (MetricDataQuery.Period
// and MetricStat.Period in the API reference).
func validPeriod(p int32) bool {
	switch p {
	case 1, 5, 10, 20, 30:
		return true
	}
	return p > 0 && p%60 == 0
}

// evaluate answers a GetMetricData request from the stored datapoints.
// Each query is either a MetricStat (the metric with exactly the given
// namespace, name and dimensions, and the given unit if one is set) or a
// Metrics Insights query (see insightsQuery); at most one Insights query
// per request, as in CloudWatch.
func evaluate(in getMetricDataInput, points []Datapoint) (getMetricDataOutput, error) {
	out := getMetricDataOutput{MetricDataResults: []metricDataResult{}, Messages: []messageData{}}
	start, end := time.Time(*in.StartTime), time.Time(*in.EndTime)
	if !start.Before(end) {
		return out, invalid("The parameter StartTime must be less than the parameter EndTime.")
	}
	if in.NextToken != nil {
		return out, invalid("NextToken: pagination is not modelled by cwstandin")
	}
	descending := true // "If you omit this parameter, the default of TimestampDescending is used."
	if in.ScanBy != nil {
		switch *in.ScanBy {
		case "TimestampDescending":
		case "TimestampAscending":
			descending = false
		default:
			return out, invalid("ScanBy %q: want TimestampDescending or TimestampAscending", *in.ScanBy)
		}
	}
	insights := 0
	total := 0
	seen := map[string]bool{}
	for i, q := range in.MetricDataQueries {
		id := *q.Id
		if !queryID.MatchString(id) {
			return out, invalid("MetricDataQueries[%d].Id %q: must start with a lowercase letter and hold only letters, digits and _", i, id)
		}
		if seen[id] {
			return out, invalid("MetricDataQueries[%d].Id %q is used twice", i, id)
		}
		seen[id] = true
		if q.AccountId != nil {
			return out, invalid("MetricDataQueries[%d].AccountId: cross-account queries are not modelled by cwstandin", i)
		}
		if (q.MetricStat == nil) == (q.Expression == nil) {
			return out, invalid("MetricDataQueries[%d] (%s): want exactly one of MetricStat and Expression", i, id)
		}
		var (
			match  func(Datapoint) bool
			value  func(stats) float64
			period int32
			label  string
		)
		if q.Expression != nil {
			if q.Period == nil {
				return out, invalid("MetricDataQueries[%d] (%s): an Expression query needs Period (cwstandin does not infer one)", i, id)
			}
			if insights++; insights > 1 {
				return out, invalid("MetricDataQueries[%d] (%s): only one Metrics Insights query per GetMetricData request", i, id)
			}
			iq, err := parseInsights(*q.Expression)
			if err != nil {
				return out, invalid("Error in expression %q (%s): %v", *q.Expression, id, err)
			}
			match, value, period, label = iq.match, iq.value, *q.Period, id
		} else {
			m := q.MetricStat
			if q.Period != nil {
				return out, invalid("MetricDataQueries[%d] (%s): Period belongs in MetricStat for a MetricStat query", i, id)
			}
			stat, ok := statistics[*m.Stat]
			if !ok {
				return out, invalid("MetricDataQueries[%d] (%s): statistic %q is not supported by cwstandin (want Average, Sum, Minimum, Maximum or SampleCount)", i, id, *m.Stat)
			}
			if m.Metric.Namespace == nil || m.Metric.MetricName == nil {
				return out, invalid("MetricDataQueries[%d] (%s): MetricStat.Metric needs Namespace and MetricName", i, id)
			}
			ns, name := *m.Metric.Namespace, *m.Metric.MetricName
			dims := make(map[string]string, len(m.Metric.Dimensions))
			for _, d := range m.Metric.Dimensions {
				dims[*d.Name] = *d.Value
			}
			unit := ""
			if m.Unit != nil {
				unit = *m.Unit
			}
			match = func(p Datapoint) bool {
				if p.Namespace != ns || p.MetricName != name || len(p.Dimensions) != len(dims) {
					return false
				}
				for k, v := range dims {
					if got, ok := p.Dimensions[k]; !ok || got != v {
						return false
					}
				}
				return unit == "" || p.Unit == unit
			}
			value, period, label = stat, *m.Period, name
		}
		if !validPeriod(period) {
			return out, invalid("MetricDataQueries[%d] (%s): Period %d: want 1, 5, 10, 20, 30 or a multiple of 60", i, id, period)
		}
		if q.Label != nil {
			label = *q.Label
		}
		times, sets := newWindow(start, end, period, descending).aggregate(points, match)
		values := make([]float64, len(sets))
		for j, s := range sets {
			values[j] = value(s)
		}
		total += len(values)
		if q.ReturnData != nil && !*q.ReturnData {
			continue
		}
		out.MetricDataResults = append(out.MetricDataResults, metricDataResult{
			Id: id, Label: label, Timestamps: times, Values: values,
			StatusCode: "Complete", Messages: []messageData{},
		})
	}
	if in.MaxDatapoints != nil && total > int(*in.MaxDatapoints) {
		return out, invalid("the answer has %d datapoints, more than MaxDatapoints %d: pagination is not modelled by cwstandin", total, *in.MaxDatapoints)
	}
	return out, nil
}
