// Package registration is ocf:ha-framework:directory-registration: it registers
// a service instance, with its health checks, on the local Consul agent of
// the node where the resource runs, and deregisters it (after a drain in
// maintenance) when Pacemaker stops it. It is meant as the last member of
// a group, after the service it announces.
//
// See README.md beside this package for the design: how stale
// registrations are found, how edited definition files are applied, what
// happens when Consul is down.
package registration

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/internal/version"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/cluster"
)

type request = ocf.Request[Config]

// New returns the agent declaration.
func New() *ocf.Agent[Config] {
	return &ocf.Agent[Config]{
		Name: "directory-registration", Version: version.Version,
		ShortDesc:  "Registers a service instance in the local Consul agent",
		LongDesc:   longDesc,
		Params:     params,
		Operations: actions,
		Validate:   validate,
		Start:      start,
		Stop:       stop,
		Monitor:    monitor,
		// Register and deregister must not interleave: an
		// administrator's crm_resource --force-start beside the
		// cluster's stop could leave a registration nobody monitors.
		Exclusive: true,
		// reload-agent applies changed definition parameters by
		// registering again, which Consul does in place.
		ReloadAgent: reload,
	}
}

const longDesc = `Registers a service instance, with its health checks, on the Consul agent of the node where the resource runs (PUT /v1/agent/service/register: the local agent owns it and anti-entropy publishes it), and removes it on stop after a drain period in maintenance. ` +
	`The service is described by definition_file (Consul's JSON service format) or by the service_* and check_* parameters. ` +
	`The service ID defaults to NAME-NODE and the meta entry ha_resource names the Pacemaker resource; a registration is the resource's only with that ID and name (or those it recorded when it registered them) and that meta, while services of others that merely carry the meta are left alone. Consul keeps registrations across restarts: a probe withdraws one that the resource has no record of in HA_RSCTMP (cleared at boot), as after a reboot or a fencing, and reports not running, so that Pacemaker never finds the resource active on two nodes. ` +
	`Monitor depth 0 checks the registration exists and reports its checks (warning: degraded; critical: per on_critical), and refreshes TTL checks; depth 10 also compares the registration with the definition and registers again if the definition file was edited. ` +
	`Put it last in a group, after the service it announces: a group starts members in order and stops them in reverse, so the instance is announced only once the service runs and withdrawn before it stops. ` +
	`pcs: "pcs resource create orders-reg ocf:ha-framework:directory-registration definition_file=/etc/ha-framework/orders.json token_file=/etc/ha-framework/consul.token --group orders-group" (after the service: "pcs resource create orders ... --group orders-group"), then "pcs constraint order start consul-clone then orders-group" and "pcs constraint colocation add orders-group with consul-clone". ` +
	`crmsh: "crm configure primitive orders-reg ocf:ha-framework:directory-registration params definition_file=/etc/ha-framework/orders.json token_file=/etc/ha-framework/consul.token op monitor interval=10s timeout=20s op monitor interval=60s timeout=30s OCF_CHECK_LEVEL=10", "crm configure group orders-group orders orders-reg", "crm configure order orders-after-consul Mandatory: consul-clone orders-group" and "crm configure colocation orders-with-consul inf: orders-group consul-clone".`

// runtime is what validate resolves for the actions.
type runtime struct {
	key    string                        // the ha_resource meta value
	token  string                        // the ACL token, "" for none
	parsed *api.AgentServiceRegistration // the definition as written
	// fromFile says the definition is this node's file, not the CIB's
	// parameters: a fault in it is this node's (2), not fatal (6).
	fromFile bool
	// defErr is a definition fault a probe or a stop set aside: both
	// can still find and remove what this resource recorded.
	defErr error
	// filesErr is a fault in ca_file, cert_file or key_file: the Consul
	// client reads them, so it is not built (a FIFO would block it).
	filesErr error
}

func validate(ctx context.Context, r *request) error {
	c := r.Config
	// The Consul client reads these files when it is built: they are
	// checked first, before anything can end validation early, so that
	// a FIFO or a device is refused instead of blocking every action,
	// stop included. A CA or a certificate others can write would let
	// them redirect the agent's token.
	for _, f := range []struct {
		param, path string
		rules       ocf.FileRules
	}{
		{"ca_file", c.CAFile, ocf.FileRules{Trusted: true}},
		{"cert_file", c.CertFile, ocf.FileRules{Trusted: true}},
		{"key_file", c.KeyFile, ocf.FileRules{Secret: true}},
	} {
		if f.path == "" {
			continue
		}
		if _, err := ocf.ReadParamFile(f.path, f.param, f.rules); err != nil {
			c.rt.filesErr = err
			return err
		}
	}
	c.rt.key = resourceKey(r.Env)
	if c.rt.key == "" {
		return ocf.Errorf(ocf.Misconfigured, "OCF_RESOURCE_INSTANCE is not set; run the agent through Pacemaker (crm_resource, pcs)")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return ocf.Errorf(ocf.Misconfigured, "parameters cert_file and key_file go together; set both or neither")
	}
	token, err := consulapi.ReadToken(c.TokenFile)
	if err != nil {
		return err
	}
	c.rt.token = token
	parsed, fromFile, err := loadDefinition(c, r.Env)
	c.rt.parsed, c.rt.fromFile = parsed, fromFile
	if err != nil && (r.IsProbe() || r.Action == ocf.ActionStop) {
		// The record of what this resource registered names its
		// registrations without the definition: a broken definition
		// must not hide one from a probe, nor keep stop from removing
		// it (a failed stop gets the node fenced).
		c.rt.defErr = err
		return nil
	}
	return err
}

// loadDefinition reads the definition from definition_file or the
// parameters. Faults in the file are this node's (InvalidArgs, NotInstalled);
// faults in the parameters hold everywhere (Misconfigured).
func loadDefinition(c *Config, env ocf.Env) (*api.AgentServiceRegistration, bool, error) {
	if c.DefinitionFile != "" {
		for _, name := range fieldParams {
			if _, set := env.Param(name); set {
				return nil, false, ocf.Errorf(ocf.Misconfigured, "parameters definition_file and %s exclude each other: the file describes the whole service; move %s into it or unset definition_file", name, name)
			}
		}
	}
	if c.DefinitionFile == "" {
		reg, err := fromParams(c)
		if err != nil {
			return nil, false, &ocf.Error{Code: ocf.Misconfigured, Reason: err.Error(), Err: err}
		}
		return reg, false, nil
	}
	// A definition is code: a script check it names runs as the Consul
	// agent's user, registered with this resource's token. So it follows
	// the rules of a token file, but for being readable.
	data, err := ocf.ReadParamFile(c.DefinitionFile, "definition_file", ocf.FileRules{Trusted: true, MaxSize: maxDefinitionSize})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, true, &ocf.Error{Code: ocf.NotInstalled, Err: err, Reason: fmt.Sprintf(
			"definition_file %s does not exist on this node; create it (Consul's JSON service format) or fix definition_file", c.DefinitionFile)}
	case err != nil:
		return nil, true, err
	}
	reg, err := ParseDefinition(data)
	if err != nil {
		return nil, true, ocf.Errorf(ocf.InvalidArgs, "definition_file: %v (in %s)", err, c.DefinitionFile)
	}
	return reg, true, nil
}

// resourceKey names this resource in the ha_resource meta. An anonymous
// clone's instance number is arbitrary on each node, so it is left out;
// a globally unique clone's instances are distinct and keep it.
func resourceKey(env ocf.Env) string {
	inst := env.Instance()
	if c, ok := env.Clone(); ok && c.GloballyUnique {
		return inst
	}
	if i := strings.IndexByte(inst, ':'); i >= 0 {
		return inst[:i]
	}
	return inst
}

// nodeName is this node's name for the default service ID: Pacemaker's
// name for it (given on every operation Pacemaker runs), else crm_node's
// answer (crm_resource --force-* runs), else the host name.
func nodeName(ctx context.Context, env ocf.Env) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if n, err := (cluster.CLI{}).LocalNode(ctx, env); err == nil {
		return n
	}
	h, _ := os.Hostname()
	return h
}

// desired is the registration this resource wants on this node, nil
// when a probe or a stop set a broken definition aside.
func desired(ctx context.Context, r *request) *api.AgentServiceRegistration {
	if r.Config.rt.parsed == nil {
		return nil
	}
	id := identity{resource: r.Config.rt.key, deregisterAfter: r.Config.DeregisterAfter}
	if r.Config.rt.parsed.ID == "" {
		id.node = nodeName(ctx, r.Env)
	}
	return complete(r.Config.rt.parsed, id)
}

// claims lists what this resource may own on this node: want (nil for
// none) and what it recorded. recorded says whether there is a record of
// this boot (ledger.load).
func claims(r *request, want *api.AgentServiceRegistration) (out []claim, recorded bool) {
	out, recorded = newLedger(r).load()
	if want != nil {
		out = union(out, claimOf(want))
	}
	return out, recorded
}

// mine lists this resource's registrations, and logs the registrations
// that carry its meta without being its own.
func mine(r *request, v *view, claims []claim) []*api.AgentService {
	if others := v.impostors(r.Config.rt.key, claims); len(others) > 0 {
		r.Log.Warn("registrations carry this resource's ha_resource meta but were not registered by it; left alone",
			"service_ids", strings.Join(others, ","))
	}
	return v.ours(r.Config.rt.key, claims)
}

func start(ctx context.Context, r *request) error {
	cl, err := connect(ctx, r)
	if err != nil {
		return err
	}
	want := desired(ctx, r)
	v, err := cl.look(ctx)
	if err != nil {
		return err
	}
	if n := prime(ctx, want); n > 0 {
		r.Log.Debug("checks enter Consul passing: they passed a probe just now", "checks", n)
	}
	held, _ := claims(r, want)
	if err := cl.ensure(ctx, v, want, held, false); err != nil {
		return err
	}
	return cl.wait(ctx, want)
}

// stop withdraws this resource's registrations. It fails only when
// Consul answers and refuses: without an answer, nothing this node's
// Consul agent holds is served while it is down, and a failed stop would
// get the node fenced.
func stop(ctx context.Context, r *request) error {
	cl, err := connect(ctx, r)
	if err != nil {
		return err
	}
	want := desired(ctx, r)
	held, _ := claims(r, want)
	v, err := cl.look(ctx)
	if down, _ := consulDown(err); down {
		r.Log.Warn("cannot reach Consul to deregister; if it kept a registration, its checks turn critical and deregister_critical_service_after removes it",
			"reason", ocf.ReasonOf(err), "deregister_critical_service_after", r.Config.DeregisterAfter)
		return nil
	}
	if err != nil {
		return err
	}
	if ours := mine(r, v, held); len(ours) > 0 {
		err = cl.withdraw(ctx, v, ours)
		if down, _ := consulDown(err); down {
			r.Log.Warn("Consul stopped answering during the stop; deregister_critical_service_after removes what it kept",
				"reason", ocf.ReasonOf(err))
			return nil
		}
		if err != nil {
			return err
		}
	}
	if err := newLedger(r).save(nil); err != nil {
		r.Log.Warn("cannot remove the record of the registration", "err", err)
	}
	return nil
}

func monitor(ctx context.Context, r *request) (ocf.State, error) {
	cl, err := connect(ctx, r)
	if err != nil {
		return ocf.Stopped, err
	}
	want := desired(ctx, r)
	held, recorded := claims(r, want)
	v, err := cl.look(ctx)
	if down, refused := consulDown(err); down {
		// No Consul agent listens on this node: nothing it registered
		// can be served. A probe says "not running" then (a node
		// without Consul never blocks recovery), and so does the
		// check after a stop; a Consul that is there but does not
		// answer leaves the probe unsure.
		if (r.IsProbe() && refused) || r.Action == ocf.ActionStop {
			r.Log.Info("Consul does not answer; nothing of this resource can be registered", "reason", ocf.ReasonOf(err))
			return ocf.Stopped, nil
		}
	}
	if err != nil {
		return ocf.Stopped, err
	}
	ours := mine(r, v, held)
	if len(ours) == 0 {
		return ocf.Stopped, nil
	}
	switch {
	case r.IsProbe() && !recorded:
		cl.forgetStale(ctx, ours)
		return ocf.Stopped, nil
	case !recorded && r.Action == ocf.ActionMonitor:
		// A recurring monitor runs only where Pacemaker has the
		// resource active: what it finds is this resource's even if
		// the record went missing (a state directory cleaned by hand).
		// Recorded again, so that the next probe here (after a restart
		// of Pacemaker) does not withdraw it.
		if err := newLedger(r).save(claimsOf(ours)); err != nil {
			r.Log.Warn("cannot record the registration", "err", err)
		}
	}
	if verr := r.ValidationErr(); verr != nil {
		// The SDK runs the monitor despite a fault on this node (a
		// token, definition or TLS file) so that a registration still
		// in place is seen: running, but degraded until it is fixed.
		return ocf.Running, &ocf.Error{Code: ocf.Degraded, Reason: ocf.ReasonOf(verr), Err: verr}
	}
	if want == nil {
		// A probe with a broken definition: what is registered is
		// reported as it is, so that Pacemaker stops it.
		return ocf.Running, cl.verdict(v, ids(ours), nil)
	}
	// Depth 10 applies an edited definition file, which Pacemaker cannot
	// see. crm_resource --force-check=10 asks for the same by hand (it
	// runs as a probe); Pacemaker's own probes are depth 0 and change
	// nothing.
	if r.CheckLevel() >= 10 {
		if diffs := drift(want, v.services[want.ID], v.checkIDs(want.ID)); len(diffs) > 0 {
			r.Log.Info("registration differs from the definition; registering again", "service_id", want.ID, "differences", cleanText(strings.Join(diffs, "; "), 1024))
			if err := cl.ensure(ctx, v, want, held, false); err != nil {
				return ocf.Running, err
			}
			if v, err = cl.look(ctx); err != nil {
				return ocf.Running, err
			}
			held, _ = claims(r, want)
			ours = v.ours(r.Config.rt.key, held)
		}
	}
	// A probe only looks: refreshing the TTL of a stale registration
	// would make it pass for a service that may be gone. Nor does the
	// monitor the SDK runs to confirm a start or a stop: start's ensure
	// has just refreshed it.
	if r.Action == ocf.ActionMonitor && !r.IsProbe() && owns(v.services[want.ID], r.Config.rt.key, held) && hasTTL(want) {
		if err := cl.refresh(ctx, want); err != nil {
			return ocf.Running, err
		}
		// Consul accepted the new state: reading the agent again would
		// cost two more requests on every monitor of every resource.
		v.passed(want)
	}
	return ocf.Running, cl.verdict(v, ids(ours), want)
}

func reload(ctx context.Context, r *request) error {
	cl, err := connect(ctx, r)
	if err != nil {
		return err
	}
	want := desired(ctx, r)
	held, _ := claims(r, want)
	v, err := cl.look(ctx)
	if err != nil {
		return err
	}
	if len(mine(r, v, held)) == 0 {
		// reload-agent must not start anything: the next start uses
		// the new definition.
		r.Log.Info("nothing registered; the new definition applies at the next start")
		return nil
	}
	// Always registered again, even when nothing shows a difference: a
	// new token_file changes the token Consul's anti-entropy uses for the
	// registration, which only registering replaces.
	return cl.ensure(ctx, v, want, held, true)
}

func hasTTL(reg *api.AgentServiceRegistration) bool {
	return slices.ContainsFunc(reg.Checks, func(c *api.AgentServiceCheck) bool { return c.TTL != "" })
}

func claimsOf(services []*api.AgentService) []claim {
	out := make([]claim, len(services))
	for i, s := range services {
		out[i] = claim{ID: s.ID, Name: s.Service}
	}
	return out
}

func ids(services []*api.AgentService) []string {
	out := make([]string, len(services))
	for i, s := range services {
		out[i] = s.ID
	}
	return out
}

// definitionCode is the exit status for a fault in the definition: the
// node's own file is this node's problem, parameters are everyone's.
func (c *Config) definitionCode() ocf.Code {
	if c.rt.fromFile {
		return ocf.InvalidArgs
	}
	return ocf.Misconfigured
}

// definitionSource says where to fix the definition.
func (c *Config) definitionSource() string {
	if c.rt.fromFile {
		return "fix definition_file " + c.DefinitionFile
	}
	return "fix the service_* and check_* parameters"
}
