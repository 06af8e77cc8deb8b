package registration

import (
	"testing"

	"github.com/ha-framework/ha-framework/internal/charclass"
	"github.com/ha-framework/ha-framework/internal/charclass/charclasstest"
)

// The matchers accept exactly what the regular expressions they replaced
// accepted.
func TestNamesMatchRegexps(t *testing.T) {
	a := charclasstest.Alphabet + "AM"
	for _, tc := range []struct {
		re    string
		match func(string) bool
	}{
		{`^[A-Za-z0-9][A-Za-z0-9._-]*$`, func(s string) bool { return charclass.Word(s, alnum, nameRest, -1) }},
		{`^[A-Za-z0-9][A-Za-z0-9._:-]*$`, func(s string) bool { return charclass.Word(s, alnum, idRest, -1) }},
		{`^[A-Za-z0-9_-]+$`, func(s string) bool { return s != "" && metaKey.All(s) }},
		{`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`, hostName},
		{`^[A-Z]+$`, func(s string) bool { return charclass.Word(s, upper, upper, -1) }},
	} {
		charclasstest.Compare(t, tc.re, tc.match, a, 4, 128, 256)
	}
}
