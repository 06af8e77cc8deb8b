package charclass_test

import (
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
