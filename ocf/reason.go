package ocf

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxReason is the longest exit reason, in bytes, that Pacemaker keeps:
// anything longer is cut by Pacemaker itself, possibly inside a character.
const MaxReason = 128

// OneLine makes text from any source (an error chain, a tool's output, a
// health check's output written by whoever controls the service) safe for
// an exit reason or a log line: terminal escape sequences and control
// characters are removed, invalid UTF-8 becomes U+FFFD, runs of white
// space (line breaks included) become one space, and the result is cut to
// at most max bytes on a rune boundary, ending in "..." when cut. max <= 0
// means no limit.
func OneLine(s string, max int) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == 0x1b { // ESC: skip the whole sequence
			i += escapeLen(s[i:])
			continue
		}
		i += n
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case r == utf8.RuneError && n == 1:
			r = unicode.ReplacementChar
		case unicode.IsControl(r) || r == 0x2028 || r == 0x2029 || unicode.Is(unicode.Cf, r):
			// C0, DEL, C1 and invisible format characters (bidi
			// overrides among them) can disguise what a reason says.
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	out := b.String()
	if max <= 0 || len(out) <= max {
		return out
	}
	const more = "..."
	cut := max - len(more)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return strings.TrimRight(out[:cut], " ") + more[:min(len(more), max)]
}

// escapeLen returns the length of the terminal escape sequence at the
// start of s (which begins with ESC): CSI (ESC [ ... final byte), OSC and
// other strings (ESC ] ... BEL or ESC \), or ESC and one more byte.
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[':
		for i := 2; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return len(s)
	case ']', 'P', 'X', '^', '_':
		for i := 2; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return len(s)
	}
	_, n := utf8.DecodeRuneInString(s[1:])
	return 1 + n
}

// Permanent marks err as a failure that waiting cannot change, such as a
// daemon that exited during start. The SDK polls Monitor after start,
// stop, promote and demote until the resource reaches the wanted state;
// a Monitor error marked Permanent ends that wait at once with err,
// instead of at the operation's timeout. Elsewhere it changes nothing:
// the exit status is still CodeOf(err). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }
