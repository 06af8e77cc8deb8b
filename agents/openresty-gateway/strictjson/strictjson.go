// Package strictjson checks JSON text against the rules the gateway's Lua
// side applies to token headers and claims, so that Go (the ACL validator,
// the differential tests' oracle) and Lua accept exactly the same texts:
// RFC 8259 grammar, no duplicate object keys (compared after unescaping),
// valid UTF-8, no escaped surrogates, finite numbers, nesting at most
// MaxDepth.
package strictjson

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of objects and arrays accepted.
const MaxDepth = 32

// ErrInvalid is the error of every rejected text.
var ErrInvalid = errors.New("invalid JSON")

// CheckObject reports whether data is one JSON object under the rules.
//
// Return values: nil, or ErrInvalid.
func CheckObject(data []byte) error {
	s := scanner{b: data}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return ErrInvalid
	}
	if !s.value(0) {
		return ErrInvalid
	}
	s.ws()
	if s.i != len(s.b) {
		return ErrInvalid
	}
	return nil
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\r' || s.b[s.i] == '\n') {
		s.i++
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str reads a string at s.i (a quote) and returns its unescaped value.
func (s *scanner) str() (string, bool) {
	s.i++
	var out []byte
	plain := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c < 0x20:
			return "", false
		case c == '"':
			if !utf8.Valid(s.b[plain:s.i]) {
				return "", false
			}
			out = append(out, s.b[plain:s.i]...)
			s.i++
			return string(out), true
		case c == '\\':
			if !utf8.Valid(s.b[plain:s.i]) {
				return "", false
			}
			out = append(out, s.b[plain:s.i]...)
			if s.i+1 >= len(s.b) {
				return "", false
			}
			e := s.b[s.i+1]
			switch e {
			case 'u':
				if s.i+6 > len(s.b) {
					return "", false
				}
				hex := string(s.b[s.i+2 : s.i+6])
				cp, err := strconv.ParseUint(hex, 16, 32)
				if err != nil || len(hex) != 4 || !isHex(hex) || (cp >= 0xD800 && cp <= 0xDFFF) {
					return "", false
				}
				out = utf8.AppendRune(out, rune(cp))
				s.i += 6
			case '"', '\\', '/':
				out = append(out, e)
				s.i += 2
			case 'b', 'f', 'n', 'r', 't':
				out = append(out, map[byte]byte{'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[e])
				s.i += 2
			default:
				return "", false
			}
			plain = s.i
		default:
			s.i++
		}
	}
	return "", false
}

func isHex(h string) bool {
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func (s *scanner) value(depth int) bool {
	switch c := s.peek(); {
	case c == '{' || c == '[':
		if depth >= MaxDepth {
			return false
		}
		if c == '{' {
			return s.object(depth + 1)
		}
		return s.array(depth + 1)
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't' || c == 'n':
		return s.lit(map[byte]string{'t': "true", 'n': "null"}[c])
	case c == 'f':
		return s.lit("false")
	}
	return s.number()
}

func (s *scanner) lit(w string) bool {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func (s *scanner) number() bool {
	start, i := s.i, s.i
	if i < len(s.b) && s.b[i] == '-' {
		i++
	}
	j := digits(s.b, i)
	if j == i || (s.b[i] == '0' && j > i+1) {
		return false
	}
	i = j
	if i < len(s.b) && s.b[i] == '.' {
		j = digits(s.b, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(s.b) && (s.b[i] == 'e' || s.b[i] == 'E') {
		k := i + 1
		if k < len(s.b) && (s.b[k] == '+' || s.b[k] == '-') {
			k++
		}
		j = digits(s.b, k)
		if j == k {
			return false
		}
		i = j
	}
	f, err := strconv.ParseFloat(string(s.b[start:i]), 64)
	if math.IsInf(f, 0) || (err != nil && !errors.Is(err, strconv.ErrRange)) {
		return false
	}
	s.i = i
	return true
}

func (s *scanner) object(depth int) bool {
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
		return true
	}
	seen := map[string]bool{}
	for {
		if s.peek() != '"' {
			return false
		}
		k, ok := s.str()
		if !ok || seen[k] {
			return false
		}
		seen[k] = true
		s.ws()
		if s.peek() != ':' {
			return false
		}
		s.i++
		s.ws()
		if !s.value(depth) {
			return false
		}
		s.ws()
		switch s.peek() {
		case '}':
			s.i++
			return true
		case ',':
			s.i++
			s.ws()
		default:
			return false
		}
	}
}

func (s *scanner) array(depth int) bool {
	s.i++
	s.ws()
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(depth) {
			return false
		}
		s.ws()
		switch s.peek() {
		case ']':
			s.i++
			return true
		case ',':
			s.i++
			s.ws()
		default:
			return false
		}
	}
}
