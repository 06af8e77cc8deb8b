package registration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// What the agent registers, and how it compares with what Consul holds:
// pure functions, like the parser.

// identity is what makes a registration this resource's on this node.
type identity struct {
	resource        string        // the ha_resource meta value
	node            string        // for the default service ID
	deregisterAfter time.Duration // for checks that do not set their own; 0: none
}

// complete returns a copy of reg as the agent registers it: the service
// ID defaults to NAME-NODE, check IDs to Consul's own defaults (so the
// agent knows them, to push TTLs and compare), checks get the
// deregister_critical_service_after safety net, and meta carries the
// resource and a digest of everything else.
func complete(reg *api.AgentServiceRegistration, id identity) *api.AgentServiceRegistration {
	out := *reg
	if out.ID == "" {
		out.ID = out.Name
		if node := safeNode(id.node); node != "" {
			out.ID += "-" + node
		}
	}
	out.Tags = slices.Clone(reg.Tags)
	out.TaggedAddresses = maps.Clone(reg.TaggedAddresses)
	if reg.Weights != nil {
		w := *reg.Weights
		out.Weights = &w
	}
	out.Check = nil
	out.Checks = nil
	all := append(api.AgentServiceChecks{}, reg.Checks...)
	if reg.Check != nil {
		all = append(api.AgentServiceChecks{reg.Check}, all...)
	}
	for i, c := range all {
		cc := *c
		cc.Args = slices.Clone(c.Args)
		cc.Header = maps.Clone(c.Header)
		if cc.CheckID == "" {
			// Consul's own defaults, so nothing changes for someone
			// who looks at the checks with Consul's tools.
			cc.CheckID = "service:" + out.ID
			if len(all) > 1 {
				cc.CheckID += ":" + strconv.Itoa(i+1)
			}
		}
		if cc.DeregisterCriticalServiceAfter == "" && id.deregisterAfter > 0 {
			cc.DeregisterCriticalServiceAfter = id.deregisterAfter.String()
		}
		out.Checks = append(out.Checks, &cc)
	}
	out.Meta = maps.Clone(reg.Meta)
	if out.Meta == nil {
		out.Meta = map[string]string{}
	}
	delete(out.Meta, metaDefinition)
	out.Meta[metaResource] = id.resource
	out.Meta[metaDefinition] = digest(&out)
	return &out
}

// digest is a short hash of a registration without its own digest. JSON
// encoding sorts map keys, so equal registrations give equal digests.
func digest(reg *api.AgentServiceRegistration) string {
	r := *reg
	r.Meta = maps.Clone(reg.Meta)
	delete(r.Meta, metaDefinition)
	data, _ := json.Marshal(&r)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// safeNode makes a node name usable inside a service ID.
func safeNode(node string) string {
	return strings.Trim(strings.Map(func(r rune) rune {
		if r < 128 && (r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return '-'
	}, node), "-")
}

// drift lists how the registration Consul's local agent holds differs
// from want, in words for a log line; nil when it matches. checkIDs are
// the agent's checks of the service, maintenance excluded.
func drift(want *api.AgentServiceRegistration, got *api.AgentService, checkIDs []string) []string {
	if got == nil {
		return []string{"service " + want.ID + " is not registered"}
	}
	var diffs []string
	add := func(field string, got, want any) {
		diffs = append(diffs, fmt.Sprintf("%s is %v, want %v", field, got, want))
	}
	if got.Service != want.Name {
		add("name", got.Service, want.Name)
	}
	if got.Port != want.Port {
		add("port", got.Port, want.Port)
	}
	if got.Address != want.Address {
		add("address", strconv.Quote(got.Address), strconv.Quote(want.Address))
	}
	if !slices.Equal(got.Tags, want.Tags) {
		add("tags", got.Tags, want.Tags)
	}
	if !maps.Equal(got.Meta, want.Meta) {
		add("meta", sortedPairs(got.Meta), sortedPairs(want.Meta))
	}
	if got.EnableTagOverride != want.EnableTagOverride {
		add("enable_tag_override", got.EnableTagOverride, want.EnableTagOverride)
	}
	if want.Weights != nil && got.Weights != *want.Weights {
		add("weights", got.Weights, *want.Weights)
	}
	// Consul adds tagged addresses of its own (lan_ipv4...): only those
	// the definition names are compared.
	for _, k := range slices.Sorted(maps.Keys(want.TaggedAddresses)) {
		if g, ok := got.TaggedAddresses[k]; !ok || g != want.TaggedAddresses[k] {
			add("tagged address "+k, got.TaggedAddresses[k], want.TaggedAddresses[k])
		}
	}
	var wantIDs []string
	for _, c := range want.Checks {
		wantIDs = append(wantIDs, c.CheckID)
	}
	sort.Strings(wantIDs)
	gotIDs := slices.Sorted(slices.Values(checkIDs))
	if !slices.Equal(gotIDs, wantIDs) {
		add("checks", gotIDs, wantIDs)
	}
	return diffs
}

func sortedPairs(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}
