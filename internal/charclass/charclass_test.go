package charclass_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/internal/charclass"
	"github.com/ha-framework/ha-framework/internal/charclass/charclasstest"
)

func TestOf(t *testing.T) {
	s := charclass.Of("a-c_-")
	for _, tc := range []struct {
		b    byte
		want bool
	}{{'a', true}, {'b', true}, {'c', true}, {'d', false}, {'_', true}, {'-', true}, {'A', false}, {0, false}, {0xff, false}} {
		if got := s.Has(tc.b); got != tc.want {
			t.Errorf("Of(%q).Has(%q) = %v, want %v", "a-c_-", tc.b, got, tc.want)
		}
	}
	if charclass.Of("").Has(0) {
		t.Error("the empty set has 0")
	}
}

func TestWordMatchesRegexp(t *testing.T) {
	alnum := charclass.Of("A-Za-z0-9")
	rest := charclass.Of("A-Za-z0-9._-")
	charclasstest.Compare(t, `^[A-Za-z0-9][A-Za-z0-9._-]{0,4}$`, func(s string) bool { return charclass.Word(s, alnum, rest, 5) },
		charclasstest.Alphabet, 3, 4, 5, 6)
	charclasstest.Compare(t, `^[A-Za-z0-9][A-Za-z0-9._-]*$`, func(s string) bool { return charclass.Word(s, alnum, rest, -1) },
		charclasstest.Alphabet, 3, 100)
	charclasstest.Compare(t, `^[A-Za-z0-9._-]*$`, rest.All, charclasstest.Alphabet, 3, 100)
}

// FuzzWordMatchesRegexp compares Word with the regular expression it
// stands for, for the classes and bounds the agents use, on any input.
func FuzzWordMatchesRegexp(f *testing.F) {
	for _, s := range []string{"", "a", "a.b-c_d", "-a", "A:B", "é", "a\n", strings.Repeat("a", 64), strings.Repeat("Z", 129)} {
		f.Add(s)
	}
	type word struct {
		first, rest string
		max         int
	}
	words := []word{
		{"A-Za-z0-9", "A-Za-z0-9._-", 63}, {"A-Za-z0-9", "A-Za-z0-9-", 63}, {"A-Z", "A-Z", 20},
		{"A-Za-z0-9_~=+-", "A-Za-z0-9._~=+-", 128}, {"/", "A-Za-z0-9._~/-", -1},
		{"A-Za-z0-9", "A-Za-z0-9._:-", -1}, {"A-Za-z0-9_-", "A-Za-z0-9_-", -1},
	}
	res := make([]*regexp.Regexp, len(words))
	for i, w := range words {
		n := "*"
		if w.max >= 0 {
			n = fmt.Sprintf("{0,%d}", w.max-1)
		}
		res[i] = regexp.MustCompile("^[" + w.first + "][" + w.rest + "]" + n + "$")
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i, w := range words {
			got := charclass.Word(s, charclass.Of(w.first), charclass.Of(w.rest), w.max)
			if want := res[i].MatchString(s); got != want {
				t.Errorf("Word(%q, %q, %q, %d) = %v, %s says %v", s, w.first, w.rest, w.max, got, res[i], want)
			}
		}
	})
}
