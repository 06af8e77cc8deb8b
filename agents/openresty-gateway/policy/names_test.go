package policy

import (
	"testing"

	"github.com/ha-framework/ha-framework/internal/charclass/charclasstest"
)

// The matchers accept exactly what the regular expressions they replaced
// accepted.
func TestNamesMatchRegexps(t *testing.T) {
	charclasstest.Compare(t, `^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`, validKVName, charclasstest.Alphabet, 4, 62, 63, 64)
	charclasstest.Compare(t, `^[A-Za-z0-9_~=+-][A-Za-z0-9._~=+-]{0,127}$`, validKID, charclasstest.Alphabet, 4, 127, 128, 129)
}
