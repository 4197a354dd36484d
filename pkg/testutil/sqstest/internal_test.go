package sqstest

import (
	"strings"
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

func TestParseReadyLine(t *testing.T) {
	for line, want := range map[string]int{
		"fauxqs listening endpoint=http://127.0.0.1:43215 port=43215 version=1.9.2":  43215,
		"fauxqs listening endpoint=http://127.0.0.1:1 port=1 version=1.9.2\r":        1,
		"fauxqs listening port=70000":                                                0,
		"fauxqs listening port=abc":                                                  0,
		"fauxqs listening endpoint=http://127.0.0.1:5":                               0,
		`{"level":30,"msg":"Server listening at http://127.0.0.1:4566","port=4566"}`: 0,
		"": 0,
	} {
		port, ok := parseReadyLine(line)
		if ok != (want != 0) || (ok && port != want) {
			t.Errorf("parseReadyLine(%q) = %d, %v; want %d", line, port, ok, want)
		}
	}
}

func TestReadyWatcherSplitWrites(t *testing.T) {
	w := &readyWatcher{log: &localproc.SyncBuffer{}, ready: make(chan int, 1)}
	for _, chunk := range []string{"noise\nfauxqs lis", "tening endpoint=x port=", "4566 version=1.9.2\nlater\n", "fauxqs listening port=1\n"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if port := <-w.ready; port != 4566 {
		t.Errorf("port = %d, want 4566", port)
	}
	if len(w.ready) != 0 {
		t.Error("ready sent twice")
	}
	if got := w.log.String(); !strings.HasSuffix(got, "later\nfauxqs listening port=1\n") || !strings.HasPrefix(got, "noise\n") {
		t.Errorf("log = %q", got)
	}
}

func TestQueueName(t *testing.T) {
	e := &Emulator{}
	t.Run("with spaces/and:colons "+strings.Repeat("x", 100), func(t *testing.T) {
		a, b := e.queueName(t), e.queueName(t)
		if a == b {
			t.Errorf("names not unique: %q", a)
		}
		for _, n := range []string{a, b} {
			if len(n+"-dlq") > 80 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
				t.Errorf("invalid SQS queue name %q", n)
			}
		}
		if !strings.HasPrefix(a, "TestQueueName_with_spaces_and_colons_x") {
			t.Errorf("name %q does not start with the test name", a)
		}
	})
}
