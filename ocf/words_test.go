package ocf

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  \t\n ", nil},
		{"-o a,b", []string{"-o", "a,b"}},
		{"--log-level=debug  -v", []string{"--log-level=debug", "-v"}},
		{`'two words' "and three words"`, []string{"two words", "and three words"}},
		{`a'b c'd`, []string{"ab cd"}},
		{`'' ""`, []string{"", ""}},
		{`x'' y`, []string{"x", "y"}},
		{`it\'s`, []string{"it's"}},
		{`a\ b c`, []string{"a b", "c"}},
		{`'$HOME \n'`, []string{`$HOME \n`}},
		{`"a \"q\" \\ \$x \n"`, []string{`a "q" \ $x \n`}},
		{"\"line\\\ncontinued\"", []string{"linecontinued"}},
		{"a\\\nb", []string{"ab"}},
		{`*.conf ~/x $(rm -rf /)`, []string{"*.conf", "~/x", "$(rm", "-rf", "/)"}},
		{`"é ü" ü`, []string{"é ü", "ü"}},
	}
	for _, tt := range tests {
		got, err := SplitWords(tt.in)
		if err != nil {
			t.Errorf("SplitWords(%q) = %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("SplitWords(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	bad := []struct{ in, reason string }{
		{`'open`, "unterminated single quote"},
		{`a "open`, "unterminated double quote"},
		{`"escaped end\"`, "unterminated double quote"},
		{`trailing\`, "ends with a backslash"},
		{"nul\x00byte", "NUL byte"},
	}
	for _, tt := range bad {
		if got, err := SplitWords(tt.in); err == nil || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("SplitWords(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.reason)
		}
	}
}

// TestWordsParam decodes through an agent: the words reach the
// configuration, and a bad value is Misconfigured naming the parameter
// and what is wrong.
func TestWordsParam(t *testing.T) {
	type C struct{ Options []string }
	var seen []string
	a := &Agent[C]{
		Name: "w",
		Params: func(c *C) []Param {
			return []Param{Words(&c.Options, "options", "Extra options", Default("-v"))}
		},
		Start: func(context.Context, *Request[C]) error { return nil },
		Stop:  func(context.Context, *Request[C]) error { return nil },
		Monitor: func(_ context.Context, r *Request[C]) (State, error) {
			seen = r.Config.Options
			return Stopped, nil
		},
	}
	if err := a.CheckDeclaration(); err != nil {
		t.Fatal(err)
	}
	run := func(value string) (Code, string) {
		var stderr strings.Builder
		env := map[string]string{"OCF_RESKEY_options": value, "HA_RSCTMP": t.TempDir()}
		code := a.Run(context.Background(), Invocation{Args: []string{"w", "monitor"}, Env: MapEnv(env), Stderr: &stderr})
		return code, stderr.String()
	}
	if code, _ := run(`-o a,b --name 'my service'`); code != NotRunning {
		t.Fatalf("monitor = %v", code)
	}
	if diff := cmp.Diff([]string{"-o", "a,b", "--name", "my service"}, seen); diff != "" {
		t.Errorf("decoded options (-want +got):\n%s", diff)
	}
	if code, _ := run(""); code != NotRunning || !cmp.Equal(seen, []string{"-v"}) {
		t.Errorf("unset options: %v, %q; want the default [-v]", code, seen)
	}
	code, stderr := run(`--name 'unclosed`)
	if code != Misconfigured || !strings.Contains(stderr, `ocf-exit-reason:parameter options="--name 'unclosed" is invalid: has an unterminated single quote`) {
		t.Errorf("bad options: %v\n%s", code, stderr)
	}
}

// quoteWords writes words so that SplitWords returns them: each in
// single quotes, a single quote itself as \'.
func quoteWords(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// FuzzSplitWords: any input either splits or fails with a reason, never
// panics; what splits survives quoting and splitting again unchanged,
// and no word holds a NUL byte.
func FuzzSplitWords(f *testing.F) {
	for _, seed := range []string{"", "-o a,b", `'a b' "c \" d" e\ f`, `a'b`, `"x\`, `\`, "a\\\nb", `''`, `"\$\a"`, "\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitWords(s)
		if err != nil {
			if words != nil || err.Error() == "" || strings.Contains(err.Error(), "\n") {
				t.Fatalf("SplitWords(%q) = %q, %q", s, words, err)
			}
			return
		}
		for _, w := range words {
			if strings.IndexByte(w, 0) >= 0 {
				t.Fatalf("SplitWords(%q) gave a word with NUL: %q", s, w)
			}
		}
		again, err := SplitWords(quoteWords(words))
		if err != nil || !cmp.Equal(words, again) {
			t.Fatalf("SplitWords(%q) = %q; quoted and split again: %q, %v", s, words, again, err)
		}
	})
}
