package registration

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCleanText(t *testing.T) {
	tests := []struct {
		name, in string
		limit    int
		want     string
	}{
		{"plain", "connection refused", 64, "connection refused"},
		{"first non-empty line", "\n  \nHTTP GET http://x: 500\nbody", 64, "HTTP GET http://x: 500"},
		{"colours", "\x1b[1;31mcritical\x1b[0m", 64, "critical"},
		{"clear screen and title", "\x1b[2J\x1b]0;owned\x07ok", 64, "ok"},
		{"title ended by ST", "\x1b]2;x\x1b\\ok", 64, "ok"},
		{"C1 introducer dropped", "\u009b31mred", 64, "31mred"},
		{"two-character escape", "\x1bcreset", 64, "reset"},
		{"escape at the end", "ok\x1b", 64, "ok"},
		{"unterminated sequence", "ok \x1b[12", 64, "ok"},
		{"carriage return overwrite", "all good\rFAILED", 64, "all good FAILED"},
		{"vertical tab and form feed", "a\vb\fc", 64, "a b c"},
		{"NEL and line separator", "a\u0085b\u2028c", 64, "a b c"},
		{"no-break space", "a\u00a0b", 64, "a b"},
		{"bidirectional override", "abc\u202edef", 64, "abcdef"},
		{"zero width space", "a\u200bb", 64, "ab"},
		{"NUL and DEL", "a\x00b\x7fc", 64, "abc"},
		{"invalid UTF-8", "a\xffb", 64, "a\uFFFDb"},
		{"cut on a rune", strings.Repeat("日", 10), 11, "日日..."},
		{"cut exactly", "abcdefgh", 8, "abcdefgh"},
		{"cut", "abcdefghi", 8, "abcde..."},
		{"tiny limit", "abcdefghi", 2, ".."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cleanText(tt.in, tt.limit); got != tt.want {
				t.Errorf("cleanText(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
			}
		})
	}
}

// checkClean fails unless s is fit for a reason: valid UTF-8, one line,
// no control or invisible characters, at most limit bytes.
func checkClean(t *testing.T, what, s string, limit int) {
	t.Helper()
	if !utf8.ValidString(s) || len(s) > limit {
		t.Fatalf("%s: %q is not valid UTF-8 of at most %d bytes", what, s, limit)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || (unicode.IsSpace(r) && r != ' ') {
			t.Fatalf("%s: %q holds %U", what, s, r)
		}
	}
}

func FuzzCleanText(f *testing.F) {
	for _, s := range []string{"ok", "\x1b[31mred\x1b[0m", "\x1b]0;t\x07", "日本語", "a\u202eb", "\xff\xfe"} {
		f.Add(s, 20)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		if limit < 3 || limit > 1<<16 {
			return
		}
		checkClean(t, "cleanText", cleanText(s, limit), limit)
	})
}
