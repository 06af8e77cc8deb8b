package registration

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/ocf/process"
)

// Ownership. Anyone who can register a service with the local Consul
// agent can also write ha_resource=<this resource> into its meta, so the
// meta alone proves nothing: a registration is this resource's when it
// is on this node's agent, under an ID and a name this resource claims
// (the registration its definition describes, whose default ID carries
// this node's name, or one it recorded when it registered it), and with
// its ha_resource meta. Registering under a claimed name needs
// service:write on that very service, the right this resource's own
// token holds. Everything else is left alone, whatever its meta says.

// claim is a registration this resource may own on this node.
type claim struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func claimOf(reg *api.AgentServiceRegistration) claim { return claim{ID: reg.ID, Name: reg.Name} }

// owns reports whether s is this resource's, by the rule above.
func owns(s *api.AgentService, key string, claims []claim) bool {
	return s != nil && s.Meta[metaResource] == key && slices.Contains(claims, claim{ID: s.ID, Name: s.Service})
}

// ours lists the registrations of resource key on the local agent, by
// service ID.
func (v *view) ours(key string, claims []claim) []*api.AgentService {
	var out []*api.AgentService
	for _, id := range slices.Sorted(maps.Keys(v.services)) {
		if s := v.services[id]; owns(s, key, claims) {
			out = append(out, s)
		}
	}
	return out
}

// impostors lists the IDs of registrations that carry key's meta but are
// not this resource's: a stale registration of a definition since
// changed, or someone else's. The agent never touches them.
func (v *view) impostors(key string, claims []claim) []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(v.services)) {
		if s := v.services[id]; s.Meta[metaResource] == key && !owns(s, key, claims) {
			out = append(out, cleanText(id, 128))
		}
	}
	return out
}

// maxRecord bounds the record file: a few claims, never more.
const (
	maxRecord       = 64 << 10
	maxRecordClaims = 64
)

// ledger keeps the claims of what this resource registered on this node
// in a file of the state directory, so that a registration stays
// recognisable after its definition changed (a new service ID) or broke
// (a probe or a stop without a definition). The state directory is
// cleared at boot, so the record also tells a registration this resource
// made in this boot from one the node's Consul agent restored from its
// data directory after a reboot or a fencing: a probe withdraws the
// latter. After a reboot, only the definition's own registration is
// recognised, and deregister_critical_service_after removes older ones.
type ledger struct {
	dir, name string
	log       *slog.Logger
}

func newLedger(r *request) ledger {
	return ledger{dir: r.Env.StateDir(), name: "directory-registration-" + fileKey(r.Config.rt.key) + ".registered", log: r.Log}
}

// fileKey makes a resource key usable in a file name: Pacemaker IDs are
// letters, digits, '.', '_' and '-', and a unique clone instance adds
// ":N".
func fileKey(key string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return '@'
	}, key)
}

// load returns the recorded claims, and whether this boot holds a record
// at all. A missing record is (nil, false): nothing was registered by this
// resource on this node since the state directory was last cleared, at
// boot or by a stop. An unreadable or unsafe one is logged and read as
// (nil, true), so that a probe or a stop never fails over it, and a
// probe does not take a registration for one left from before the boot
// when it cannot tell.
func (l ledger) load() ([]claim, bool) {
	d, err := process.OpenStateDir(l.dir)
	if err != nil {
		l.log.Warn("cannot read what this resource registered; only its definition's registration is recognised", "err", err)
		return nil, true
	}
	defer d.Close()
	data, err := d.ReadFile(l.name, maxRecord)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	var rec struct{ Services []claim }
	if err == nil {
		err = json.Unmarshal(data, &rec)
	}
	if err != nil {
		l.log.Warn("ignoring the record of what this resource registered", "file", d.Path()+"/"+l.name, "err", err)
		return nil, true
	}
	var out []claim
	for _, c := range rec.Services {
		if validID(c.ID) == nil && validName(c.Name) == nil && !slices.Contains(out, c) && len(out) < maxRecordClaims {
			out = append(out, c)
		}
	}
	return out, true
}

// save replaces the record with claims; none removes it.
//
// Return values: nil, or an error naming the state directory (unsafe,
// unwritable).
func (l ledger) save(claims []claim) error {
	d, err := process.OpenStateDir(l.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if len(claims) == 0 {
		return d.Remove(l.name)
	}
	data, err := json.Marshal(struct{ Services []claim }{claims})
	if err != nil {
		return err
	}
	return d.WriteFileAtomic(l.name, data, 0o600)
}

// union adds to claims those of more that it lacks.
func union(claims []claim, more ...claim) []claim {
	out := slices.Clone(claims)
	for _, c := range more {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}
