package consulagent

import (
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// TestParamsRefuseControlCharacters: values that reach Consul's
// configuration or command line refuse control characters and Unicode
// spaces, which could end a line or split a word there.
func TestParamsRefuseControlCharacters(t *testing.T) {
	tests := []struct{ param, value, reason string }{
		{"datacenter", "dc1\r", `datacenter="dc1\r" is invalid: must not contain control character U+000D (byte 3)`},
		{"node_name", "n1\u2028x", "U+2028 (byte 2)"},
		{"advertise_addr", "10.0.0.1 10.0.0.2", "must not contain spaces"},
		{"bind_addr", "10.0.0.1\v", "U+000B (byte 8)"},
		{"retry_join", "10.0.0.2,\u008510.0.0.3", "U+0085 (byte 9)"},
		{"data_dir", "/var/lib/consul\n", "U+000A (byte 15)"},
		{"log_file", "/var/log/c.log\f", "U+000C (byte 14)"},
	}
	for _, tt := range tests {
		t.Run(tt.param, func(t *testing.T) {
			r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "consul", Params: map[string]string{tt.param: tt.value}})
			got := r.Run("validate-all", nil)
			if got.Code != ocf.Misconfigured || !strings.Contains(got.Reason, tt.reason) || !strings.Contains(got.Reason, tt.param+"=") {
				t.Errorf("validate-all = %v %q, want Misconfigured naming %s with %q", got.Code, got.Reason, tt.param, tt.reason)
			}
		})
	}
}
