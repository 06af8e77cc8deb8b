package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxyapi"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxycfg"
	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// update is one answer of Consul for one route.
type update struct {
	service   string
	instances []netip.AddrPort
	index     uint64
	err       error
	skipped   []string // entries that cannot be routed (malformed, no IP address or port)
}

// tick is how often the watcher re-checks HAProxy even without news from
// Consul: it ends drains, and it repairs drift (an administrator's
// "set server", a reload by someone else) within a second.
const tick = time.Second

// Reloads never follow each other closely: a configuration check of
// thousands of servers takes seconds, and a reload starts a new worker
// while the old ones drain. After a reload the next waits at least
// minReloadGap, or ten times as long as the last reload took (mostly its
// configuration check); after a failure, twice as long as after the
// previous failure, up to maxReloadGap.
const (
	minReloadGap = 5 * time.Second
	maxReloadGap = 5 * time.Minute
)

// maxListed bounds the instances a route's status lists by name, so that
// a huge or hostile catalog cannot bloat the status file.
const maxListed = 10

// Run follows Consul and applies changes until ctx ends.
func Run(ctx context.Context, c *Config, log *slog.Logger) error {
	token, err := consulapi.ReadToken(c.TokenFile)
	if err != nil {
		return err
	}
	w := newWatcher(c, log)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, r := range c.Routes {
		tag := r.Tag
		if tag == "" {
			tag = c.Tag
		}
		// A query's timeout must outlast a blocking query: Consul adds
		// up to wait/16 of jitter to the wait time.
		h := newHealthClient(c.ConsulAddress, token, c.Datacenter, c.Wait+c.Wait/16+10*time.Second)
		go w.follow(ctx, h, r.Service, tag)
	}
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		w.statusLoop()
	}()
	defer func() {
		close(w.statusQueue)
		<-statusDone
	}()
	w.writeStatus(true)
	t := time.NewTicker(tick)
	defer t.Stop()
	reading := false // a reading of every backend's servers is under way
	for {
		select {
		case <-ctx.Done():
			return nil
		case u := <-w.updates:
			w.handle(ctx, u)
			w.writeStatus(false)
		case <-t.C:
			if !reading {
				reading = true
				go w.readServers(ctx, serversReading{applies: w.applies, reloads: w.status.Reloads})
			}
			w.writeStatus(true)
		case r := <-w.readings:
			reading = false
			w.applyAll(ctx, r)
			w.writeStatus(false)
		}
	}
}

type watcher struct {
	cfg     *Config
	log     *slog.Logger
	haproxy haproxyapi.Client
	filter  *Filter
	status  Status
	// want is the last good answer per service, routable instances only;
	// a service is absent until Consul answered once, and an error never
	// changes it.
	want map[string][]netip.AddrPort
	// skipped is the last logged description of what a route's answer
	// held that cannot be routed, so that the same is not logged again.
	skipped map[string]string
	// drains is per backend, per server: when draining began.
	drains    map[string]map[string]time.Time
	applyErrs map[string]error
	updates   chan update
	// applies counts the routes applied from news, and appliedAt holds
	// the count at each route's last such apply: a reading of HAProxy's
	// servers that began before it is stale for that route.
	applies   uint64
	appliedAt map[string]uint64
	readings  chan serversReading
	// statusQueue holds the next status for statusLoop to write, at most
	// one: a newer one replaces it.
	statusQueue chan Status
	// statusAt is when the status file was last written, and
	// lastProblems the errors it reported then.
	statusAt     time.Time
	lastProblems string
	// nextReload is the earliest time of the next reload; reloadFails
	// counts the failed reloads in a row, and reloadErr is the last
	// one's error, nil after a success.
	nextReload  time.Time
	reloadFails int
	reloadErr   error
}

func newWatcher(c *Config, log *slog.Logger) *watcher {
	return &watcher{
		cfg: c, log: log, haproxy: haproxyapi.Client{Socket: c.Socket}, filter: NewFilter(c.Routes),
		status:  Status{PID: os.Getpid(), Started: time.Now().UTC(), Routes: map[string]RouteStatus{}},
		want:    map[string][]netip.AddrPort{},
		skipped: map[string]string{},
		drains:  map[string]map[string]time.Time{},
		updates: make(chan update), appliedAt: map[string]uint64{}, readings: make(chan serversReading),
		statusQueue: make(chan Status, 1),
	}
}

// follow runs blocking queries for one service and sends every answer,
// and every failure, to the main loop. It follows Consul's rules for
// blocking queries: at most one query per minQueryGap on average (bursts
// of queryBurst) whatever Consul
// answers, an index that goes backwards or is missing starts over, and
// errors back off with jitter.
func (w *watcher) follow(ctx context.Context, h *healthClient, service, tag string) {
	defer h.close()
	var index uint64
	var pacer queryPacer
	fails := 0
	for ctx.Err() == nil {
		if !sleep(ctx, pacer.wait(time.Now())) {
			return
		}
		pacer.started(time.Now())
		entries, skipped, got, err := h.service(ctx, service, tag, index, w.cfg.Wait)
		if ctx.Err() != nil {
			return
		}
		u := update{service: service, index: got}
		if err == nil {
			var bad []string
			u.instances, bad = Addrs(entries)
			u.skipped = append(skipped, bad...)
		}
		if err != nil {
			w.send(ctx, update{service: service, err: err})
			// The next query must answer at once: Consul may have come
			// back with a lower index (a restart, a new cluster), and a
			// blocking query on the old index would hold the stale
			// membership for a whole wait.
			index = 0
			if !sleep(ctx, backoff(fails)) {
				return
			}
			fails++
			continue
		}
		fails = 0
		w.send(ctx, u)
		index = nextIndex(index, got)
	}
}

// sleep waits d, and reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (w *watcher) send(ctx context.Context, u update) {
	select {
	case w.updates <- u:
	case <-ctx.Done():
	}
}

// Instances extracts address:port of each entry of a health answer
// decoded by Consul's API client: the service address, else the node's.
// Entries without a Node or a Service, and instances without an IP
// address and a port, are described in skipped. HAProxy's runtime API
// takes IP addresses only.
func Instances(entries []*api.ServiceEntry) (out []netip.AddrPort, skipped []string) {
	var es []Entry
	for i, e := range entries {
		if e == nil || e.Node == nil || e.Service == nil {
			skipped = append(skipped, fmt.Sprintf("entry %d: no Node or no Service", i))
			continue
		}
		addr := e.Service.Address
		if addr == "" {
			addr = e.Node.Address
		}
		es = append(es, Entry{ID: e.Service.ID, Addr: addr, Port: e.Service.Port})
	}
	out, bad := Addrs(es)
	return out, append(skipped, bad...)
}

func (w *watcher) record(u update) {
	rs := w.status.Routes[u.service]
	if u.err != nil {
		if rs.Error == "" {
			w.log.Warn("Consul query failed; keeping the last known instances", "service", u.service, "err", u.err)
		}
		rs.Error, rs.TooManyQueries = u.err.Error(), errors.Is(u.err, ErrTooManyQueries)
		w.status.Routes[u.service] = rs
		return
	}
	if rs.Error != "" {
		w.log.Info("Consul answers again", "service", u.service)
	}
	routable, refused := w.filter.Split(u.instances)
	skipped := append(slices.Clip(u.skipped), refused...)
	if desc := strings.Join(skipped, "; "); desc != w.skipped[u.service] {
		w.skipped[u.service] = desc
		if len(skipped) > 0 {
			w.log.Warn("passing instances not routed", "service", u.service, "count", len(skipped),
				"instances", strings.Join(skipped[:min(len(skipped), maxListed)], "; "))
		}
	}
	rs.Skipped, rs.SkippedCount = skipped[:min(len(skipped), maxListed):min(len(skipped), maxListed)], len(skipped)
	if len(rs.Skipped) == 0 {
		rs.Skipped = nil
	}
	old := w.want[u.service]
	keptSince := rs.KeptSince
	rs.Kept, rs.KeptSince = nil, time.Time{}
	switch {
	case len(routable) == 0 && len(old) > 0 && w.cfg.KeepLast:
		// A lost node takes its instance with it: until Pacemaker starts
		// the service elsewhere, retrying the last instances holds the
		// requests, and the retries redispatch to the new instance once
		// it passes. Refusing would fail every request in between.
		if len(rs.Instances) > 0 {
			w.log.Warn("no passing instance; HAProxy keeps routing to the last ones until one passes", "service", u.service, "instances", listed(old))
		}
		rs.Kept = make([]string, min(len(old), maxListed))
		for i := range rs.Kept {
			rs.Kept[i] = old[i].String()
		}
		rs.KeptSince = keptSince
		if rs.KeptSince.IsZero() {
			rs.KeptSince = time.Now().UTC()
		}
	default:
		w.want[u.service] = routable
		if !slices.Equal(old, routable) {
			w.log.Info("passing instances changed", "service", u.service, "count", len(routable), "instances", listed(routable))
		}
	}
	rs.Error, rs.TooManyQueries, rs.Index, rs.LastSync = "", false, u.index, time.Now().UTC()
	rs.Passing = len(routable)
	rs.Instances = make([]string, min(len(routable), w.maxSlots()))
	for i := range rs.Instances {
		rs.Instances[i] = routable[i].String()
	}
	w.status.Routes[u.service] = rs
}

// listed describes instances for a log line: the first maxListed.
func listed(as []netip.AddrPort) string {
	s := fmt.Sprint(as[:min(len(as), maxListed)])
	if len(as) > maxListed {
		s += fmt.Sprintf(" and %d more", len(as)-maxListed)
	}
	return s
}

func (w *watcher) maxSlots() int {
	if w.cfg.MaxSlots <= 0 {
		return DefaultMaxSlots
	}
	return max(w.cfg.MaxSlots, w.cfg.Slots)
}

// apply brings one backend to the wanted instances, reloading HAProxy
// when they do not fit in its slots.
func (w *watcher) apply(ctx context.Context, service string) {
	w.noteApply(service, w.applyOnce(ctx, service))
}

// serversReading is one reading of every backend's servers, taken
// beside the main loop: at a thousand routes HAProxy lists ten thousand
// servers, and listing and parsing them held back Consul's news for tens
// of milliseconds each second, more on a loaded host.
type serversReading struct {
	// applies and reloads are the watcher's counts when the reading
	// began.
	applies uint64
	reloads int
	servers []haproxyapi.ServerState
	err     error
}

// readServers reads every backend's servers into r and hands it to the
// main loop.
func (w *watcher) readServers(ctx context.Context, r serversReading) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	r.servers, r.err = w.haproxy.ServersState(rctx, "")
	cancel()
	select {
	case w.readings <- r:
	case <-ctx.Done():
	}
}

// applyAll applies every route Consul has answered for, from one reading
// of HAProxy's servers for all backends: the tick's cost in runtime API
// rounds grows with the backends that change or drain, not with the
// routes (a round per route took most of a second at a thousand routes,
// and held back Consul's news meanwhile). A route whose backend the
// reading lacks, and every route after a reload, which makes the reading
// stale, is applied on its own. A route applied from news since the
// reading began has fresher state than the reading: the pass leaves it.
func (w *watcher) applyAll(ctx context.Context, r serversReading) {
	// HAProxy lists a backend's servers together: each run of them is a
	// subslice, not a copy.
	byBackend := map[string][]haproxyapi.ServerState{}
	all := r.servers
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].Backend == all[i].Backend {
			j++
		}
		prev := byBackend[all[i].Backend]
		byBackend[all[i].Backend] = append(prev[:len(prev):len(prev)], all[i:j]...)
		i = j
	}
	// News from Consul wait for no more than tickBatch routes: at a
	// thousand routes the whole pass takes long enough to show in the
	// propagation of a change.
	for i, rt := range w.cfg.Routes {
		if i%tickBatch == tickBatch-1 {
			w.handlePending(ctx)
		}
		if _, known := w.want[rt.Service]; !known || w.appliedAt[rt.Service] > r.applies {
			continue
		}
		servers, found := byBackend[haproxycfg.BackendName(rt.Service)]
		if r.err != nil || !found || w.status.Reloads != r.reloads {
			w.apply(ctx, rt.Service)
			continue
		}
		w.noteApply(rt.Service, w.applyTo(ctx, rt.Service, servers))
	}
}

// tickBatch is how many routes the tick's pass applies between looks at
// news from Consul.
const tickBatch = 32

// handle takes one answer (or failure) from a route's query into account.
func (w *watcher) handle(ctx context.Context, u update) {
	w.record(u)
	if u.err == nil {
		w.applies++
		w.appliedAt[u.service] = w.applies
		w.apply(ctx, u.service)
	}
}

// handlePending handles the answers waiting to be received, at most
// tickBatch of them, without waiting for more.
func (w *watcher) handlePending(ctx context.Context) {
	for range tickBatch {
		select {
		case u := <-w.updates:
			w.handle(ctx, u)
		default:
			return
		}
	}
}

// noteApply records the outcome of applying service, and logs a failure
// once until it clears.
func (w *watcher) noteApply(service string, err error) {
	if w.applyErrs == nil {
		w.applyErrs = map[string]error{}
	}
	if err != nil && w.applyErrs[service] == nil {
		w.log.Error("applying instances to HAProxy failed; retrying", "service", service, "err", err)
	}
	if err == nil {
		delete(w.applyErrs, service)
	} else {
		w.applyErrs[service] = err
	}
}

func (w *watcher) applyOnce(ctx context.Context, service string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	be := haproxycfg.BackendName(service)
	servers, err := w.haproxy.ServersState(ctx, be)
	if err != nil {
		return err
	}
	return w.applyTo(ctx, service, servers)
}

// applyTo brings service's backend, whose servers are servers, to the
// wanted instances.
func (w *watcher) applyTo(ctx context.Context, service string, servers []haproxyapi.ServerState) error {
	if w.inSync(service, servers) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	be := haproxycfg.BackendName(service)
	drains := w.drains[be]
	if drains == nil {
		drains = map[string]time.Time{}
		w.drains[be] = drains
	}
	var sessions map[string]int // nil: unknown, drains run their period
	if slices.ContainsFunc(servers, haproxyapi.ServerState.Draining) {
		if all, err := w.haproxy.Sessions(ctx, be); err == nil {
			sessions = map[string]int{}
			for _, s := range servers {
				if n, ok := all[be+"/"+s.Server]; ok {
					sessions[s.Server] = n
				}
			}
		}
	}
	want, leftOut := capInstances(w.want[service], servers, w.maxSlots())
	if rs := w.status.Routes[service]; rs.LeftOut != leftOut {
		if leftOut > 0 {
			w.log.Warn("more passing instances than max_slots; some are left out", "service", service,
				"passing", len(w.want[service]), "max_slots", w.maxSlots(), "left_out", leftOut)
		}
		rs.LeftOut = leftOut
		w.status.Routes[service] = rs
	}
	ops, overflow := plan(servers, want, drains, sessions, time.Now(), w.cfg.DrainPeriod)
	var err error
	for _, o := range ops {
		w.log.Info("runtime change", "backend", be, "server", o.Server, "op", o.Kind, "addr", o.Addr)
		switch o.Kind {
		case "fill":
			if err := w.haproxy.SetAddr(ctx, be, o.Server, o.Addr); err != nil {
				return err
			}
			err = w.haproxy.SetState(ctx, be, o.Server, "ready")
		default:
			err = w.haproxy.SetState(ctx, be, o.Server, o.Kind)
		}
		if err != nil {
			return err
		}
	}
	switch {
	case len(overflow) > 0:
		return w.reload(ctx, be, map[string][]netip.AddrPort{service: overflow},
			"more instances than slots; reloading HAProxy with more slots", "slots", len(servers), "unplaced", len(overflow))
	case len(ops) == 0 && len(servers) > shrunk(w.cfg, len(want)) && !slices.ContainsFunc(servers, haproxyapi.ServerState.Draining):
		return w.reload(ctx, be, nil,
			"far fewer instances than slots; reloading HAProxy with fewer slots", "slots", len(servers), "instances", len(want))
	}
	return nil
}

// inSync reports whether service's backend, whose servers are servers,
// serves exactly the wanted instances, with nothing draining, nothing
// left out and no slots to give back: what most backends are at most
// ticks, which then cost no allocation.
func (w *watcher) inSync(service string, servers []haproxyapi.ServerState) bool {
	want := w.want[service]
	if len(want) > w.maxSlots() || w.status.Routes[service].LeftOut != 0 || len(servers) > shrunk(w.cfg, len(want)) {
		return false
	}
	// One bit per wanted instance: each must be served by exactly one
	// server. A word on the stack holds the usual backend.
	var small [1]uint64
	seen := small[:]
	if len(want) > 64 {
		seen = make([]uint64, (len(want)+63)/64)
	}
	serving := 0
	for _, s := range servers {
		switch {
		case s.Draining():
			return false
		case !s.Serving():
			continue
		}
		i, found := slices.BinarySearchFunc(want, s.Addr, func(a, b netip.AddrPort) int { return a.Compare(b) })
		if !found || seen[i/64]&(1<<(i%64)) != 0 {
			return false
		}
		seen[i/64] |= 1 << (i % 64)
		serving++
	}
	return serving == len(want)
}

// reload reloads HAProxy unless the last reload was too recent; the
// watcher's tick tries again. While it waits after a failed reload, it
// returns that failure, so that the status goes on reporting it.
func (w *watcher) reload(ctx context.Context, be string, extra map[string][]netip.AddrPort, msg string, args ...any) error {
	now := time.Now()
	if now.Before(w.nextReload) {
		return w.reloadErr
	}
	w.log.Info(msg, append([]any{"backend", be}, args...)...)
	err := Reload(ctx, w.cfg, extra)
	took := time.Since(now)
	if err != nil {
		gap := min(minReloadGap<<min(w.reloadFails, 10), maxReloadGap)
		w.reloadFails++
		w.nextReload = time.Now().Add(gap)
		w.reloadErr = fmt.Errorf("%w (next reload attempt in %s at the earliest)", err, gap)
		return w.reloadErr
	}
	w.reloadFails, w.reloadErr = 0, nil
	w.nextReload = time.Now().Add(max(minReloadGap, 10*took))
	w.status.Reloads++
	return nil
}

// capInstances keeps at most limit of want: those already placed in a
// slot first, so that the cap never moves traffic off a working instance,
// then the others in order. It returns how many were left out.
func capInstances(want []netip.AddrPort, servers []haproxyapi.ServerState, limit int) ([]netip.AddrPort, int) {
	if len(want) <= limit {
		return want, 0
	}
	placed := map[netip.AddrPort]bool{}
	for _, s := range servers {
		if !s.Maint() {
			placed[s.Addr] = true
		}
	}
	out := make([]netip.AddrPort, 0, limit)
	for _, a := range want {
		if placed[a] && len(out) < limit {
			out = append(out, a)
		}
	}
	for _, a := range want {
		if !placed[a] && len(out) < limit {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out, len(want) - len(out)
}

// writeStatus hands the status to statusLoop, which writes it when it
// changed. Unless forced (by the tick), news from Consul are written at
// most once per tick, or at once when an error appears or clears: at a
// thousand routes the file holds hundreds of kilobytes, and writing it
// (encoding, fsync) after every answer took longer than the answer
// itself. The main loop only copies the routes' map: the encoding and the
// write, tens of milliseconds on a loaded host, held back Consul's news.
func (w *watcher) writeStatus(force bool) {
	st := w.status
	st.LastSync, st.ConsulError, st.ApplyError = time.Time{}, "", ""
	for i, r := range w.cfg.Routes {
		rs := st.Routes[r.Service]
		st.TooManyQueries = st.TooManyQueries || rs.TooManyQueries
		if i == 0 || rs.LastSync.Before(st.LastSync) {
			st.LastSync = rs.LastSync
		}
		if rs.Error != "" && st.ConsulError == "" {
			st.ConsulError = r.Service + ": " + rs.Error
		}
		if err := w.applyErrs[r.Service]; err != nil && st.ApplyError == "" {
			st.ApplyError = r.Service + ": " + err.Error()
		}
	}
	problems := st.ConsulError + "\n" + st.ApplyError
	if !statusDue(force, time.Since(w.statusAt), problems != w.lastProblems) {
		return
	}
	// RouteStatus values are replaced, never changed in place: a copy of
	// the map is a snapshot.
	st.Routes = maps.Clone(st.Routes)
	// Only this loop sends: when the queue is full, the status waiting
	// there is older, and this one replaces it.
	select {
	case <-w.statusQueue:
	default:
	}
	w.statusQueue <- st
	w.statusAt, w.lastProblems = time.Now(), problems
}

// statusLoop writes the statuses handed by writeStatus, each unless it
// equals the last one written, until the queue is closed.
func (w *watcher) statusLoop() {
	var last []byte
	for st := range w.statusQueue {
		data, err := jsonMarshal(st)
		if err != nil || slices.Equal(data, last) {
			continue
		}
		if err := process.WriteFileAtomic(w.cfg.StatusFile, data, 0o644); err != nil {
			w.log.Error("writing the status file failed", "err", err)
			continue
		}
		last = data
	}
}

// statusDue reports whether the status file is written now: when forced,
// when the errors it reports changed, or when the last write is a tick
// old.
func statusDue(force bool, sinceLast time.Duration, problemsChanged bool) bool {
	return force || problemsChanged || sinceLast >= tick
}

// Reload renders the configuration with what HAProxy serves now, plus
// extra instances in free slots, validates it, and reloads HAProxy's
// master (SIGUSR2) seamlessly: the new worker gets the listening sockets
// from the master and the servers' states from the state file dumped just
// before, and old workers finish their sessions within hard-stop-after.
// It returns once the new worker answers on the socket.
//
// A backend's slots grow by whole steps of Config.Slots to hold its
// instances, up to Config.MaxSlots, and shrink again when far fewer
// instances are left (see shrunk); instances keep their slot unless it is
// cut off.
func Reload(ctx context.Context, c *Config, extra map[string][]netip.AddrPort) error {
	hc := haproxyapi.Client{Socket: c.Socket}
	info, err := hc.Info(ctx)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	state, err := hc.Do(ctx, "show servers state")
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	all, err := haproxyapi.ParseServersState(state)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	backends := map[string]haproxycfg.Backend{}
	for _, r := range c.Routes {
		backends[r.Service] = layout(c, haproxycfg.BackendName(r.Service), all, extra[r.Service])
	}
	// The state file restores each server's address and state by name.
	// A slot that now holds another address (an instance moved by a
	// shrink, a new one in a freed slot) must start from the rendered
	// line, not from what the slot held before.
	state = haproxyapi.FilterServersState(state, func(s haproxyapi.ServerState) bool {
		for _, r := range c.Routes {
			if s.Backend != haproxycfg.BackendName(r.Service) {
				continue
			}
			be := backends[r.Service]
			for _, sv := range be.Servers {
				if haproxycfg.SlotName(sv.Slot) == s.Server {
					return sv.Addr == s.Addr
				}
			}
			return s.Addr == haproxycfg.Placeholder && slotNumber(s.Server) <= be.Slots
		}
		return false
	})
	if err := Install(ctx, c, backends); err != nil {
		return err
	}
	if err := process.WriteFileAtomic(c.StateFile, []byte(state), 0o600); err != nil {
		return fmt.Errorf("reload: server state: %w", err)
	}
	return Signal(ctx, c, info["Pid"])
}

// layout places a backend's instances for a reload: those HAProxy serves
// or drains now, then extra, in slots whose number grows or shrinks by
// steps of c.Slots.
func layout(c *Config, be string, all []haproxyapi.ServerState, extra []netip.AddrPort) haproxycfg.Backend {
	var kept []haproxyapi.ServerState
	current := 0
	for _, s := range all {
		if s.Backend != be {
			continue
		}
		n := slotNumber(s.Server)
		current = max(current, n)
		if n > 0 && !s.Maint() {
			kept = append(kept, s)
		}
	}
	slices.SortFunc(kept, func(a, b haproxyapi.ServerState) int { return slotNumber(a.Server) - slotNumber(b.Server) })
	need := len(kept) + len(extra)
	limit := max(c.MaxSlots, c.Slots)
	if c.MaxSlots <= 0 {
		limit = max(DefaultMaxSlots, c.Slots)
	}
	slots := current
	switch {
	case need > current:
		slots = min(steps(c, need), limit)
	case current > shrunk(c, need):
		slots = min(shrunk(c, need), limit)
	}
	out := haproxycfg.Backend{Slots: slots}
	used := map[int]bool{}
	var moved []netip.AddrPort
	for _, s := range kept {
		if n := slotNumber(s.Server); n <= slots && !used[n] {
			used[n] = true
			out.Servers = append(out.Servers, haproxycfg.Server{Slot: n, Addr: s.Addr})
		} else {
			moved = append(moved, s.Addr)
		}
	}
	next := 1
	for _, a := range append(moved, extra...) {
		for used[next] {
			next++
		}
		if next > slots {
			break // beyond max_slots: the watcher reports them left out
		}
		used[next] = true
		out.Servers = append(out.Servers, haproxycfg.Server{Slot: next, Addr: a})
	}
	slices.SortFunc(out.Servers, func(a, b haproxycfg.Server) int { return a.Slot - b.Slot })
	return out
}

// steps is the slot count for n instances: whole steps of c.Slots, so
// that a service that scales by one does not cost a reload per instance.
func steps(c *Config, n int) int {
	step := max(c.Slots, 1)
	return max(1, (n+step-1)/step) * step
}

// shrunk is the most slots a backend of n instances keeps before a
// reload gives slots back, and what it shrinks to: half a step of
// headroom above n, so that a service that goes back and forth across a
// step does not reload each time.
func shrunk(c *Config, n int) int {
	return steps(c, n+c.Slots/2)
}

// Install renders, validates with haproxy -c and atomically replaces the
// configuration file. A refused configuration leaves the old one.
func Install(ctx context.Context, c *Config, backends map[string]haproxycfg.Backend) error {
	candidate := c.ConfigFile + ".new"
	if err := process.WriteFileAtomic(candidate, haproxycfg.Render(c.Settings, backends), 0o600); err != nil {
		return err
	}
	if err := haproxycfg.Validate(ctx, c.Haproxy, candidate); err != nil {
		return err
	}
	if err := os.Rename(candidate, c.ConfigFile); err != nil {
		return fmt.Errorf("install %s: %w", c.ConfigFile, err)
	}
	return nil
}

// Signal sends SIGUSR2 to HAProxy's master and waits until a worker other
// than oldWorker answers on the socket.
func Signal(ctx context.Context, c *Config, oldWorker string) error {
	pid, err := process.ReadPIDFile(c.MasterPIDFile)
	if err != nil {
		return fmt.Errorf("reload: HAProxy master: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		return fmt.Errorf("reload: signal HAProxy master %d: %w", pid, err)
	}
	hc := haproxyapi.Client{Socket: c.Socket, Timeout: time.Second}
	for {
		info, err := hc.Info(ctx)
		if err == nil && info["Pid"] != oldWorker {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reload: no new HAProxy worker answered: %w", errors.Join(ctx.Err(), err))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
