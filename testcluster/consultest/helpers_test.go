package consultest

import (
	"regexp"
	"testing"
)

func TestNodePrefix(t *testing.T) {
	label := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	for _, name := range []string{"TestCluster", "TestX/sub_test#01", "///", "Test" + string(make([]byte, 80))} {
		a, b := nodePrefix(name), nodePrefix(name)
		if a == b {
			t.Errorf("nodePrefix(%q) twice = %q: not unique", name, a)
		}
		if len(a)+len("-99") > 63 || !label.MatchString(a) {
			t.Errorf("nodePrefix(%q) = %q: not a DNS label", name, a)
		}
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := freePorts(12)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("freePorts(12) = %v", ports)
		}
		seen[p] = true
	}
}
