package cwstandin

import (
	"fmt"
	"strings"
)

// insightsQuery is a parsed Metrics Insights query of the subset the
// stand-in evaluates:
//
//	SELECT AVG|SUM|MIN|MAX|COUNT(metric)
//	FROM namespace | SCHEMA(namespace[, dimensionName ...])
//	[WHERE dimensionName = 'value' [AND ...]]
//
// Keywords are case-insensitive, identifiers case-sensitive; a namespace,
// metric or dimension name with characters other than letters, digits and
// "_" (or one that is a keyword) must be double-quoted, label values are
// single-quoted, and a quote inside either is escaped with a backslash
// ("Query components and syntax", "What needs quotation marks or escape
// characters?":
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-metrics-insights-querylanguage.html).
//
// Anything else — GROUP BY, ORDER BY, LIMIT, !=, OR, metric math, SEARCH —
// is rejected with a ValidationError naming what is not supported, never
// answered approximately.
type insightsQuery struct {
	function  string // AVG, SUM, MIN, MAX or COUNT
	metric    string
	namespace string
	schema    []string // dimension names of SCHEMA(...); nil for a plain FROM
	isSchema  bool
	where     [][2]string // dimension name, value
}

// match reports whether a datapoint belongs to a series the query selects.
//
//   - FROM namespace: every series of the metric in the namespace, whatever
//     its dimensions ("matches all CPUUtilization metrics in the AWS/EC2
//     namespace, no matter their dimensions").
//   - FROM SCHEMA(namespace, keys...): only series with exactly that
//     dimension set, in any order; SCHEMA(namespace) alone only series
//     without dimensions.
//   - WHERE k = 'v': the series has dimension k with value v.
func (q insightsQuery) match(p Datapoint) bool {
	if p.Namespace != q.namespace || p.MetricName != q.metric {
		return false
	}
	if q.isSchema && !sameDimensionSet(p.Dimensions, q.schema) {
		return false
	}
	for _, c := range q.where {
		if v, ok := p.Dimensions[c[0]]; !ok || v != c[1] {
			return false
		}
	}
	return true
}

// value is the query's function over one time bucket: the statistic sets of
// every matched series' datapoints in the bucket, pooled. The SQL inference
// page says so for AVG: with a one-minute period "each data point returned
// represents the average of all observations measured within a specific
// one-minute interval (start time inclusive, end time exclusive)"
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-metrics-insights-inference.html),
// and the syntax page defines each function over "the observations matched
// by the query": AVG their average, SUM their sum, MIN/MAX their minimum /
// maximum, COUNT their count. So AVG over two series of one datapoint each
// (4 and 2) is 3 — the mean of all observations, not their sum (what moto
// returned) and not a mean of per-series means when the series have
// different numbers of datapoints.
func (q insightsQuery) value(s stats) float64 {
	switch q.function {
	case "AVG":
		return s.Sum / s.Count
	case "SUM":
		return s.Sum
	case "MIN":
		return s.Min
	case "MAX":
		return s.Max
	default: // COUNT
		return s.Count
	}
}

type tokenKind int

const (
	tokWord   tokenKind = iota // keyword or unquoted identifier
	tokQuoted                  // "identifier"
	tokString                  // 'label value'
	tokPunct                   // ( ) , = != < > ...
	tokEOF
)

type token struct {
	kind tokenKind
	text string // unescaped for quoted tokens
}

func (t token) String() string {
	switch t.kind {
	case tokQuoted:
		return fmt.Sprintf("%q", t.text)
	case tokString:
		return "'" + t.text + "'"
	case tokEOF:
		return "end of query"
	}
	return t.text
}

func (t token) is(keyword string) bool {
	return t.kind == tokWord && strings.EqualFold(t.text, keyword)
}

func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			toks = append(toks, token{tokWord, s[i:j]})
			i = j
		case c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated %c quote at offset %d", c, i)
			}
			kind := tokQuoted
			if c == '\'' {
				kind = tokString
			}
			toks = append(toks, token{kind, b.String()})
			i = j + 1
		case strings.HasPrefix(s[i:], "!=") || strings.HasPrefix(s[i:], "<>") ||
			strings.HasPrefix(s[i:], "<=") || strings.HasPrefix(s[i:], ">="):
			toks = append(toks, token{tokPunct, s[i : i+2]})
			i += 2
		case strings.ContainsRune("(),=<>*+-/.", rune(c)):
			toks = append(toks, token{tokPunct, string(c)})
			i++
		default:
			return nil, fmt.Errorf("unexpected character %q at offset %d", c, i)
		}
	}
	return append(toks, token{kind: tokEOF}), nil
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// reserved are Metrics Insights keywords: an identifier spelled like one
// must be double-quoted. (A subset of the documented list, "Reserved
// keywords"; enough for the clauses and functions.)
var reserved = map[string]bool{
	"SELECT": true, "FROM": true, "WHERE": true, "GROUP": true, "BY": true, "ORDER": true,
	"LIMIT": true, "AND": true, "OR": true, "NOT": true, "SCHEMA": true, "ASC": true, "DESC": true,
	"AVG": true, "COUNT": true, "MAX": true, "MIN": true, "SUM": true, "AS": true, "IN": true,
	"LIKE": true, "IS": true, "NULL": true, "TRUE": true, "FALSE": true, "HAVING": true,
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) expectKeyword(kw string) error {
	if t := p.next(); !t.is(kw) {
		return fmt.Errorf("want %s, found %s", kw, t)
	}
	return nil
}

func (p *parser) expectPunct(punct string) error {
	if t := p.next(); t.kind != tokPunct || t.text != punct {
		return fmt.Errorf("want %q, found %s", punct, t)
	}
	return nil
}

// identifier reads a namespace, metric or dimension name.
func (p *parser) identifier(what string) (string, error) {
	t := p.next()
	switch {
	case t.kind == tokQuoted:
		return t.text, nil
	case t.kind == tokWord && reserved[strings.ToUpper(t.text)]:
		return "", fmt.Errorf("%s %s is a reserved keyword: double-quote it", what, t)
	case t.kind == tokWord:
		if n := p.peek(); n.kind == tokPunct && strings.Contains("/.-", n.text) {
			return "", fmt.Errorf("%s %s%s...: a name with characters other than letters, digits and _ must be double-quoted", what, t, n)
		}
		return t.text, nil
	}
	return "", fmt.Errorf("want a %s, found %s", what, t)
}

// parseInsights parses a Metrics Insights query (see insightsQuery).
func parseInsights(expr string) (insightsQuery, error) {
	var q insightsQuery
	toks, err := tokenize(expr)
	if err != nil {
		return q, err
	}
	p := &parser{toks: toks}
	if !p.peek().is("SELECT") {
		return q, fmt.Errorf("only Metrics Insights queries (SELECT ...) are supported by cwstandin, not metric math or SEARCH: %q", expr)
	}
	p.next()
	fn := p.next()
	switch name := strings.ToUpper(fn.text); {
	case fn.kind == tokWord && (name == "AVG" || name == "SUM" || name == "MIN" || name == "MAX" || name == "COUNT"):
		q.function = name
	default:
		return q, fmt.Errorf("want one of AVG, SUM, MIN, MAX, COUNT after SELECT, found %s", fn)
	}
	if err := p.expectPunct("("); err != nil {
		return q, err
	}
	if q.metric, err = p.identifier("metric name"); err != nil {
		return q, err
	}
	if err := p.expectPunct(")"); err != nil {
		return q, err
	}
	if err := p.expectKeyword("FROM"); err != nil {
		return q, err
	}
	if p.peek().is("SCHEMA") {
		p.next()
		q.isSchema = true
		if err := p.expectPunct("("); err != nil {
			return q, err
		}
		if q.namespace, err = p.identifier("namespace"); err != nil {
			return q, err
		}
		q.schema = []string{}
		for {
			t := p.next()
			if t.kind == tokPunct && t.text == ")" {
				break
			}
			if t.kind != tokPunct || t.text != "," {
				return q, fmt.Errorf("in SCHEMA(...): want \",\" or \")\", found %s", t)
			}
			key, err := p.identifier("dimension name")
			if err != nil {
				return q, err
			}
			q.schema = append(q.schema, key)
		}
	} else if q.namespace, err = p.identifier("namespace"); err != nil {
		return q, err
	}
	if p.peek().is("WHERE") {
		p.next()
		for {
			key, err := p.identifier("dimension name")
			if err != nil {
				return q, err
			}
			op := p.next()
			if op.kind != tokPunct || op.text != "=" {
				return q, fmt.Errorf("WHERE %s %s: only = is supported by cwstandin", key, op)
			}
			val := p.next()
			if val.kind != tokString {
				return q, fmt.Errorf("WHERE %s = %s: label values must be single-quoted", key, val)
			}
			q.where = append(q.where, [2]string{key, val.text})
			if !p.peek().is("AND") {
				break
			}
			p.next()
		}
	}
	switch t := p.next(); {
	case t.kind == tokEOF:
		return q, nil
	case t.is("GROUP"), t.is("ORDER"), t.is("LIMIT"), t.is("OR"):
		return q, fmt.Errorf("%s is not supported by cwstandin (it answers one aggregated series)", strings.ToUpper(t.text))
	default:
		return q, fmt.Errorf("unexpected %s", t)
	}
}
