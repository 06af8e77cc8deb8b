package acl

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := `{"version": 3, "mode": "shadow", "rules": [
		{"name": "admins", "action": "allow", "groups": ["admin"]},
		{"name": "readers", "action": "allow", "subjects": ["alice", "bob"], "scopes": ["orders:read"], "methods": ["GET", "HEAD"],
		 "paths": [{"prefix": "/orders/"}, {"exact": "/health"}]},
		{"action": "deny", "paths": [{"prefix": "/internal"}]}]}`
	d, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != 3 || d.Mode != "shadow" || len(d.Rules) != 3 || d.Digest == "" {
		t.Errorf("parsed %+v", d)
	}
	d2, _ := Parse([]byte(`{"version": 1, "rules": []}`))
	if d2.Mode != "enforce" {
		t.Errorf("default mode %q, want enforce", d2.Mode)
	}
	bad := []struct{ name, doc, reason string }{
		{"not JSON", `{"version": 1,`, "strict JSON"},
		{"duplicate key", `{"version": 1, "rules": [], "rules": [{"action": "allow"}]}`, "strict JSON"},
		{"unknown field", `{"version": 1, "rules": [], "default": "allow"}`, "unknown field"},
		{"no version", `{"rules": []}`, "version"},
		{"version zero", `{"version": 0, "rules": []}`, "version"},
		{"version string", `{"version": "1", "rules": []}`, "bad document"},
		{"mode", `{"version": 1, "mode": "permissive", "rules": []}`, "enforce or shadow"},
		{"action", `{"version": 1, "rules": [{"action": "permit"}]}`, `rule 1 (): action "permit"`},
		{"lower-case method", `{"version": 1, "rules": [{"action": "allow", "methods": ["get"]}]}`, "method"},
		{"empty subject", `{"version": 1, "rules": [{"action": "allow", "subjects": [""]}]}`, "subjects has an empty value"},
		{"control in group", `{"version": 1, "rules": [{"action": "allow", "groups": ["a\nb"]}]}`, "control character"},
		{"scope with space", `{"version": 1, "rules": [{"action": "allow", "scopes": ["a b"]}]}`, "white space"},
		{"path both", `{"version": 1, "rules": [{"action": "allow", "paths": [{"exact": "/a", "prefix": "/b"}]}]}`, "exactly one"},
		{"path neither", `{"version": 1, "rules": [{"action": "allow", "paths": [{}]}]}`, "exactly one"},
		{"relative path", `{"version": 1, "rules": [{"action": "allow", "paths": [{"prefix": "orders"}]}]}`, "begin with /"},
		{"dot segment", `{"version": 1, "rules": [{"action": "allow", "paths": [{"prefix": "/a/../b"}]}]}`, ". or .."},
		{"encoded path", `{"version": 1, "rules": [{"action": "allow", "paths": [{"exact": "/a%2Fb"}]}]}`, "normalized"},
		{"double slash", `{"version": 1, "rules": [{"action": "allow", "paths": [{"exact": "/a//b"}]}]}`, "normalized"},
		{"digest given", `{"version": 1, "rules": [], "digest": "x"}`, "computed"},
		{"too large", `{"version": 1, "rules": [], "x": "` + strings.Repeat("a", MaxBytes) + `"}`, "exceeds"},
		{"trailing data", `{"version": 1, "rules": []} {}`, "strict JSON"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("error %v, want one containing %q", err, c.reason)
			}
			if len(err.Error()) > 200 {
				t.Errorf("reason of %d bytes is too long for an exit reason: %s", len(err.Error()), err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"version": 3, "mode": "shadow", "rules": [{"name": "a", "action": "allow", "groups": ["admin"], "paths": [{"prefix": "/o/"}]}]}`))
	f.Add([]byte(`{"version": 1, "rules": [{"action": "deny", "methods": ["GET"], "paths": [{"exact": "/x"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			return
		}
		// Everything accepted is what the Lua side expects.
		if d.Version < 1 || (d.Mode != "enforce" && d.Mode != "shadow") || len(d.Rules) > MaxRules {
			t.Fatalf("accepted %+v", d)
		}
		for _, r := range d.Rules {
			if r.Action != "allow" && r.Action != "deny" {
				t.Fatalf("accepted action %q", r.Action)
			}
			for _, p := range r.Paths {
				v := p.Exact + p.Prefix
				if !strings.HasPrefix(v, "/") || strings.Contains(v, "//") || strings.Contains(v, "%") {
					t.Fatalf("accepted path %q", v)
				}
			}
		}
	})
}
