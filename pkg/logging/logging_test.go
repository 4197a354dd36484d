package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/buildinfo"
)

// record logs through a JSON logger built by Config.New and decodes the line.
func record(t *testing.T, log func(*slog.Logger)) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	log(Config{Level: slog.LevelInfo, Format: "json"}.New(&buf, "svc"))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not one JSON record: %v\n%s", err, buf.String())
	}
	return m
}

func TestJSONLogWritesDurationsAsGoDurations(t *testing.T) {
	m := record(t, func(l *slog.Logger) {
		l.WithGroup("worker").Info("polling", "wait_time", 5*time.Second, "backoff", 1500*time.Microsecond, "count", 3)
	})
	w, _ := m["worker"].(map[string]any)
	if w["wait_time"] != "5s" || w["backoff"] != "1.5ms" {
		t.Errorf("durations = %v, %v; want \"5s\", \"1.5ms\" (record %v)", w["wait_time"], w["backoff"], m)
	}
	if w["count"] != float64(3) {
		t.Errorf("count = %v, want the number 3: only durations change", w["count"])
	}
}

type inner struct {
	Host string
	Port int
}

type selfLogged struct{ N int }

func (selfLogged) LogValue() slog.Value { return slog.StringValue("custom") }

type sample struct {
	QueueURL     string
	MaxBodyBytes int64
	Wait         time.Duration
	Level        slog.Level
	Enabled      bool
	Ratio        float64
	Count        uint
	Server       inner
	Custom       selfLogged
	Tags         []string
	Password     string `log:"secret"`
	Unset        string `log:"secret"`
	Endpoint     string
	hidden       string
}

func TestStartLogsVersionAndEveryConfigField(t *testing.T) {
	cfg := sample{
		QueueURL:     "http://127.0.0.1:4566/000000000000/q",
		MaxBodyBytes: 1 << 20,
		Wait:         2500 * time.Millisecond,
		Level:        slog.LevelWarn,
		Enabled:      true,
		Ratio:        0.5,
		Count:        7,
		Server:       inner{Host: "127.0.0.1", Port: 8080},
		Custom:       selfLogged{N: 1},
		Tags:         []string{"a", "b"},
		Password:     "hunter2",
		Endpoint:     "https://user:s3cret@example.com/path",
		hidden:       "not a field of the log",
	}
	m := record(t, func(l *slog.Logger) { Start(l, cfg) })
	if m["msg"] != "starting" || m["version"] != buildinfo.Version {
		t.Errorf("msg %v, version %v; want starting, %q", m["msg"], m["version"], buildinfo.Version)
	}
	got, _ := json.Marshal(m["config"])
	want := `{"count":7,"custom":"custom","enabled":true,"endpoint":"https://user:xxxxx@example.com/path",` +
		`"level":"WARN","max_body_bytes":1048576,"password":"[redacted]","queue_url":"http://127.0.0.1:4566/000000000000/q",` +
		`"ratio":0.5,"server":{"host":"127.0.0.1","port":8080},"tags":["a","b"],"unset":"","wait":"2.5s"}`
	if string(got) != want {
		t.Errorf("config =\n%s\nwant\n%s", got, want)
	}
	if line, _ := json.Marshal(m); strings.Contains(string(line), "hunter2") || strings.Contains(string(line), "s3cret") {
		t.Errorf("a credential reached the log: %s", line)
	}
}

func TestSnakeCaseKeys(t *testing.T) {
	for in, want := range map[string]string{
		"QueueURL": "queue_url", "MaxBodyBytes": "max_body_bytes", "JobID": "job_id",
		"ResultAnalyzerURL": "result_analyzer_url", "SQSWaitTime": "sqs_wait_time", "Port": "port",
		"Level2Name": "level2_name",
	} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}
