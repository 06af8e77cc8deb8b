package nginxconf

import (
	"testing"

	"github.com/ha-framework/ha-framework/internal/charclass/charclasstest"
)

// The matchers accept exactly what the regular expressions they replaced
// accepted.
func TestNamesMatchRegexps(t *testing.T) {
	charclasstest.Compare(t, `^[A-Za-z0-9-]{1,64}$`, validHeaderName, charclasstest.Alphabet, 4, 63, 64, 65)
	charclasstest.Compare(t, `^[A-Za-z0-9_.:/~+-]{1,128}$`, validClaimName, charclasstest.Alphabet, 4, 127, 128, 129)
}
