package registration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/ocf"
)

// consul is one action's conversation with the local Consul agent.
type consul struct {
	api *api.Client
	r   *request
}

func connect(ctx context.Context, r *request) (*consul, error) {
	c := r.Config
	if c.rt.filesErr != nil {
		// Only a stop, or a monitor the SDK runs despite validation,
		// gets here with a bad file (a stop even with a relative path,
		// which decoding reported). Without its TLS files it cannot
		// talk to Consul, which is this node's problem: InvalidArgs makes
		// a stop a success and a probe "not running".
		return nil, &ocf.Error{Code: ocf.InvalidArgs, Reason: ocf.ReasonOf(c.rt.filesErr), Err: c.rt.filesErr}
	}
	// No client-wide timeout: every request carries the action's context.
	client, err := consulapi.NewClient(ctx, consulapi.Options{
		Address: c.ConsulAddress, Token: c.rt.token, CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, ocf.Errorf(ocf.GenericFailure, "no time left to reach Consul: %v", err)
		}
		return nil, ocf.Errorf(ocf.InvalidArgs, "Consul client for consul_address %s: %v; check ca_file, cert_file and key_file", c.ConsulAddress, err)
	}
	return &consul{api: client, r: r}, nil
}

// view is what the local agent holds: its services and checks.
type view struct {
	services map[string]*api.AgentService
	checks   map[string]*api.AgentCheck
}

// look reads the agent's services and checks. The agent answers from its
// own state, so this works without a Consul leader.
func (c *consul) look(ctx context.Context) (*view, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	services, err := c.api.Agent().ServicesWithFilterOpts("", q)
	if err != nil {
		return nil, c.fail("listing the agent's services", err)
	}
	checks, err := c.api.Agent().ChecksWithFilterOpts("", q)
	if err != nil {
		return nil, c.fail("listing the agent's checks", err)
	}
	v, skipped := newView(services, checks)
	for _, what := range skipped {
		c.r.Log.Warn("skipping a malformed entry in the Consul agent's answer", "entry", what)
	}
	return v, nil
}

// newView keeps the well-formed entries of the agent's answers: whoever
// answers on consul_address may send a null entry, or an entry filed
// under another ID than its own, and neither may stop an action (a
// failed stop gets the node fenced). It returns the view and what it
// skipped, for the log.
func newView(services map[string]*api.AgentService, checks map[string]*api.AgentCheck) (*view, []string) {
	v := &view{services: map[string]*api.AgentService{}, checks: map[string]*api.AgentCheck{}}
	var skipped []string
	for _, id := range slices.Sorted(maps.Keys(services)) {
		switch s := services[id]; {
		case s == nil:
			skipped = append(skipped, "service "+strconv.Quote(cleanText(id, 128))+" is null")
		case s.ID != id:
			skipped = append(skipped, "service "+strconv.Quote(cleanText(id, 128))+" has the ID "+strconv.Quote(cleanText(s.ID, 128)))
		default:
			v.services[id] = s
		}
	}
	for _, id := range slices.Sorted(maps.Keys(checks)) {
		switch ch := checks[id]; {
		case ch == nil:
			skipped = append(skipped, "check "+strconv.Quote(cleanText(id, 128))+" is null")
		case ch.CheckID != id:
			skipped = append(skipped, "check "+strconv.Quote(cleanText(id, 128))+" has the ID "+strconv.Quote(cleanText(ch.CheckID, 128)))
		default:
			v.checks[id] = ch
		}
	}
	return v, skipped
}

// checkIDs lists the checks of service id, maintenance excluded.
func (v *view) checkIDs(id string) []string {
	var out []string
	for cid, ch := range v.checks {
		if ch.ServiceID == id && !strings.HasPrefix(cid, api.ServiceMaintPrefix) {
			out = append(out, cid)
		}
	}
	slices.Sort(out)
	return out
}

// passed records what refresh did: want's TTL checks are passing.
func (v *view) passed(want *api.AgentServiceRegistration) {
	for _, ch := range want.Checks {
		if c, ok := v.checks[ch.CheckID]; ok && ch.TTL != "" {
			now := *c
			now.Status = api.HealthPassing
			v.checks[ch.CheckID] = &now
		}
	}
}

// checksOf lists the checks of the services ids, maintenance included.
func (v *view) checksOf(ids []string) []*api.AgentCheck {
	var out []*api.AgentCheck
	for _, cid := range slices.Sorted(maps.Keys(v.checks)) {
		if ch := v.checks[cid]; slices.Contains(ids, ch.ServiceID) {
			out = append(out, ch)
		}
	}
	return out
}

// ensure makes want this resource's only registration: registered (again
// if it differs, or if force), out of maintenance, other registrations of
// the resource (older IDs) removed, TTL checks passing. Registering again
// is safe: Consul keeps the state of unchanged checks.
func (c *consul) ensure(ctx context.Context, v *view, want *api.AgentServiceRegistration, claims []claim, force bool) error {
	key := c.r.Config.rt.key
	claims = union(claims, claimOf(want))
	if s, ok := v.services[want.ID]; ok && !owns(s, key, claims) {
		var owner string
		switch m := s.Meta[metaResource]; {
		case m == "":
			owner = "something other than Pacemaker"
		case m != key:
			owner = "resource " + strconv.Quote(cleanText(m, 64))
		default:
			owner = "service " + strconv.Quote(cleanText(s.Service, 64)) + " with this resource's meta"
		}
		return ocf.Errorf(ocf.InvalidArgs, "set service_id (or \"id\" in the definition): %s on this node's Consul is taken by %s", want.ID, owner)
	}
	// Recorded before registering: an interrupted start leaves a
	// registration the next action must recognise.
	led := newLedger(c.r)
	if err := led.save(claims); err != nil {
		return ocf.Errorf(ocf.InvalidArgs, "state directory: %v", err)
	}
	if force || len(drift(want, v.services[want.ID], v.checkIDs(want.ID))) > 0 {
		opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
		if err := c.api.Agent().ServiceRegisterOpts(want, opts); err != nil {
			return c.fail("registering service "+want.ID, err)
		}
		c.r.Log.Info("registered", "service_id", want.ID, "service", want.Name, "checks", len(want.Checks))
	}
	q := (&api.QueryOptions{}).WithContext(ctx)
	if _, inMaint := v.checks[api.ServiceMaintPrefix+want.ID]; inMaint {
		// An interrupted stop leaves the instance in maintenance.
		if err := c.api.Agent().DisableServiceMaintenanceOpts(want.ID, q); err != nil {
			return c.fail("ending maintenance of service "+want.ID, err)
		}
	}
	for _, s := range v.ours(key, claims) {
		if s.ID == want.ID {
			continue
		}
		if err := c.api.Agent().ServiceDeregisterOpts(s.ID, q); err != nil && !consulapi.IsNotFound(err) {
			return c.fail("deregistering the old registration "+s.ID, err)
		}
		c.r.Log.Info("deregistered an old registration of this resource", "service_id", s.ID)
	}
	if err := led.save([]claim{claimOf(want)}); err != nil {
		c.r.Log.Warn("cannot update the record of the registration", "err", err)
	}
	return c.refresh(ctx, want)
}

// refresh sets want's TTL checks to passing: the monitor's verdict is the
// TTL check's heartbeat. Consul's PUT /v1/agent/check/update/:id carries
// the output in its body, unlike the older /check/pass/:id. The output
// stays the same from one monitor to the next, so that anti-entropy has
// nothing to send to the servers.
func (c *consul) refresh(ctx context.Context, want *api.AgentServiceRegistration) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	output := "Pacemaker resource " + c.r.Config.rt.key + " is active on this node"
	for _, ch := range want.Checks {
		if ch.TTL == "" {
			continue
		}
		if err := c.api.Agent().UpdateTTLOpts(ch.CheckID, output, api.HealthPassing, q); err != nil {
			if consulapi.IsNotFound(err) {
				return ocf.Errorf(ocf.GenericFailure, "TTL check %s of service %s is gone from the Consul agent; the registration was changed outside Pacemaker", ch.CheckID, want.ID)
			}
			return c.fail("updating TTL check "+ch.CheckID, err)
		}
	}
	return nil
}

// wait returns once the registration is as visible as wait_for asks.
func (c *consul) wait(ctx context.Context, want *api.AgentServiceRegistration) error {
	mode := c.r.Config.WaitFor
	if mode == waitAgent || mode == "" {
		return nil // ensure's own answers came from the agent
	}
	delay := 100 * time.Millisecond
	var last string
	for {
		seen, err := c.catalog(ctx, want)
		switch {
		case err != nil:
			if ocf.CodeOf(err) != ocf.GenericFailure {
				return err
			}
			last = ocf.ReasonOf(err)
		case seen == nil:
			last = "not in the catalog yet (anti-entropy needs a Consul leader)"
		case mode == waitCatalog:
			return nil
		default:
			status := seen.Checks.AggregatedStatus()
			if status == api.HealthPassing {
				return nil
			}
			last = "in the catalog, " + status + checkSummary(seen.Checks)
		}
		select {
		case <-ctx.Done():
			return ocf.Errorf(ocf.GenericFailure, "service %s not %s before the start timeout: %s; raise the start timeout or set wait_for=agent", want.ID, mode, last)
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

// catalog finds this node's instance of want in the catalog's health
// view, or nil. The node's name comes from the local agent's checks.
func (c *consul) catalog(ctx context.Context, want *api.AgentServiceRegistration) (*api.ServiceEntry, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	node, err := c.node(ctx, want)
	if err != nil {
		return nil, err
	}
	entries, _, err := c.api.Health().Service(want.Name, "", false, q)
	if err != nil {
		return nil, c.fail("reading the catalog for "+want.Name, err)
	}
	return findEntry(entries, want.ID, node), nil
}

// findEntry picks the instance id on node from a health answer, or nil.
// Entries without a node or a service are skipped, and null checks left
// out of the copy returned: api.HealthChecks' own methods would panic on
// them.
func findEntry(entries []*api.ServiceEntry, id, node string) *api.ServiceEntry {
	for _, e := range entries {
		if e == nil || e.Service == nil || e.Node == nil || e.Service.ID != id || e.Node.Node != node {
			continue
		}
		out := *e
		out.Checks = slices.DeleteFunc(slices.Clone(e.Checks), func(ch *api.HealthCheck) bool { return ch == nil })
		return &out
	}
	return nil
}

// node is the local agent's node name. Checks carry it and need only the
// service read the agent needs anyway; agent/self needs agent:read.
func (c *consul) node(ctx context.Context, want *api.AgentServiceRegistration) (string, error) {
	checks, err := c.api.Agent().ChecksWithFilterOpts("", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return "", c.fail("listing the agent's checks", err)
	}
	for _, ch := range checks {
		if ch != nil && ch.ServiceID == want.ID && ch.Node != "" {
			return ch.Node, nil
		}
	}
	// agent/self under the action's context (the api package's NodeName
	// takes none).
	var self struct{ Config struct{ NodeName string } }
	_, err = c.api.Raw().Query("/v1/agent/self", &self, (&api.QueryOptions{}).WithContext(ctx))
	name := self.Config.NodeName
	if err == nil && name == "" {
		err = errors.New("the agent reports no node name")
	}
	if err != nil {
		return "", c.fail("asking the agent's node name", err)
	}
	return name, nil
}

// withdraw takes the registrations out of discovery, waits for clients to
// drain, and deregisters them.
func (c *consul) withdraw(ctx context.Context, v *view, mine []*api.AgentService) error {
	if c.r.Config.DrainPeriod <= 0 {
		// Maintenance only tells clients to leave before the
		// deregistration; without a drain it is one more write to the
		// agent (a check it persists) on a recovery's path.
		return c.deregister(ctx, mine)
	}
	q := (&api.QueryOptions{}).WithContext(ctx)
	reason := c.stoppingNote()
	// Clients only need a drain if they could reach the instance: not
	// if every instance was critical or in maintenance already.
	serving := false
	for _, s := range mine {
		if status := health(v.checksOf([]string{s.ID})).status; status == api.HealthPassing || status == api.HealthWarning {
			serving = true
		}
		if err := c.api.Agent().EnableServiceMaintenanceOpts(s.ID, reason, q); err != nil && !consulapi.IsNotFound(err) {
			return c.fail("putting service "+s.ID+" in maintenance", err)
		}
		c.r.Log.Info("in maintenance", "service_id", s.ID)
	}
	if serving {
		c.drain(ctx)
	}
	return c.deregister(ctx, mine)
}

// stoppingNote is the maintenance note of this resource's stop, by which
// a monitor knows a maintenance its stop left unfinished.
func (c *consul) stoppingNote() string {
	return "Pacemaker is stopping resource " + c.r.Config.rt.key
}

// deregister removes the registrations from the local agent at once.
func (c *consul) deregister(ctx context.Context, services []*api.AgentService) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	for _, s := range services {
		if err := c.api.Agent().ServiceDeregisterOpts(s.ID, q); err != nil && !consulapi.IsNotFound(err) {
			return c.fail("deregistering service "+s.ID, err)
		}
		c.r.Log.Info("deregistered", "service_id", s.ID)
	}
	return nil
}

// forgetStale withdraws, for a probe, this resource's registrations that
// no record of this boot accounts for: the node's Consul agent restored
// them from its data directory after the node rebooted or was fenced,
// while the resource runs elsewhere (or nowhere yet). Reporting them
// running would make Pacemaker see the resource active on two nodes, and
// its recovery from that stops it everywhere; reporting a failure is
// counted as active too. So the probe removes them and reports "not
// running". Nothing this node runs serves them (Pacemaker starts nothing
// before its probes), so there is no maintenance and no drain. It never
// fails: a registration it could not remove is logged, and its checks,
// failing against a service that does not run here, get it removed after
// deregister_critical_service_after.
func (c *consul) forgetStale(ctx context.Context, stale []*api.AgentService) {
	if err := c.deregister(ctx, stale); err != nil {
		c.r.Log.Warn("registration restored by Consul from before this boot; withdrawing it failed",
			"service_ids", strings.Join(ids(stale), ","), "reason", ocf.ReasonOf(err))
		return
	}
	c.r.Log.Warn("withdrew the registration Consul restored from before this boot",
		"service_ids", strings.Join(ids(stale), ","))
}

// drain waits drain_period, leaving time before the stop timeout for the
// deregistration itself: a stop that overruns gets the node fenced.
func (c *consul) drain(ctx context.Context) {
	d := c.r.Config.DrainPeriod
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		budget := max(left-min(left/2, 3*time.Second), 0)
		if d > budget {
			c.r.Log.Warn("drain shortened to fit the stop timeout; raise the stop timeout", "drain_period", d, "drained", budget)
			d = budget
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// verdict turns the checks of the registrations ids into the monitor's
// answer. want, when known, adds the TTL-versus-interval check.
func (c *consul) verdict(v *view, ids []string, want *api.AgentServiceRegistration) error {
	h := health(v.checksOf(ids))
	r := c.r
	switch h.status {
	case api.HealthWarning:
		return ocf.Errorf(ocf.Degraded, "service %s: %s", strings.Join(ids, ", "), h.detail)
	case api.HealthMaint:
		if h.detail == c.stoppingNote() && r.Action == ocf.ActionMonitor {
			// This resource's own stop put it there and never
			// finished (killed at its timeout, or the node went down
			// meanwhile): as degraded, the instance would stay out of
			// discovery for good. A failure makes Pacemaker stop and
			// start it, which ends the maintenance.
			return ocf.Errorf(ocf.GenericFailure, "service %s is still in maintenance from an unfinished stop of this resource", strings.Join(ids, ", "))
		}
		return ocf.Errorf(ocf.Degraded, "service %s is in maintenance: %s", strings.Join(ids, ", "), h.detail)
	case api.HealthCritical:
		// Start's and stop's own polls ask whether the registration
		// exists; a check still starting up is critical at first.
		if r.Action != ocf.ActionMonitor {
			return nil
		}
		if r.Config.OnCritical == criticalFailure {
			return ocf.Errorf(ocf.GenericFailure, "on_critical=failure: service %s: %s", strings.Join(ids, ", "), h.detail)
		}
		return ocf.Errorf(ocf.Degraded, "service %s: %s", strings.Join(ids, ", "), h.detail)
	}
	// Every recurring monitor refreshes the TTLs, so the shortest one
	// matters: the depth-0 monitor, by convention the frequent one.
	if interval := r.Env.Interval(); want != nil && interval > 0 && r.CheckLevel() < 10 {
		for _, ch := range want.Checks {
			if ttl, err := time.ParseDuration(ch.TTL); err == nil && ttl <= interval {
				return ocf.Errorf(ocf.Degraded, "TTL check %s has ttl %v, not longer than the monitor interval %v: it turns critical between monitors; make the ttl about three times the interval", ch.CheckID, ttl, interval)
			}
		}
	}
	return nil
}

// checkHealth is the worst state among some checks, and why.
type checkHealth struct {
	status string // api.HealthPassing, HealthWarning, HealthCritical or HealthMaint
	detail string
}

// health aggregates checks as Consul does (maintenance over critical over
// warning), naming the first check in the worst state with its output.
func health(checks []*api.AgentCheck) checkHealth {
	rank := map[string]int{api.HealthPassing: 0, api.HealthWarning: 1, api.HealthCritical: 2, api.HealthMaint: 3}
	h := checkHealth{status: api.HealthPassing}
	for _, ch := range checks {
		status := ch.Status
		if strings.HasPrefix(ch.CheckID, api.ServiceMaintPrefix) || ch.CheckID == api.NodeMaint {
			status = api.HealthMaint
		} else if _, ok := rank[status]; !ok {
			status = api.HealthCritical
		}
		// Strictly worse only: the first check in the worst state is
		// the one named.
		if rank[status] <= rank[h.status] {
			continue
		}
		if status == api.HealthMaint {
			h = checkHealth{status, cleanText(ch.Notes, maxOutput)}
			continue
		}
		name := ch.Name
		if name == "" {
			name = ch.CheckID
		}
		detail := fmt.Sprintf("check %q (%s) is %s", cleanText(name, 64), cleanText(ch.CheckID, 128), status)
		if out := cleanText(ch.Output, maxOutput); out != "" {
			detail += ": " + out
		}
		h = checkHealth{status, detail}
	}
	return h
}

func checkSummary(checks api.HealthChecks) string {
	var bad []string
	for _, ch := range checks {
		if ch != nil && ch.Status != api.HealthPassing {
			bad = append(bad, cleanText(ch.CheckID, 64)+" "+cleanText(ch.Status, 16))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return " (" + strings.Join(bad, ", ") + ")"
}

// maxOutput bounds a check's output or note in a reason: enough to say
// what failed, while the reason as a whole fits Pacemaker's 128 bytes
// once the SDK cuts it, with the check's name first.
const maxOutput = 120

// unreachable is a Consul request that got no HTTP answer.
type unreachable struct {
	// refused: nothing listens at consul_address (or its name does not
	// resolve), so no Consul agent runs there to hold a registration.
	refused bool
	err     error
}

func (u *unreachable) Error() string { return u.err.Error() }
func (u *unreachable) Unwrap() error { return u.err }

// consulDown reports whether err is a Consul request without an answer,
// and whether nothing listened at all.
func consulDown(err error) (down, refused bool) {
	var u *unreachable
	if errors.As(err, &u) {
		return true, u.refused
	}
	return false, false
}

// fail turns a failed Consul call into an exit status and a reason
// naming the fix. A Consul that does not answer is a plain failure
// (GenericFailure, carrying *unreachable): it is usually a restart or an
// outage of the directory, which must not ban the resource from the node
// as NotInstalled would; probe and stop read it themselves (see
// monitor, stop). A refused token is this node's configuration (InvalidArgs).
func (c *consul) fail(what string, err error) error {
	cfg := c.r.Config
	addr := cfg.ConsulAddress
	var se api.StatusError
	if !errors.As(err, &se) {
		var dns *net.DNSError
		refused := errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dns)
		return &ocf.Error{Code: ocf.GenericFailure, Err: &unreachable{refused: refused, err: err}, Reason: fmt.Sprintf(
			"start Consul on this node first, or fix consul_address: %s does not answer (%s) while %s",
			addr, consulapi.Describe(err), what)}
	}
	body := cleanText(se.Body, maxOutput)
	switch {
	case se.Code == 403:
		fix := "token_file " + cfg.TokenFile + ": its token needs service:write on the service and read on this node's services"
		if cfg.TokenFile == "" {
			fix = "set token_file to a file holding a token with service:write on the service"
		}
		return &ocf.Error{Code: ocf.InvalidArgs, Err: err, Reason: fmt.Sprintf("%s: Consul at %s denied %s (403 %s)", fix, addr, what, body)}
	case strings.Contains(se.Body, "Scripts are disabled"):
		return &ocf.Error{Code: ocf.InvalidArgs, Err: err, Reason: fmt.Sprintf(
			"Consul at %s refuses script checks registered over its API (%s); set enable_script_checks=true in this node's Consul configuration (only with ACLs enabled), or use an http, tcp, grpc or ttl check", addr, body)}
	case se.Code == 400 && strings.HasPrefix(what, "registering"):
		return &ocf.Error{Code: cfg.definitionCode(), Err: err, Reason: fmt.Sprintf(
			"Consul at %s rejected the service definition (%s); %s", addr, body, cfg.definitionSource())}
	}
	return &ocf.Error{Code: ocf.GenericFailure, Err: err, Reason: fmt.Sprintf("Consul at %s failed %s: %d %s", addr, what, se.Code, body)}
}
