package agent

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// cleanText makes text that comes from Consul (a check's output, a
// maintenance note, an error body) fit for an exit reason and a log line.
// Anyone who can write to a Consul agent, or a check's own program,
// chooses that text: terminal escape sequences are removed whole, other
// control and invisible characters dropped, Unicode spaces turned into
// plain ones; only the first non-empty line is kept, its white space
// collapsed, and it is cut to at most limit bytes on a character boundary,
// ending in "..." when cut. Invalid UTF-8 becomes U+FFFD.
func cleanText(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '\x1b' || r == '\u009b' || r == '\u009d' || r == '\u0090' || r == '\u0098' || r == '\u009e' || r == '\u009f':
			i = skipEscape(s, i, r)
		case r == '\n':
			if strings.TrimSpace(b.String()) != "" {
				return bound(strings.Join(strings.Fields(b.String()), " "), limit)
			}
			b.Reset()
		case unicode.IsSpace(r) || unicode.IsControl(r):
			b.WriteByte(' ')
		case unicode.Is(unicode.Cf, r):
			// zero-width and bidirectional marks: invisible, and able
			// to make a reason read backwards.
		default:
			b.WriteRune(r)
		}
	}
	return bound(strings.Join(strings.Fields(b.String()), " "), limit)
}

// skipEscape returns the index just past the escape sequence that
// started with r (ESC, or a C1 introducer) before index i.
func skipEscape(s string, i int, r rune) int {
	kind := r
	if r == '\x1b' {
		if i >= len(s) {
			return i
		}
		next, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch next {
		case '[':
			kind = '\u009b'
		case ']':
			kind = '\u009d'
		case 'P', 'X', '^', '_':
			kind = '\u0090' // strings ended by ST, like DCS
		default:
			return i // a two-character sequence
		}
	}
	for i < len(s) {
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case kind == '\u009b' && c >= 0x40 && c <= 0x7e:
			return i + size // the final byte of a control sequence
		case kind == '\u009b' && (c < 0x20 || c > 0x7e):
			return i // not a control sequence after all
		case kind != '\u009b' && (c == '\a' || c == '\u009c'):
			return i + size // BEL or ST ends a string
		case kind != '\u009b' && c == '\x1b' && i+1 < len(s) && s[i+1] == '\\':
			return i + 2 // ESC \ is ST
		case c == '\n':
			return i
		}
		i += size
	}
	return i
}

// bound cuts s to at most limit bytes on a character boundary, marking
// the cut with "...".
func bound(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := max(limit-len("..."), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
