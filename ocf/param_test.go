package ocf

import (
	"context"
	"strings"
	"testing"
)

// TestTextOptions: NoSpace, Printable and AbsolutePath refuse every
// character that changes the meaning of a configuration file line or a
// command line, not only the ASCII space, tab and newline.
func TestTextOptions(t *testing.T) {
	tests := []struct {
		name   string
		opt    Option
		value  string
		reason string // "" for accepted
	}{
		{"one word", NoSpace(), "127.0.0.1:8500", ""},
		{"unicode letters", NoSpace(), "zürich-dc", ""},
		{"space", NoSpace(), "a b", "must not contain spaces (byte 1)"},
		{"tab", NoSpace(), "a\tb", "U+0009 (byte 1)"},
		{"vertical tab", NoSpace(), "/run/a.sock\vuid\v65534", "U+000B (byte 11)"},
		{"form feed", NoSpace(), "a\fb", "U+000C (byte 1)"},
		{"carriage return", NoSpace(), "a\rb", "U+000D (byte 1)"},
		{"NUL", NoSpace(), "a\x00b", "U+0000 (byte 1)"},
		{"escape", NoSpace(), "a\x1b[31mb", "U+001B (byte 1)"},
		{"DEL", NoSpace(), "a\x7fb", "U+007F (byte 1)"},
		{"NEL", NoSpace(), "a\u0085b", "U+0085 (byte 1)"},
		{"no-break space", NoSpace(), "a\u00a0b", "U+00A0 (byte 1)"},
		{"line separator", NoSpace(), "a\u2028b", "U+2028 (byte 1)"},
		{"paragraph separator", NoSpace(), "a\u2029b", "U+2029 (byte 1)"},
		{"ideographic space", NoSpace(), "a\u3000b", "U+3000 (byte 1)"},
		{"zero-width space", NoSpace(), "a\u200bb", "U+200B (byte 1)"},
		{"right-to-left override", NoSpace(), "a\u202eb", "U+202E (byte 1)"},
		{"byte order mark", NoSpace(), "\ufeffa", "U+FEFF (byte 0)"},
		{"invalid UTF-8", NoSpace(), "a\xffb", "is not valid UTF-8"},
		{"printable words", Printable(), `{{ GetAllInterfaces | attr "address" }}`, ""},
		{"printable tab", Printable(), "a\tb", "U+0009 (byte 1)"},
		{"printable vertical tab", Printable(), "a b\vc", "U+000B (byte 3)"},
		{"printable NEL", Printable(), "a\u0085", "U+0085 (byte 1)"},
		{"path with a space", AbsolutePath(), "/etc/my app/x.json", ""},
		{"path with a line break", AbsolutePath(), "/etc/x\n.json", "U+000A (byte 6)"},
		{"path with a line separator", AbsolutePath(), "/etc/x\u2028", "U+2028 (byte 6)"},
		{"relative path", AbsolutePath(), "x.json", "must be an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			p := String(&got, "value", "A value", tt.opt)
			_, err := decodeParams([]Param{p}, MapEnv(map[string]string{"OCF_RESKEY_value": tt.value}), "rsc")
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused %q: %v", tt.value, err)
				}
				return
			}
			if CodeOf(err) != Misconfigured || !strings.Contains(ReasonOf(err), tt.reason) {
				t.Fatalf("%q: got %v %q, want Misconfigured with %q", tt.value, CodeOf(err), ReasonOf(err), tt.reason)
			}
			if !strings.Contains(ReasonOf(err), "parameter value=") {
				t.Errorf("reason %q does not name the parameter", ReasonOf(err))
			}
		})
	}
}

// TestTextOptionsFit: NoSpace and Printable on a parameter that holds no
// text are declaration mistakes that Agent.CheckDeclaration reports.
func TestTextOptionsFit(t *testing.T) {
	type cfg struct {
		N    int
		S    string
		L    []string
		Mode string
	}
	a := &Agent[cfg]{Name: "fit", Start: func(context.Context, *Request[cfg]) error { return nil },
		Stop:    func(context.Context, *Request[cfg]) error { return nil },
		Monitor: func(context.Context, *Request[cfg]) (State, error) { return Stopped, nil },
		Params: func(c *cfg) []Param {
			return []Param{
				Int(&c.N, "n", "N", NoSpace()),
				String(&c.S, "s", "S", NoSpace()),
				List(&c.L, "l", "L", Printable()),
				Select(&c.Mode, "mode", "Mode", []string{"a"}, Printable()),
			}
		}}
	err := a.CheckDeclaration()
	for _, want := range []string{"NoSpace applies to String and List parameters only", "Printable applies to String and List parameters only"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check() = %v, want it to contain %q", err, want)
		}
	}
	for _, ok := range []string{"parameter s", "parameter l"} {
		if err != nil && strings.Contains(err.Error(), ok+":") {
			t.Errorf("Check() = %v, flags %s", err, ok)
		}
	}
}

// TestInvalidReasonSaysAllowedOnce: a Port or Range refusal already says
// which values are allowed; the reason must not repeat it in other words
// (Pacemaker keeps 128 bytes), while a refusal that does not say it gets
// the parameter's format appended.
func TestInvalidReasonSaysAllowedOnce(t *testing.T) {
	var port, n, m int
	params := []Param{
		Port(&port, "port", "TCP port"),
		Int(&n, "workers", "Workers", Range(1, 64)),
		Int(&m, "count", "Count", Range(1, 5)),
	}
	tests := []struct {
		name, value, want string
	}{
		{"port", "70000", `parameter port="70000" is invalid: not a port; use a number from 1 to 65535`},
		{"workers", "0", `parameter workers="0" is invalid: must be from 1 to 64`},
		{"count", "many", `parameter count="many" is invalid: not an integer; expected an integer from 1 to 5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeParams(params, MapEnv(map[string]string{"OCF_RESKEY_" + tt.name: tt.value}), "rsc")
			if CodeOf(err) != Misconfigured || ReasonOf(err) != tt.want {
				t.Errorf("got %v %q, want Misconfigured %q", CodeOf(err), ReasonOf(err), tt.want)
			}
		})
	}
}
