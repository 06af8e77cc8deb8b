package agents

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// hostileValues are given to every parameter of every agent in turn.
var hostileValues = []string{
	"\x1b[31m" + strings.Repeat("x", 300) + "\x1b[0m",
	"-1",
	"a b\vc\rd",
	"/nonexistent/" + strings.Repeat("é", 80),
	"../../etc/passwd",
	"0",
	"99999999999999999999",
	"1,2,,3=",
}

// TestBadInputReasons gives each parameter of each agent hostile values
// and checks what validate-all and start answer: a failure has an exit
// reason that fits Pacemaker (at most 128 bytes, printable, one line) and
// names a parameter to fix; a stop afterwards succeeds. The parameters come from the agents' own
// meta-data, so a new parameter or agent is covered without a new row.
func TestBadInputReasons(t *testing.T) {
	printable := regexp.MustCompile(`^[^\x00-\x1f\x7f]*$`)
	for _, s := range All() {
		t.Run(s.Name, func(t *testing.T) {
			names := paramNames(t, s)
			for _, name := range names {
				for _, v := range hostileValues {
					for _, action := range []string{ocf.ActionValidateAll, ocf.ActionStart} {
						r := ocftest.NewRunner(t, s.Agent, ocftest.Config{Name: s.Name, Params: map[string]string{name: v},
							Env: map[string]string{"OCF_RESKEY_CRM_meta_timeout": "3000"}})
						got := r.Run(action, nil)
						if action == ocf.ActionStart {
							// A failed stop gets the node fenced: bad
							// input never fails one.
							if stop := r.Run(ocf.ActionStop, nil); stop.Code != ocf.Success {
								t.Errorf("%s=%q: stop = %v %q, want success", name, v, stop.Code, stop.Reason)
							}
						}
						if got.Code == ocf.Success {
							continue
						}
						if len(got.Reason) > ocf.MaxReason || !printable.MatchString(got.Reason) {
							t.Errorf("%s=%q: %s = %v, reason of %d bytes or not printable: %q", name, v, action, got.Code, len(got.Reason), got.Reason)
						}
						if got.Code == ocf.GenericFailure {
							continue // a failure of the service, not of the parameters
						}
						if !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(got.Reason, n) }) {
							t.Errorf("%s=%q: %s = %v, reason names no parameter: %q", name, v, action, got.Code, got.Reason)
						}
					}
				}
			}
		})
	}
}

// paramNames lists the parameters the agent's meta-data declares.
func paramNames(t *testing.T, s Shipped) []string {
	t.Helper()
	r := ocftest.NewRunner(t, s.Agent, ocftest.Config{Name: s.Name})
	doc := etree.NewDocument()
	if err := doc.ReadFromString(r.Run("meta-data", nil).Stdout); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range doc.FindElements("//parameters/parameter") {
		names = append(names, p.SelectAttrValue("name", ""))
	}
	return names
}
