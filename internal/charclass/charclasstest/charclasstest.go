// Package charclasstest checks a name matcher against the regular
// expression it stands for.
package charclasstest

import (
	"regexp"
	"strings"
	"testing"
)

// Alphabet has a byte of every class the agents' names distinguish
// (upper and lower case letters at both ends of their ranges, digits,
// the punctuation some classes admit, space, a control byte, a byte
// above 127 and a multi-byte rune), so that every string over it up to a
// few bytes exercises each position's class.
const Alphabet = "aZz0.-_:/~=+ \x00\xff" + "é"

// Compare fails t for every string on which match and the regular
// expression re disagree: every string over alphabet of up to depth
// bytes, then, for each length in lengths, strings of that many copies of
// each byte of alphabet, alone and after each other byte (to reach the
// expression's length bounds).
func Compare(t *testing.T, re string, match func(string) bool, alphabet string, depth int, lengths ...int) {
	t.Helper()
	rx := regexp.MustCompile(re)
	bad := 0
	check := func(s string) {
		if bad < 10 && match(s) != rx.MatchString(s) {
			bad++
			t.Errorf("%q: matcher says %v, %s says %v", s, match(s), re, rx.MatchString(s))
		}
	}
	var walk func(prefix string, n int)
	walk = func(prefix string, n int) {
		check(prefix)
		if n == 0 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			walk(prefix+alphabet[i:i+1], n-1)
		}
	}
	walk("", depth)
	for _, n := range lengths {
		for i := 0; i < len(alphabet); i++ {
			body := strings.Repeat(alphabet[i:i+1], n)
			check(body)
			for j := 0; j < len(alphabet); j++ {
				check(alphabet[j:j+1] + body[1:])
				check(body[1:] + alphabet[j:j+1])
			}
		}
	}
}
