package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
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
