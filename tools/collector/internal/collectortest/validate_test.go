package collectortest

import (
	"path/filepath"
	"strings"
	"testing"
)

// Every shipped config is accepted by the collector binary the overlays run.
func TestShippedConfigsValidate(t *testing.T) {
	env := collectorEnv(t, nil)
	for _, cfg := range shippedConfigs(t) {
		t.Run(filepath.Base(cfg), func(t *testing.T) {
			if out, err := validate(t, env, cfg); err != nil {
				t.Fatalf("otelcol validate --config=%s: %v\n%s", cfg, err, out)
			}
		})
	}
}

// The validate check has teeth: broken variants of the shipped configs fail,
// and the output names what is wrong.
func TestValidateRejectsBrokenConfigs(t *testing.T) {
	cases := []struct {
		name    string
		shipped string
		old     string
		new     string
		env     map[string]string
		want    string
	}{
		{
			name: "misspelt exporter key", shipped: "cloudwatch.yaml",
			old: "dimension_rollup_option:", new: "dimension_rollup_opton:",
			want: "dimension_rollup_opton",
		},
		{
			name: "misspelt OTTL function", shipped: "cloudwatch.yaml",
			old: "convert_sum_to_gauge()", new: "convert_sum_to_gauges()",
			want: "convert_sum_to_gauges",
		},
		{
			name: "pipeline names a processor that is not defined", shipped: "amp.yaml",
			old: "processors: [memory_limiter,", new: "processors: [memory_limiter, batch/missing,",
			want: "batch/missing",
		},
		{
			name: "extension key of another component", shipped: "amp.yaml",
			old: "service: aps", new: "servce: aps",
			want: "servce",
		},
		{
			// An unset variable would otherwise expand to "" and turn
			// "${env:MY_POD_IP}:4317" into ":4317", every interface.
			name: "unset MY_POD_IP", shipped: "cloudwatch.yaml",
			env:  map[string]string{"MY_POD_IP": ""},
			want: "MY_POD_IP",
		},
		{
			name: "unset AMP_REMOTE_WRITE_URL", shipped: "amp.yaml",
			env:  map[string]string{"AMP_REMOTE_WRITE_URL": ""},
			want: "AMP_REMOTE_WRITE_URL",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(configsDir, tc.shipped)
			if tc.old != "" {
				cfg = mutate(t, tc.shipped, tc.old, tc.new)
			}
			out, err := validate(t, collectorEnv(t, tc.env), cfg)
			if err == nil {
				t.Fatalf("validate accepted the broken config\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("validate failed (%v) without naming %q:\n%s", err, tc.want, out)
			}
		})
	}
}
