package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxyapi"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxycfg"
	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// update is one answer of Consul for one route.
type update struct {
	service   string
	instances []netip.AddrPort
	index     uint64
	err       error
	skipped   []string // instances that cannot be routed (no IP address or port)
}

// tick is how often the watcher re-checks HAProxy even without news from
// Consul: it ends drains, and it repairs drift (an administrator's
// "set server", a reload by someone else) within a second.
const tick = time.Second

// Run follows Consul and applies changes until ctx ends.
func Run(ctx context.Context, c *Config, log *slog.Logger) error {
	var token string
	if c.TokenFile != "" {
		t, err := ocf.ReadSecretFile(c.TokenFile, "token_file")
		if err != nil {
			return err
		}
		token = t
	}
	// The HTTP client's timeout must outlast a blocking query: Consul
	// adds up to wait/16 of jitter to the wait time.
	client, err := consulapi.New(context.Background(), consulapi.Options{Address: c.ConsulAddress, Token: token}, c.Wait+c.Wait/16+10*time.Second)
	if err != nil {
		return err
	}
	w := &watcher{
		cfg: c, log: log, haproxy: haproxyapi.Client{Socket: c.Socket},
		status:  Status{PID: os.Getpid(), Started: time.Now().UTC(), Routes: map[string]RouteStatus{}},
		want:    map[string][]netip.AddrPort{},
		drains:  map[string]map[string]time.Time{},
		updates: make(chan update),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, r := range c.Routes {
		tag := r.Tag
		if tag == "" {
			tag = c.Tag
		}
		go w.follow(ctx, client, r.Service, tag)
	}
	w.writeStatus()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case u := <-w.updates:
			w.record(u)
			if u.err == nil {
				w.apply(ctx, u.service)
			}
		case <-t.C:
			for _, r := range c.Routes {
				if _, known := w.want[r.Service]; known {
					w.apply(ctx, r.Service)
				}
			}
		}
		w.writeStatus()
	}
}

type watcher struct {
	cfg     *Config
	log     *slog.Logger
	haproxy haproxyapi.Client
	status  Status
	// want is the last good answer per service; a service is absent
	// until Consul answered once, and an error never changes it.
	want map[string][]netip.AddrPort
	// drains is per backend, per server: when draining began.
	drains     map[string]map[string]time.Time
	applyErrs  map[string]error
	updates    chan update
	lastStatus []byte
}

// follow runs blocking queries for one service and sends every answer,
// and every failure, to the main loop.
func (w *watcher) follow(ctx context.Context, client *api.Client, service, tag string) {
	var index uint64
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: w.cfg.Wait, Datacenter: w.cfg.Datacenter,
			// A stale read from any server keeps routing current while
			// the servers elect a leader; a leaderless cluster would
			// otherwise fail every query.
			AllowStale: true}).WithContext(ctx)
		entries, meta, err := client.Health().Service(service, tag, true, q)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.send(ctx, update{service: service, err: err})
			// The next query must answer at once: Consul may have come
			// back with a lower index (a restart, a new cluster), and a
			// blocking query on the old index would hold the stale
			// membership for a whole wait.
			index = 0
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 500 * time.Millisecond
		u := update{service: service, index: meta.LastIndex}
		u.instances, u.skipped = Instances(entries)
		w.send(ctx, u)
		// Consul's rules for blocking queries: an index that goes
		// backwards (a snapshot restore, a new cluster) restarts at 0,
		// and an index of 0 must never be waited on (it returns at once).
		switch {
		case meta.LastIndex < index:
			index = 0
		default:
			index = meta.LastIndex
		}
		if index == 0 {
			index = 1
		}
	}
}

func (w *watcher) send(ctx context.Context, u update) {
	select {
	case w.updates <- u:
	case <-ctx.Done():
	}
}

// Instances extracts address:port of each entry: the service address,
// else the node's. HAProxy's runtime API takes IP addresses only.
func Instances(entries []*api.ServiceEntry) (out []netip.AddrPort, skipped []string) {
	seen := map[netip.AddrPort]bool{}
	for _, e := range entries {
		addr := e.Service.Address
		if addr == "" {
			addr = e.Node.Address
		}
		ip, err := netip.ParseAddr(addr)
		if err != nil || e.Service.Port <= 0 || e.Service.Port > 65535 || ip.Zone() != "" {
			skipped = append(skipped, fmt.Sprintf("%s (%s:%d)", e.Service.ID, addr, e.Service.Port))
			continue
		}
		a := netip.AddrPortFrom(ip.Unmap(), uint16(e.Service.Port))
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out, skipped
}

func (w *watcher) record(u update) {
	rs := w.status.Routes[u.service]
	if u.err != nil {
		if rs.Error == "" {
			w.log.Warn("Consul query failed; keeping the last known instances", "service", u.service, "err", u.err)
		}
		rs.Error = u.err.Error()
		w.status.Routes[u.service] = rs
		return
	}
	if rs.Error != "" {
		w.log.Info("Consul answers again", "service", u.service)
	}
	if len(u.skipped) > 0 {
		w.log.Warn("instances without an IP address and port are not routed", "service", u.service, "instances", u.skipped)
	}
	old := w.want[u.service]
	rs.Kept = nil
	switch {
	case len(u.instances) == 0 && len(old) > 0 && w.cfg.KeepLast:
		// A lost node takes its instance with it: until Pacemaker starts
		// the service elsewhere, retrying the last instances holds the
		// requests, and the retries redispatch to the new instance once
		// it passes. Refusing would fail every request in between.
		if len(rs.Instances) > 0 {
			w.log.Warn("no passing instance; HAProxy keeps routing to the last ones until one passes", "service", u.service, "instances", fmt.Sprint(old))
		}
		rs.Kept = make([]string, len(old))
		for i, a := range old {
			rs.Kept[i] = a.String()
		}
	default:
		w.want[u.service] = u.instances
		if !slices.Equal(old, u.instances) {
			w.log.Info("passing instances changed", "service", u.service, "instances", fmt.Sprint(u.instances))
		}
	}
	rs.Error, rs.Index, rs.LastSync = "", u.index, time.Now().UTC()
	rs.Instances = make([]string, len(u.instances))
	for i, a := range u.instances {
		rs.Instances[i] = a.String()
	}
	w.status.Routes[u.service] = rs
}

// apply brings one backend to the wanted instances, reloading HAProxy
// when they do not fit in its slots.
func (w *watcher) apply(ctx context.Context, service string) {
	err := w.applyOnce(ctx, service)
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
	drains := w.drains[be]
	if drains == nil {
		drains = map[string]time.Time{}
		w.drains[be] = drains
	}
	var sessions map[string]int
	if slices.ContainsFunc(servers, haproxyapi.ServerState.Draining) {
		all, err := w.haproxy.Sessions(ctx)
		if err == nil {
			sessions = map[string]int{}
			for _, s := range servers {
				if n, ok := all[be+"/"+s.Server]; ok {
					sessions[s.Server] = n
				}
			}
		}
	}
	ops, overflow := plan(servers, w.want[service], drains, sessions, time.Now(), w.cfg.DrainPeriod)
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
	if len(overflow) == 0 {
		return nil
	}
	w.log.Info("more instances than slots; reloading HAProxy with more slots", "backend", be, "slots", len(servers), "unplaced", len(overflow))
	if err := Reload(ctx, w.cfg, map[string][]netip.AddrPort{service: overflow}); err != nil {
		return err
	}
	w.status.Reloads++
	return nil
}

func (w *watcher) writeStatus() {
	st := w.status
	st.LastSync, st.ConsulError, st.ApplyError = time.Time{}, "", ""
	for i, r := range w.cfg.Routes {
		rs := st.Routes[r.Service]
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
	data, err := jsonMarshal(st)
	if err != nil || slices.Equal(data, w.lastStatus) {
		return
	}
	if err := process.WriteFileAtomic(w.cfg.StatusFile, data, 0o644); err != nil {
		w.log.Error("writing the status file failed", "err", err)
		return
	}
	w.lastStatus = data
}

// Reload renders the configuration with what HAProxy serves now, plus
// extra instances in new slots, validates it, and reloads HAProxy's
// master (SIGUSR2) seamlessly: the new worker gets the listening sockets
// from the master and the servers' states from the state file dumped just
// before, and old workers finish their sessions within hard-stop-after.
// It returns once the new worker answers on the socket.
func Reload(ctx context.Context, c *Config, extra map[string][]netip.AddrPort) error {
	hc := haproxyapi.Client{Socket: c.Socket}
	info, err := hc.Info(ctx)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	all, err := hc.ServersState(ctx, "")
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	backends := map[string]haproxycfg.Backend{}
	for _, r := range c.Routes {
		be := haproxycfg.Backend{}
		for _, s := range all {
			if s.Backend != haproxycfg.BackendName(r.Service) {
				continue
			}
			n := slotNumber(s.Server)
			be.Slots = max(be.Slots, n)
			if s.Serving() && n > 0 {
				be.Servers = append(be.Servers, haproxycfg.Server{Slot: n, Addr: s.Addr})
			}
		}
		// New instances go to new slot numbers: an existing slot's entry
		// in the state file would override the rendered address.
		for _, a := range extra[r.Service] {
			be.Slots++
			be.Servers = append(be.Servers, haproxycfg.Server{Slot: be.Slots, Addr: a})
		}
		if n := len(extra[r.Service]); n > 0 {
			// Grow by whole steps of the base slot count, so a service
			// that scales by one does not cost a reload per instance.
			be.Slots = (be.Slots + c.Slots - 1) / c.Slots * c.Slots
		}
		backends[r.Service] = be
	}
	state, err := hc.Do(ctx, "show servers state")
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if _, err := haproxyapi.ParseServersState(state); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if err := Install(ctx, c, backends); err != nil {
		return err
	}
	if err := process.WriteFileAtomic(c.StateFile, []byte(state), 0o600); err != nil {
		return fmt.Errorf("reload: server state: %w", err)
	}
	return Signal(ctx, c, info["Pid"])
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
