package registration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/consul/api"
)

// FuzzParseDefinition feeds arbitrary bytes to the parser. Whatever it
// accepts must be a definition the agent can complete and register, and
// must read back the same from Consul's API form (what the agent sends):
// the parser and Consul's encoding agree on every field it lets through.
func FuzzParseDefinition(f *testing.F) {
	for _, pattern := range []string{"testdata/*.json", "testdata/bad/*.json"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(`{"name":"a","check":null,"checks":[{"CheckID":"x","ScriptArgs":["/bin/true"],"Interval":"1s"}]}`))
	f.Add([]byte(`{"service":{"name":"a","tagged_addresses":{"wan":{"address":"::1","port":1}},"weights":{"passing":3}}}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		reg, err := ParseDefinition(data)
		if err != nil {
			if reg != nil {
				t.Fatalf("a registration and an error: %+v, %v", reg, err)
			}
			if err.Error() == "" {
				t.Fatal("an error without a reason")
			}
			return
		}
		if validName(reg.Name) != nil {
			t.Fatalf("accepted name %q", reg.Name)
		}
		for _, c := range reg.Checks {
			types := 0
			for _, set := range []bool{len(c.Args) > 0, c.HTTP != "", c.TCP != "", c.GRPC != "", c.TTL != ""} {
				if set {
					types++
				}
			}
			if types != 1 {
				t.Fatalf("accepted a check with %d types: %+v", types, c)
			}
		}

		full := complete(reg, identity{resource: "rsc", node: "node"})
		if full.Meta[metaResource] != "rsc" || full.Meta[metaDefinition] == "" || full.ID == "" {
			t.Fatalf("completed registration lacks its identity: %+v", full)
		}
		if validID(full.ID) != nil {
			t.Fatalf("completed ID %q would break Consul's URL paths", full.ID)
		}
		for _, c := range full.Checks {
			if validID(c.CheckID) != nil {
				t.Fatalf("completed check ID %q would break Consul's URL paths", c.CheckID)
			}
		}
		if d := drift(full, nil, nil); len(d) == 0 {
			t.Fatal("no drift from an empty agent")
		}

		api, err := json.Marshal(reg)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseDefinition(api)
		if err != nil {
			t.Fatalf("the API form of an accepted definition is rejected: %v\n%s", err, api)
		}
		if diff := cmp.Diff(reg, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("API form reads back differently (-first +again):\n%s", diff)
		}
	})
}

// FuzzConsulAnswers feeds arbitrary answers to what the agent reads from
// Consul: the local agent's services and checks maps, and a health
// answer, decoded as the API client decodes them. Nothing may panic (a
// panic fails a stop, and a failed stop fences the node), only this
// resource's registrations may count as its own, and every text that
// reaches an exit reason must be clean.
func FuzzConsulAnswers(f *testing.F) {
	f.Add([]byte(`{"orders-node1": {"ID": "orders-node1", "Service": "orders", "Meta": {"ha_resource": "orders-reg"}}}`),
		[]byte(`{"service:orders-node1": {"CheckID": "service:orders-node1", "ServiceID": "orders-node1", "Status": "critical", "Output": "\u001b[31mdown"}}`),
		[]byte(`[{"Node": {"Node": "node1"}, "Service": {"ID": "orders-node1"}, "Checks": [{"CheckID": "a", "Status": "warning"}]}]`))
	f.Add([]byte(`{"orders-node1": null}`), []byte(`{"c": null}`), []byte(`[null, {"Node": null, "Service": null}]`))
	f.Add([]byte(`{"x": {"ID": "y", "Meta": {"ha_resource": "orders-reg"}}}`), []byte(`{"_service_maintenance:orders-node1": {"CheckID": "_service_maintenance:orders-node1", "ServiceID": "orders-node1", "Notes": "\u202e"}}`),
		[]byte(`[{"Node": {"Node": "node1"}, "Service": {"ID": "orders-node1"}, "Checks": [null]}]`))
	want := complete(&api.AgentServiceRegistration{Name: "orders", Checks: api.AgentServiceChecks{{TTL: "30s"}}}, identity{resource: "orders-reg", node: "node1"})
	claims := []claim{claimOf(want), {ID: "orders-old", Name: "orders"}}

	f.Fuzz(func(t *testing.T, servicesJSON, checksJSON, healthJSON []byte) {
		var services map[string]*api.AgentService
		var checks map[string]*api.AgentCheck
		if json.Unmarshal(servicesJSON, &services) != nil {
			services = nil
		}
		if json.Unmarshal(checksJSON, &checks) != nil {
			checks = nil
		}
		v, skipped := newView(services, checks)
		for _, s := range skipped {
			checkClean(t, "skipped entry", s, 1024)
		}
		ours := v.ours("orders-reg", claims)
		for _, s := range ours {
			if s.Meta[metaResource] != "orders-reg" || !slices.Contains(claims, claim{s.ID, s.Service}) {
				t.Fatalf("counted as ours: %+v", s)
			}
		}
		for _, id := range v.impostors("orders-reg", claims) {
			checkClean(t, "impostor", id, 128)
		}
		h := health(v.checksOf(ids(ours)))
		checkClean(t, "health detail", h.detail, 2048)
		drift(want, v.services[want.ID], v.checkIDs(want.ID))

		var entries []*api.ServiceEntry
		if json.Unmarshal(healthJSON, &entries) != nil {
			return
		}
		if e := findEntry(entries, want.ID, "node1"); e != nil {
			_ = e.Checks.AggregatedStatus()
			checkClean(t, "catalog summary", checkSummary(e.Checks), 1<<16)
		}
	})
}
