package routes

import (
	"testing"

	"github.com/ha-framework/ha-framework/internal/charclass"
	"github.com/ha-framework/ha-framework/internal/charclass/charclasstest"
)

// The matchers accept exactly what the regular expressions they replaced
// accepted.
func TestNamesMatchRegexps(t *testing.T) {
	charclasstest.Compare(t, `^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`, dnsName,
		charclasstest.Alphabet, 4, 62, 63, 64)
	// Labels at their length bound, beside others.
	charclasstest.Compare(t, `^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`,
		func(s string) bool { return dnsName(s) }, "a-.", 2, 62, 63, 64)
	charclasstest.Compare(t, `^/[A-Za-z0-9._~/-]*$`, func(s string) bool { return charclass.Word(s, prefixSlash, prefixRest, -1) },
		charclasstest.Alphabet, 4, 300)
}
