package registration

import (
	"strings"

	"github.com/ha-framework/ha-framework/ocf"
)

// cleanText makes text that comes from Consul (a check's output, a
// maintenance note, an error body, a name) fit for an exit reason and a
// log line. Anyone who can write to a Consul agent, or a check's own
// program, chooses that text: it keeps the first line that is not empty
// once cleaned, and ocf.OneLine removes escape sequences, control and
// invisible characters and cuts it to at most limit bytes on a character
// boundary.
func cleanText(s string, limit int) string {
	for line := range strings.SplitSeq(s, "\n") {
		if l := ocf.OneLine(line, limit); l != "" {
			return l
		}
	}
	return ""
}
