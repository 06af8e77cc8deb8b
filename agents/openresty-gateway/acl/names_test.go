package acl

import (
	"testing"

	"github.com/ha-framework/ha-framework/internal/charclass"
	"github.com/ha-framework/ha-framework/internal/charclass/charclasstest"
)

// The matchers accept exactly what the regular expressions they replaced
// accepted.
func TestNamesMatchRegexps(t *testing.T) {
	charclasstest.Compare(t, `^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`, ValidService, charclasstest.Alphabet, 4, 62, 63, 64)
	charclasstest.Compare(t, `^[A-Z]{1,20}$`, func(s string) bool { return charclass.Word(s, upper, upper, 20) },
		charclasstest.Alphabet+"AM", 4, 19, 20, 21)
}
