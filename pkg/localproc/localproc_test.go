package localproc

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	ports, err := FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ports)))) != 5 {
		t.Fatalf("ports not distinct: %v", ports)
	}
	for _, p := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d picked but not bindable: %v", p, err)
		}
		ln.Close()
	}
}

func TestNewCollectorPutsEveryListenerOnTheLoopbackPortsItReports(t *testing.T) {
	dir := t.TempDir()
	c, err := NewCollector(dir, []string{"shipped.yaml"}, "exporters: {}\n", map[string]string{"AWS_REGION": "eu-west-1", "MY_POD_IP": ""})
	if err != nil {
		t.Fatal(err)
	}
	override := filepath.Join(dir, "loopback.yaml")
	if want := []string{"--config=shipped.yaml", "--config=" + override}; !slices.Equal(c.Args, want) {
		t.Errorf("args %v, want %v", c.Args, want)
	}
	b, err := os.ReadFile(override)
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{c.OTLPHTTP, c.OTLPGRPC, strings.TrimSuffix(strings.TrimPrefix(c.Health, "http://"), "/")} {
		if !strings.Contains(string(b), "endpoint: "+addr+"\n") {
			t.Errorf("override does not put a listener on %s:\n%s", addr, b)
		}
	}
	if !strings.HasSuffix(string(b), "exporters: {}\n") {
		t.Errorf("extra not appended:\n%s", b)
	}
	if !slices.Contains(c.Env, "AWS_REGION=eu-west-1") || !slices.Contains(c.Env, "HOME="+dir) {
		t.Errorf("env %v: want AWS_REGION overridden and HOME=%s", c.Env, dir)
	}
	for _, kv := range c.Env {
		if strings.HasPrefix(kv, "MY_POD_IP=") {
			t.Errorf("env %v: a \"\" value must remove the variable", c.Env)
		}
	}
}
