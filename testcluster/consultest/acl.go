package consultest

import (
	"fmt"
	"math/rand/v2"
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

// StartACLServer is StartServer for a dev agent with ACLs enabled and
// denying by default; it returns the agent and a client holding the
// management token.
func StartACLServer(t testing.TB) (*Cluster, *api.Client) {
	t.Helper()
	management := fmt.Sprintf("%08x-0000-4000-8000-%012x", rand.Uint32(), rand.Uint64()&(1<<48-1))
	cl := StartServer(t, &Options{Dev: true, ExtraHCL: `
acl {
  enabled = true
  default_policy = "deny"
  tokens { initial_management = "` + management + `" }
}
`})
	admin, err := api.NewClient(&api.Config{Address: cl.HTTPAddr(0), Token: management})
	if err != nil {
		t.Fatal(err)
	}
	return cl, admin
}
