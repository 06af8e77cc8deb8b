package haproxydynamic

import (
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// TestParamsRefuseControlCharacters: values that reach haproxy.cfg or a
// command line refuse every control character and Unicode space; a
// vertical tab in socket once turned the words after it into socket
// options (uid, mode) in haproxy.cfg.
func TestParamsRefuseControlCharacters(t *testing.T) {
	tests := []struct{ param, value, reason string }{
		{"socket", "/run/a.sock\vuid\v65534", `socket="/run/a.sock\vuid\v65534" is invalid: must not contain control character U+000B (byte 11)`},
		{"state_dir", "/run/x\f", "U+000C (byte 6)"},
		{"state_dir", "/run/x\ry", "U+000D (byte 6)"},
		{"consul_address", "127.0.0.1:8500\u0085", "U+0085 (byte 14)"},
		{"tag", "v1\u00a0", "U+00A0 (byte 2)"},
		{"datacenter", "dc1\u2028", "U+2028 (byte 3)"},
		{"routes", "web=8081\u2029", "U+2029 (byte 8)"},
		{"binary", "/usr/sbin/haproxy\n-f", "U+000A (byte 17)"},
	}
	for _, tt := range tests {
		t.Run(tt.param, func(t *testing.T) {
			r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "haproxy-dynamic", Params: map[string]string{"routes": "web=8081", tt.param: tt.value}})
			got := r.Run("validate-all", nil)
			if got.Code != ocf.Misconfigured || !strings.Contains(got.Reason, tt.reason) || !strings.Contains(got.Reason, tt.param+"=") {
				t.Errorf("validate-all = %v %q, want Misconfigured naming %s with %q", got.Code, got.Reason, tt.param, tt.reason)
			}
		})
	}
}
