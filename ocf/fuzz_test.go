package ocf

import (
	"context"
	"strings"
	"testing"
)

// FuzzDecodeParams feeds arbitrary values (what an administrator may type
// into pcs) to every parameter type: decoding must never panic, and a
// rejection must be Misconfigured with a one-line reason naming the
// parameter.
func FuzzDecodeParams(f *testing.F) {
	for _, seed := range []string{"", "0", "-1", "65536", "1m30s", "yes", "ja", "tcp", "a,b c", "9999999999999999999999", "1e308", "NaN", "\x00", "\n6\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		a := testAgent(&fakeService{})
		for _, name := range []string{"name", "old_name", "count", "on", "mode", "port", "wait", "hosts", "trace_ra"} {
			// trace_ra=yes writes a trace under HA_VARLIB.
			env := map[string]string{"OCF_RESKEY_name": "x", "OCF_RESKEY_" + name: value, "HA_RSCTMP": t.TempDir(), "HA_VARLIB": t.TempDir()}
			var stderr strings.Builder
			code := a.Run(context.Background(), Invocation{Args: []string{"t", "validate-all"}, Env: MapEnv(env), Stderr: &stderr})
			if code == Success {
				continue
			}
			if code != Misconfigured {
				t.Fatalf("%s=%q: rc %v, want success or Misconfigured", name, value, code)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "ocf-exit-reason:parameter ") || !strings.Contains(last, name) {
				t.Fatalf("%s=%q: exit reason %q does not name the parameter", name, value, last)
			}
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, seed := range []string{"0", "1.5", "1m30s", "-1s", "1e400", "9223372036s", "ms"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
	})
}
