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
		name, shipped string
		old, new      string            // the shipped text and what replaces it, or ""
		env           map[string]string // over collectorEnv's
		want          string            // named in the output
	}{
		{"misspelt exporter key", "cloudwatch.yaml", "dimension_rollup_option:", "dimension_rollup_opton:", nil, "dimension_rollup_opton"},
		{"misspelt OTTL function", "cloudwatch.yaml", "convert_sum_to_gauge()", "convert_sum_to_gauges()", nil, "convert_sum_to_gauges"},
		{"pipeline names a processor that is not defined", "amp.yaml", "processors: [memory_limiter,", "processors: [memory_limiter, batch/missing,", nil, "batch/missing"},
		{"extension key of another component", "amp.yaml", "service: aps", "servce: aps", nil, "servce"},
		// An unset variable would otherwise expand to "" and turn
		// "${env:MY_POD_IP}:4317" into ":4317", every interface.
		{"unset MY_POD_IP", "cloudwatch.yaml", "", "", map[string]string{"MY_POD_IP": ""}, "MY_POD_IP"},
		{"unset AMP_REMOTE_WRITE_URL", "amp.yaml", "", "", map[string]string{"AMP_REMOTE_WRITE_URL": ""}, "AMP_REMOTE_WRITE_URL"},
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
