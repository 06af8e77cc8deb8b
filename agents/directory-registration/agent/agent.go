// Package agent is ocf:ha-framework:directory-registration: it registers
// a service instance, with its health checks, on the local Consul agent of
// the node where the resource runs, and deregisters it (after a drain in
// maintenance) when Pacemaker stops it. It is meant as the last member of
// a group, after the service it announces.
//
// See README.md beside this package for the design: how stale
// registrations are found, how edited definition files are applied, what
// happens when Consul is down.
package agent

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/internal/version"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/cluster"
)

type request = ocf.Request[Config]

// New returns the agent declaration.
func New() *ocf.Agent[Config] {
	return &ocf.Agent[Config]{
		Name: "directory-registration", Version: version.Version,
		ShortDesc: "Registers a service instance in the local Consul agent",
		LongDesc:  longDesc,
		Params:    params,
		Actions:   actions,
		Validate:  validate,
		Start:     start,
		Stop:      stop,
		Monitor:   monitor,
		// reload-agent applies changed definition parameters by
		// registering again, which Consul does in place.
		ReloadAgent: reload,
	}
}

const longDesc = `Registers a service instance, with its health checks, on the Consul agent of the node where the resource runs (PUT /v1/agent/service/register: the local agent owns it and anti-entropy publishes it), and removes it on stop after a drain period in maintenance. ` +
	`The service is described by definition_file (Consul's JSON service format) or by the service_* and check_* parameters. ` +
	`The service ID defaults to NAME-NODE, and the meta entry ha_resource names the Pacemaker resource, so a probe finds a stale registration left on a node (Consul keeps registrations across restarts) and Pacemaker removes it. ` +
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
	// defErr is a definition fault a probe or a stop set aside: neither
	// needs the definition to find and remove registrations.
	defErr error
}

func validate(ctx context.Context, r *request) error {
	c := r.Config
	c.rt.key = resourceKey(r.Env)
	if c.rt.key == "" {
		return ocf.Errorf(ocf.ErrConfigured, "OCF_RESOURCE_INSTANCE is not set; run the agent through Pacemaker (crm_resource, pcs)")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return ocf.Errorf(ocf.ErrConfigured, "parameters cert_file and key_file go together; set both or neither")
	}
	for _, f := range []struct{ param, path string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return ocf.Errorf(ocf.ErrArgs, "parameter %s: %s is missing on this node: %w", f.param, f.path, err)
		}
	}
	if c.TokenFile != "" {
		token, err := ocf.ReadSecretFile(c.TokenFile, "token_file")
		if err != nil {
			return err
		}
		c.rt.token = token
	}
	parsed, fromFile, err := loadDefinition(c, r.Env)
	c.rt.parsed, c.rt.fromFile = parsed, fromFile
	if err != nil && (r.IsProbe() || r.Action == ocf.ActionStop) {
		// Registrations are found by their ha_resource meta, which needs
		// no definition: a broken definition must not hide a stale
		// registration from a probe, nor keep stop from removing it (a
		// failed stop gets the node fenced).
		c.rt.defErr = err
		return nil
	}
	return err
}

// loadDefinition reads the definition from definition_file or the
// parameters. Faults in the file are this node's (ErrArgs, ErrInstalled);
// faults in the parameters hold everywhere (ErrConfigured).
func loadDefinition(c *Config, env ocf.Env) (*api.AgentServiceRegistration, bool, error) {
	if c.DefinitionFile != "" {
		for _, name := range fieldParams {
			if _, set := env.Param(name); set {
				return nil, false, ocf.Errorf(ocf.ErrConfigured, "parameters definition_file and %s exclude each other: the file describes the whole service; move %s into it or unset definition_file", name, name)
			}
		}
	}
	if c.DefinitionFile == "" {
		reg, err := fromParams(c)
		if err != nil {
			return nil, false, &ocf.Error{Code: ocf.ErrConfigured, Reason: err.Error(), Err: err}
		}
		return reg, false, nil
	}
	data, err := readLimited(c.DefinitionFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, true, ocf.Errorf(ocf.ErrInstalled, "definition_file %s does not exist on this node; create it (Consul's JSON service format) or fix definition_file", c.DefinitionFile)
	case err != nil:
		return nil, true, ocf.Errorf(ocf.ErrArgs, "definition_file %s cannot be read on this node: %v", c.DefinitionFile, err)
	}
	reg, err := ParseDefinition(data)
	if err != nil {
		return nil, true, ocf.Errorf(ocf.ErrArgs, "definition_file: %v (in %s)", err, c.DefinitionFile)
	}
	return reg, true, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.IsDir() {
		return nil, errors.New("it is a directory")
	}
	return io.ReadAll(io.LimitReader(f, maxDefinitionSize+1))
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

// desired is the registration this resource wants on this node.
func desired(ctx context.Context, r *request) *api.AgentServiceRegistration {
	id := identity{resource: r.Config.rt.key, deregisterAfter: r.Config.DeregisterAfter}
	if r.Config.rt.parsed.ID == "" {
		id.node = nodeName(ctx, r.Env)
	}
	return complete(r.Config.rt.parsed, id)
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
	if err := cl.ensure(ctx, v, want, false); err != nil {
		return err
	}
	return cl.wait(ctx, want)
}

func stop(ctx context.Context, r *request) error {
	cl, err := connect(ctx, r)
	if err != nil {
		return err
	}
	v, err := cl.look(ctx)
	if err != nil {
		if code := ocf.CodeOf(err); code == ocf.ErrInstalled || code == ocf.ErrArgs {
			r.Log.Warn("cannot reach Consul to deregister; if it kept a registration, its checks turn critical and deregister_critical_service_after removes it",
				"deregister_critical_service_after", r.Config.DeregisterAfter)
		}
		return err
	}
	mine := v.ours(r.Config.rt.key)
	if len(mine) == 0 {
		return nil
	}
	return cl.withdraw(ctx, v, mine)
}

func monitor(ctx context.Context, r *request) (ocf.State, error) {
	cl, err := connect(ctx, r)
	if err != nil {
		return ocf.Stopped, err
	}
	v, err := cl.look(ctx)
	if err != nil {
		return ocf.Stopped, err
	}
	mine := v.ours(r.Config.rt.key)
	if len(mine) == 0 {
		if r.Config.rt.defErr != nil && r.Action == ocf.ActionMonitor {
			return ocf.Stopped, r.Config.rt.defErr
		}
		return ocf.Stopped, nil
	}
	if r.Config.rt.parsed == nil {
		// A probe with a broken definition: what is registered is
		// reported as it is, so that Pacemaker stops it.
		return ocf.Running, cl.verdict(v, ids(mine), nil)
	}
	want := desired(ctx, r)
	// Depth 10 applies an edited definition file, which Pacemaker cannot
	// see. crm_resource --force-check=10 asks for the same by hand (it
	// runs as a probe); Pacemaker's own probes are depth 0 and change
	// nothing.
	if r.CheckLevel() >= 10 {
		if diffs := drift(want, v.services[want.ID], v.checkIDs(want.ID)); len(diffs) > 0 {
			r.Log.Info("registration differs from the definition; registering again", "service_id", want.ID, "differences", strings.Join(diffs, "; "))
			if err := cl.ensure(ctx, v, want, false); err != nil {
				return ocf.Running, err
			}
			if v, err = cl.look(ctx); err != nil {
				return ocf.Running, err
			}
			mine = v.ours(r.Config.rt.key)
		}
	}
	// A probe only looks: refreshing the TTL of a stale registration
	// would make it pass for a service that may be gone.
	if !r.IsProbe() && v.services[want.ID] != nil && hasTTL(want) {
		if err := cl.refresh(ctx, want); err != nil {
			return ocf.Running, err
		}
		if v, err = cl.look(ctx); err != nil {
			return ocf.Running, err
		}
		mine = v.ours(r.Config.rt.key)
	}
	return ocf.Running, cl.verdict(v, ids(mine), want)
}

func reload(ctx context.Context, r *request) error {
	cl, err := connect(ctx, r)
	if err != nil {
		return err
	}
	v, err := cl.look(ctx)
	if err != nil {
		return err
	}
	if len(v.ours(r.Config.rt.key)) == 0 {
		// reload-agent must not start anything: the next start uses
		// the new definition.
		r.Log.Info("nothing registered; the new definition applies at the next start")
		return nil
	}
	// Always registered again, even when nothing shows a difference: a
	// new token_file changes the token Consul's anti-entropy uses for the
	// registration, which only registering replaces.
	return cl.ensure(ctx, v, desired(ctx, r), true)
}

func hasTTL(reg *api.AgentServiceRegistration) bool {
	return slices.ContainsFunc(reg.Checks, func(c *api.AgentServiceCheck) bool { return c.TTL != "" })
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
		return ocf.ErrArgs
	}
	return ocf.ErrConfigured
}

// definitionSource says where to fix the definition.
func (c *Config) definitionSource() string {
	if c.rt.fromFile {
		return "fix definition_file " + c.DefinitionFile
	}
	return "fix the service_* and check_* parameters"
}
