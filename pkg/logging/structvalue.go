package logging

import (
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"time"
	"unicode"
)

// Redacted replaces the value of a credential in the log.
const Redacted = "[redacted]"

// StructValue is the log value of a configuration struct (Start logs a
// service's configuration with it). It is a group with every exported field
// in declaration order, so a field added later is logged without anyone
// remembering to. Keys are the field names in snake_case (QueueURL is
// queue_url); a nested struct is a group; a field that is itself a
// slog.LogValuer logs its own value; a time.Duration stays a duration (see
// durationString) and a fmt.Stringer (slog.Level) is its string. Credentials
// never reach the log: a field tagged `log:"secret"` is written as Redacted
// when set, and the password of a URL with user info is masked in every
// string field.
func StructValue(v any) slog.Value {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return slog.AnyValue(v)
	}
	return slog.GroupValue(fields(rv)...)
}

func fields(rv reflect.Value) []slog.Attr {
	t := rv.Type()
	attrs := make([]slog.Attr, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key := snakeCase(f.Name)
		if f.Tag.Get("log") == "secret" {
			v := ""
			if !rv.Field(i).IsZero() {
				v = Redacted
			}
			attrs = append(attrs, slog.String(key, v))
			continue
		}
		attrs = append(attrs, slog.Attr{Key: key, Value: fieldValue(rv.Field(i))})
	}
	return attrs
}

func fieldValue(v reflect.Value) slog.Value {
	switch x := v.Interface().(type) {
	case slog.LogValuer:
		return x.LogValue()
	case time.Duration:
		return slog.DurationValue(x)
	case fmt.Stringer:
		return slog.StringValue(x.String())
	}
	switch v.Kind() {
	case reflect.Struct:
		return slog.GroupValue(fields(v)...)
	case reflect.String:
		return slog.StringValue(maskURLPassword(v.String()))
	case reflect.Bool:
		return slog.BoolValue(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return slog.Int64Value(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return slog.Uint64Value(v.Uint())
	case reflect.Float32, reflect.Float64:
		return slog.Float64Value(v.Float())
	}
	return slog.AnyValue(v.Interface())
}

// maskURLPassword masks the password of a URL such as
// https://user:secret@host/ and returns any other string unchanged.
func maskURLPassword(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, set := u.User.Password(); !set {
		return s
	}
	return u.Redacted()
}

// snakeCase turns a Go field name into a log key: QueueURL is queue_url,
// MaxBodyBytes is max_body_bytes, JobID is job_id.
func snakeCase(name string) string {
	r := []rune(name)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prevLower := unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1])
			endOfAcronym := unicode.IsUpper(r[i-1]) && i+1 < len(r) && unicode.IsLower(r[i+1])
			if prevLower || endOfAcronym {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
