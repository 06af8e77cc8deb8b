package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
)

func TestVersions(t *testing.T) {
	p := &policy.Compiled{MaxTokenBytes: 8192, Issuers: []policy.CompiledIssuer{{Issuer: "i", Audiences: []string{"a"}, Algorithms: []string{"HS256"},
		Keys: []policy.CompiledKey{{Kind: policy.KindHMAC, Secret: []byte("0123456789abcdef0123456789abcdef")}}}}}
	d1, _ := acl.Parse([]byte(`{"version": 1, "rules": []}`))
	d2, _ := acl.Parse([]byte(`{"version": 2, "rules": []}`))
	a, _ := New(p, map[string]*acl.Document{"s": d1})
	b, _ := New(p, map[string]*acl.Document{"s": d1})
	c, _ := New(p, map[string]*acl.Document{"s": d2})
	if a.Version != b.Version || a.KeysVersion != b.KeysVersion {
		t.Errorf("the same state has two versions: %s/%s and %s/%s", a.Version, a.KeysVersion, b.Version, b.KeysVersion)
	}
	if c.Version == a.Version || c.KeysVersion != a.KeysVersion {
		t.Errorf("an ACL change: version %s→%s, keys %s→%s; want a new version, the same keys version", a.Version, c.Version, a.KeysVersion, c.KeysVersion)
	}
	p2 := *p
	p2.MaxTokenBytes = 4096
	e, _ := New(&p2, map[string]*acl.Document{"s": d1})
	if e.KeysVersion == a.KeysVersion {
		t.Errorf("a policy change kept the keys version %s", a.KeysVersion)
	}

	path := filepath.Join(t.TempDir(), "state.json")
	if _, err := Read(path); !errors.Is(err, ErrNone) {
		t.Errorf("Read of a missing file: %v, want ErrNone", err)
	}
	if err := Write(path, a); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600 (it holds HMAC secrets)", fi.Mode().Perm())
	}
	got, err := Read(path)
	if err != nil || got.Version != a.Version || got.ACLs["s"].Digest != d1.Digest || string(got.Policy.Issuers[0].Keys[0].Secret) != string(p.Issuers[0].Keys[0].Secret) {
		t.Errorf("read back %+v, %v", got, err)
	}
}
