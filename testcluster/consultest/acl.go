package consultest

import (
	"testing"

	"github.com/hashicorp/consul/api"
)

// Token creates, through admin (a client with the management token of a
// cluster with ACLs enabled), a policy named name with rules (Consul's
// HCL rules) and a token linked to it, and returns the token's secret. It
// calls t.Fatal when Consul refuses either.
func Token(t testing.TB, admin *api.Client, name, rules string) string {
	t.Helper()
	p, _, err := admin.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := admin.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: p.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok.SecretID
}
