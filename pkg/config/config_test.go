package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestReaderParsesAndRejects(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		read    func(r *Reader) any
		want    any
		wantErr string // substring; "" means no error
	}{
		{"int default", nil, func(r *Reader) any { return r.Int("N", 10, 1, 100) }, 10, ""},
		{"int set", map[string]string{"N": " 42 "}, func(r *Reader) any { return r.Int("N", 10, 1, 100) }, 42, ""},
		{"int not a number", map[string]string{"N": "ten"}, func(r *Reader) any { return r.Int("N", 10, 1, 100) }, 10, `N="ten" is invalid: want an integer from 1 to 100`},
		{"int below range", map[string]string{"N": "0"}, func(r *Reader) any { return r.Int("N", 10, 1, 100) }, 10, "from 1 to 100"},
		{"int above range", map[string]string{"N": "101"}, func(r *Reader) any { return r.Int("N", 10, 1, 100) }, 10, "from 1 to 100"},
		{"duration", map[string]string{"D": "250ms"}, func(r *Reader) any { return r.Duration("D", time.Second, 0, time.Minute) }, 250 * time.Millisecond, ""},
		{"duration bare number refused", map[string]string{"D": "5"}, func(r *Reader) any { return r.Duration("D", time.Second, 0, time.Minute) }, time.Second, "a Go duration"},
		{"seconds bare number", map[string]string{"D": "60"}, func(r *Reader) any { return r.Seconds("D", time.Second, 0, time.Hour) }, time.Minute, ""},
		{"seconds fraction", map[string]string{"D": "0.5"}, func(r *Reader) any { return r.Seconds("D", time.Second, 0, time.Hour) }, 500 * time.Millisecond, ""},
		{"seconds go duration", map[string]string{"D": "2m"}, func(r *Reader) any { return r.Seconds("D", time.Second, 0, time.Hour) }, 2 * time.Minute, ""},
		{"seconds negative", map[string]string{"D": "-1"}, func(r *Reader) any { return r.Seconds("D", time.Second, 0, time.Hour) }, time.Second, "seconds or a Go duration"},
		{"whole seconds", map[string]string{"D": "45"}, func(r *Reader) any { return r.WholeSeconds("D", time.Minute, time.Second, 12*time.Hour) }, 45 * time.Second, ""},
		{"whole seconds go duration", map[string]string{"D": "2m"}, func(r *Reader) any { return r.WholeSeconds("D", time.Minute, time.Second, 12*time.Hour) }, 2 * time.Minute, ""},
		{"whole seconds fraction", map[string]string{"D": " 1.5 "}, func(r *Reader) any { return r.WholeSeconds("D", time.Minute, time.Second, 12*time.Hour) }, time.Minute, `D="1.5" is invalid: want whole seconds from 1s to 12h0m0s`},
		{"one of canonical", map[string]string{"F": "TEXT"}, func(r *Reader) any { return r.OneOf("F", "json", "json", "text") }, "text", ""},
		{"one of unknown", map[string]string{"F": "xml"}, func(r *Reader) any { return r.OneOf("F", "json", "json", "text") }, "json", "one of json, text"},
		{"required missing", nil, func(r *Reader) any { return r.Required("QUEUE_URL", "an SQS queue URL") }, "", "QUEUE_URL is required"},
		{"url ok", map[string]string{"U": "http://x:8080"}, func(r *Reader) any { return r.URL("U", "") }, "http://x:8080", ""},
		{"url relative", map[string]string{"U": "x:8080"}, func(r *Reader) any { return r.URL("U", "") }, "", "absolute http(s) URL"},
		{"optional url unset", nil, func(r *Reader) any { return r.OptionalURL("U") }, "", ""},
		{"optional url blank", map[string]string{"U": "  "}, func(r *Reader) any { return r.OptionalURL("U") }, "", ""},
		{"optional url set", map[string]string{"U": " https://analyzer:8080 "}, func(r *Reader) any { return r.OptionalURL("U") }, "https://analyzer:8080", ""},
		{"optional url wrong scheme", map[string]string{"U": "ftp://analyzer"}, func(r *Reader) any { return r.OptionalURL("U") }, "", `U="ftp://analyzer" is invalid: want an absolute http(s) URL`},
		{"optional url no host", map[string]string{"U": "http://"}, func(r *Reader) any { return r.OptionalURL("U") }, "", `U="http://" is invalid`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(env(tt.env))
			if got := tt.read(r); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			err := r.Err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			case tt.wantErr != "" && !IsConfig(err):
				t.Fatalf("IsConfig(%v) = false", err)
			}
		})
	}
}

// pair is a Settings of two fields, as a service's Config is.
type pair struct {
	A int
	B time.Duration
}

func (p *pair) ReadEnv(r *Reader) {
	*p = pair{r.Int("A", 1, 0, 9), r.Duration("B", time.Second, 0, time.Minute)}
}

func TestLoadReportsEveryBadVariable(t *testing.T) {
	var got pair
	err := Load(env(map[string]string{"A": "x", "B": "y"}), &got)
	if got != (pair{1, time.Second}) {
		t.Errorf("Load read %+v, want the defaults {1 1s}", got)
	}
	for _, name := range []string{"A=", "B="} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatal("joined error does not unwrap to *Error")
	}
}

func TestHostnameIsHOSTNAMEThenTheOSHostname(t *testing.T) {
	if got := New(env(map[string]string{"HOSTNAME": "webapi-7d9f-x2"})).Hostname("local"); got != "webapi-7d9f-x2" {
		t.Errorf("with HOSTNAME set: %q, want webapi-7d9f-x2", got)
	}
	want, err := os.Hostname()
	if err != nil || want == "" {
		t.Skipf("this machine has no hostname (%v)", err)
	}
	if got := New(env(nil)).Hostname("local"); got != want {
		t.Errorf("without HOSTNAME: %q, want os.Hostname() %q", got, want)
	}
}
