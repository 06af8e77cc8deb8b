package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// addToNodelist is corosync.conf with one more node in its nodelist, as
// an administrator adds one: a node block before the nodelist's closing
// brace, the rest of the file untouched.
func addToNodelist(conf, name, addr string, id int) (string, error) {
	at := strings.Index(conf, "nodelist {")
	if at < 0 {
		return "", fmt.Errorf("no nodelist section")
	}
	if strings.Contains(conf, "name: "+name+"\n") || strings.Contains(conf, "ring0_addr: "+addr+"\n") {
		return "", fmt.Errorf("%s (%s) is in the nodelist already", name, addr)
	}
	depth := 0
	for i := at; i < len(conf); i++ {
		switch conf[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				block := fmt.Sprintf("    node {\n        ring0_addr: %s\n        name: %s\n        nodeid: %d\n    }\n", addr, name, id)
				return conf[:i] + block + conf[i:], nil
			}
		}
	}
	return "", fmt.Errorf("nodelist section not closed")
}

func TestAddToNodelist(t *testing.T) {
	const conf = `totem {
    version: 2
}
nodelist {
    node {
        ring0_addr: 10.0.0.11
        name: n1
        nodeid: 1
    }
}
quorum {
    provider: corosync_votequorum
}
`
	got, err := addToNodelist(conf, "n2", "10.0.0.12", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(conf, "        nodeid: 1\n    }\n}\n", "        nodeid: 1\n    }\n    node {\n        ring0_addr: 10.0.0.12\n        name: n2\n        nodeid: 2\n    }\n}\n", 1)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("addToNodelist (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name, conf, node, addr, reason string
	}{
		{"no nodelist", "totem {\n}\n", "n2", "10.0.0.12", "no nodelist"},
		{"not closed", "nodelist {\n    node {\n", "n2", "10.0.0.12", "not closed"},
		{"name taken", conf, "n1", "10.0.0.12", "already"},
		{"address taken", conf, "n2", "10.0.0.11", "already"},
	} {
		if _, err := addToNodelist(tc.conf, tc.node, tc.addr, 2); err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.reason)
		}
	}
}
