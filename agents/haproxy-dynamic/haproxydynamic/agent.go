// Package haproxydynamic is ocf:ha-framework:haproxy-dynamic: HAProxy with one
// frontend per routed service, whose backends a companion watcher keeps
// equal to the service's passing instances in Consul, live, through
// HAProxy's runtime API. A client calls 127.0.0.1:PORT and reaches the
// healthy instances wherever Pacemaker runs them.
//
// Processes: HAProxy's master (haproxy -W -db, started detached with
// setsid; its pid is the master's for the whole life of the resource,
// since a reload re-executes the master in place) with its workers, and
// the watcher (this binary with the hidden argument "watch"), each with a
// pid file in state_dir.
package haproxydynamic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxyapi"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxycfg"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/routes"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/watcher"
	"github.com/ha-framework/ha-framework/internal/version"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/daemon"
	"github.com/ha-framework/ha-framework/ocf/process"
)

type request = ocf.Request[Config]

// WatchCommand is argv[1] of the watcher daemon. Pacemaker never passes
// it, and the OCF dispatcher would answer it "unimplemented", so Main
// handles it before the SDK.
const WatchCommand = "watch"

// consulWait is the blocking queries' wait: the longest a healthy watcher
// goes without news from Consul, which bounds how stale its last sync may
// be before the monitor suspects it.
const consulWait = 30 * time.Second

// New returns the agent declaration: two daemons, HAProxy's master and
// the watcher, started in that order and stopped in the other.
func New() *ocf.Agent[Config] {
	return &ocf.Agent[Config]{
		Name: "haproxy-dynamic", Version: version.Version,
		ShortDesc:   "HAProxy routing local ports to the passing instances of Consul services",
		LongDesc:    longDesc,
		Exclusive:   true,
		Params:      params,
		Operations:  actions,
		Validate:    validate,
		Start:       start,
		Stop:        stop,
		Monitor:     monitor,
		ReloadAgent: reload,
	}
}

// haproxyDaemon is HAProxy's master (haproxy -W -db): it re-executes
// itself at every reload, keeping its pid and identity.
func haproxyDaemon() *daemon.Daemon[Config] {
	return &daemon.Daemon[Config]{
		Name: "haproxy",
		Command: func(ctx context.Context, r *request) (daemon.Command, error) {
			p := pathsOf(r)
			return daemon.Command{Path: r.Config.Binary, Param: "binary", Args: []string{"-W", "-db", "-f", p.config},
				PIDFile: p.masterPID, LogFile: p.haproxyLog}, nil
		},
		Prepare: prepareHAProxy,
		Ready: func(ctx context.Context, r *request, _ daemon.Process) error {
			hc := haproxyapi.Client{Socket: pathsOf(r).socket, Timeout: time.Second}
			_, err := hc.Info(ctx)
			return err
		},
		// SIGUSR1 is HAProxy's soft stop: listeners close at once and
		// sessions finish, for at most hard_stop_after. The whole group is
		// signalled, so workers go even if the master dies first.
		StopSignal: syscall.SIGUSR1,
	}
}

// watcherDaemon is this binary in watch mode, following Consul.
func watcherDaemon() *daemon.Daemon[Config] {
	return &daemon.Daemon[Config]{
		Name: "watcher",
		Command: func(ctx context.Context, r *request) (daemon.Command, error) {
			p := pathsOf(r)
			cmd, err := watcherMode.Command(p.watcherConfig)
			cmd.PIDFile, cmd.LogFile = p.watcherPID, p.watcherLog
			return cmd, err
		},
		Prepare: func(ctx context.Context, r *request, _ daemon.Command) error {
			wc, err := watcherConfig(ctx, r)
			if err != nil {
				return err
			}
			p := pathsOf(r)
			if err := watcher.WriteConfig(p.watcherConfig, wc); err != nil {
				return ocf.Errorf(ocf.GenericFailure, "writing the watcher's configuration: %w", err)
			}
			_ = os.Remove(p.status)
			return nil
		},
		Grace: 5 * time.Second,
	}
}

// Main runs the agent, or the watcher when argv[1] is WatchCommand; main
// passes its result to os.Exit.
func Main() int { return daemon.Main(New(), watcherMode) }

// watcherMode is the watcher: this binary run with WatchCommand and the
// path of its configuration.
var watcherMode = daemon.Companion{Arg: WatchCommand, Run: func(ctx context.Context, path string, log *slog.Logger) error {
	c, err := watcher.LoadConfig(path)
	if err != nil {
		return err
	}
	log.Info("watching Consul", "routes", len(c.Routes), "consul", c.ConsulAddress)
	return watcher.Run(ctx, c, log)
}}

const longDesc = `Runs HAProxy with one frontend per routed service, listening on a local address (127.0.0.1:PORT), and keeps each backend equal to the passing instances of the service in Consul, live: ` +
	`a watcher follows Consul with blocking queries and applies changes through HAProxy's runtime API (fill a free server slot, or drain a departed instance and then put it in maintenance), without reloading. ` +
	`HAProxy is reloaded seamlessly (master-worker, listening sockets passed on, server states kept through server-state-file) only when a backend needs more slots than it has, or by reload-agent when the routes change. ` +
	`When Consul cannot be reached the backends keep the last known instances, and the monitor reports degraded. ` +
	`Monitor depth 0 checks HAProxy's master, the watcher, and the runtime socket; depth 10 also checks the watcher synced recently and that HAProxy serves exactly Consul's passing instances. ` +
	`Run it as a clone on every node, after consul: ` +
	`pcs: "pcs resource create routes ocf:ha-framework:haproxy-dynamic routes=web=127.0.0.1:8081/http,db=127.0.0.1:5433/tcp token_file=/etc/ha-framework/consul-read.token clone", "pcs constraint order start consul-clone then routes-clone". ` +
	`crmsh: "crm configure primitive routes ocf:ha-framework:haproxy-dynamic params routes=web=127.0.0.1:8081/http op monitor interval=10s timeout=20s op monitor interval=60s timeout=30s OCF_CHECK_LEVEL=10", "crm configure clone routes-clone routes", "crm configure order routes-after-consul Mandatory: consul-clone routes-clone".`

// paths are the files of one resource.
type paths struct {
	dir, config, masterPID, stateFile, watcherConfig, watcherPID, status, haproxyLog, watcherLog, socket string
}

func pathsOf(r *request) paths {
	dir := r.Config.StateDir
	if dir == "" {
		dir = r.StatePath(".d")
	}
	socket := r.Config.Socket
	if socket == "" {
		socket = filepath.Join(dir, "admin.sock")
	}
	j := func(n string) string { return filepath.Join(dir, n) }
	return paths{dir: dir, config: j("haproxy.cfg"), masterPID: j("haproxy.pid"), stateFile: j("server-state"),
		watcherConfig: j("watcher.json"), watcherPID: j("watcher.pid"), status: j("status.json"),
		haproxyLog: j("haproxy.log"), watcherLog: j("watcher.log"), socket: socket}
}

// maxSocketPath is the longest runtime socket path HAProxy 2.6 accepts
// (measured with haproxy -c): sun_path's 107 usable bytes less room for
// the ".<pid>.tmp" name it binds first and renames.
const maxSocketPath = 97

// validate checks the state directory, the socket path, the token file,
// the routes and HAProxy. Monitor and stop run despite what it finds on
// this node (InvalidArgs, NotInstalled): neither needs the routes or the
// binary to find and end the processes.
func validate(ctx context.Context, r *request) error {
	c := r.Config
	p := pathsOf(r)
	if c.StateDir == "" {
		if err := noSpace(p.dir); err != nil {
			return ocf.Errorf(ocf.InvalidArgs, "set parameter state_dir: the default %s (from HA_RSCTMP) %v", p.dir, err)
		}
	}
	if len(p.socket) > maxSocketPath {
		return ocf.Errorf(ocf.InvalidArgs, "set socket or state_dir to a shorter path: HAProxy takes at most %d bytes, the runtime socket path %s has %d", maxSocketPath, p.socket, len(p.socket))
	}
	if c.TokenFile != "" {
		if _, err := ocf.ReadSecretFile(c.TokenFile, "token_file"); err != nil {
			return err
		}
	}
	if _, err := loadRoutes(c); err != nil {
		if ocf.CodeOf(err) == ocf.Misconfigured && r.IsProbe() {
			// A probe must find running processes whatever the
			// routes say; start and validate-all report it.
			r.Log.Warn("probing despite invalid routes", "reason", ocf.ReasonOf(err))
		} else {
			return err
		}
	}
	return haproxyDaemon().Validate(ctx, r)
}

// loadRoutes reads routes or routes_file. A fault in the parameter holds
// on every node (Misconfigured); the file is this node's (NotInstalled when
// missing, InvalidArgs when unreadable or invalid).
func loadRoutes(c *Config) ([]routes.Route, error) {
	switch {
	case c.Routes != "" && c.RoutesFile != "":
		return nil, ocf.Errorf(ocf.Misconfigured, "parameters routes and routes_file exclude each other; unset one")
	case c.Routes != "":
		rs, err := routes.Parse(c.Routes)
		if err != nil {
			return nil, ocf.Errorf(ocf.Misconfigured, "parameter routes: %v", err)
		}
		return rs, nil
	case c.RoutesFile != "":
		// A FIFO or a file anyone may write must not block the agent
		// or steer its listeners.
		data, err := ocf.ReadParamFile(c.RoutesFile, "routes_file", ocf.FileRules{Trusted: true})
		if err != nil {
			return nil, err
		}
		rs, err := routes.ParseFile(data)
		if err != nil {
			return nil, ocf.Errorf(ocf.InvalidArgs, "routes_file: %v (in %s)", err, c.RoutesFile)
		}
		return rs, nil
	}
	return nil, ocf.Errorf(ocf.Misconfigured, "no routes; set parameter routes (e.g. routes=web=127.0.0.1:8081/http) or routes_file")
}

// watcherConfig is the watcher's configuration for this request.
func watcherConfig(ctx context.Context, r *request) (*watcher.Config, error) {
	c := r.Config
	p := pathsOf(r)
	rs, err := loadRoutes(c)
	if err != nil {
		return nil, err
	}
	cmd, err := haproxyDaemon().Resolve(ctx, r)
	if err != nil {
		return nil, err
	}
	return &watcher.Config{
		Settings: haproxycfg.Settings{Routes: rs, Socket: p.socket, StateFile: p.stateFile, Slots: c.Slots,
			HardStopAfter: c.HardStopAfter, TimeoutConnect: c.TimeoutConnect, TimeoutIdle: c.TimeoutIdle, Retries: c.Retries},
		Haproxy: cmd.Path, ConfigFile: p.config, MasterPIDFile: p.masterPID, StatusFile: p.status,
		ConsulAddress: c.ConsulAddress, TokenFile: c.TokenFile, Datacenter: c.Datacenter, Tag: c.Tag,
		Wait: consulWait, DrainPeriod: c.DrainPeriod, KeepLast: c.NonePassing == nonePassingKeep, MaxSlots: c.MaxSlots,
	}, nil
}

// prepareHAProxy renders HAProxy's configuration with empty slots and has
// HAProxy check it, after checking the listen ports are free.
func prepareHAProxy(ctx context.Context, r *request, _ daemon.Command) error {
	p := pathsOf(r)
	// Created or repaired as 0700 root-owned; one that another user owns
	// or may write is refused (it could hold planted links).
	if err := process.EnsureStateDir(p.dir); err != nil {
		return ocf.Errorf(ocf.InvalidArgs, "state_dir: fix or remove %s: %w", p.dir, err)
	}
	wc, err := watcherConfig(ctx, r)
	if err != nil {
		return err
	}
	if err := checkPorts(wc.Routes, nil); err != nil {
		return err
	}
	// A fresh start begins from empty slots: a state file left by an
	// earlier run would restore instances that may be long gone.
	for _, f := range []string{p.stateFile, p.status} {
		_ = os.Remove(f)
	}
	if err := watcher.Install(ctx, wc, nil); err != nil {
		return &ocf.Error{Code: ocf.InvalidArgs, Reason: "fix routes or the node's HAProxy: it refuses the rendered configuration: " + err.Error(), Err: err}
	}
	return nil
}

func start(ctx context.Context, r *request) error {
	if err := haproxyDaemon().Start(ctx, r); err != nil {
		return err
	}
	return watcherDaemon().Start(ctx, r)
}

// checkPorts fails with InvalidArgs when a route's listen address is taken on
// this node, except addresses in keep (HAProxy's own, on reload).
func checkPorts(rs []routes.Route, keep []routes.Route) error {
	for _, rt := range rs {
		if slices.ContainsFunc(keep, func(k routes.Route) bool { return k.Listen == rt.Listen }) {
			continue
		}
		l, err := net.Listen("tcp", rt.Listen.String())
		if err != nil {
			return ocf.Errorf(ocf.InvalidArgs, "route %s cannot listen on %s on this node: %v; free the port or choose another in routes", rt.Service, rt.Listen, err)
		}
		l.Close()
	}
	return nil
}

func stop(ctx context.Context, r *request) error {
	// The watcher first: it would otherwise see HAProxy go and log errors,
	// or worse, reload a master that is stopping.
	if err := watcherDaemon().Stop(ctx, r); err != nil {
		return err
	}
	if err := haproxyDaemon().Stop(ctx, r); err != nil {
		return err
	}
	_ = os.Remove(pathsOf(r).status)
	return nil
}

func monitor(ctx context.Context, r *request) (ocf.State, error) {
	c := r.Config
	p := pathsOf(r)
	hs, herr := haproxyDaemon().Monitor(ctx, r)
	ws, werr := watcherDaemon().Monitor(ctx, r)
	switch {
	case herr != nil && hs == ocf.Stopped:
		return ocf.Stopped, herr
	case werr != nil && ws == ocf.Stopped:
		return ocf.Stopped, werr
	case hs == ocf.Stopped && ws == ocf.Stopped:
		return ocf.Stopped, nil
	case hs == ocf.Stopped:
		return ocf.Running, ocf.Errorf(ocf.GenericFailure, "haproxy is not running but its watcher is; see %s", p.haproxyLog)
	case ws == ocf.Stopped:
		return ocf.Running, ocf.Errorf(ocf.GenericFailure, "the watcher is not running beside haproxy: backends no longer follow Consul; see %s", p.watcherLog)
	case herr != nil:
		return ocf.Running, herr
	case werr != nil:
		return ocf.Running, werr
	}
	st, err := watcher.ReadStatus(p.status)
	rs, rerr := loadRoutes(c)
	if errors.Is(err, watcher.ErrNoStatus) || (err == nil && rerr == nil && r.Action == ocf.ActionStart && !allTried(st, rs)) {
		if r.Action == ocf.ActionStart {
			// Start returns once each route had an answer (or an
			// error) from Consul, so that a started resource routes.
			return ocf.Running, ocf.Errorf(ocf.GenericFailure, "waiting for the watcher's first answer from Consul")
		}
		return ocf.Running, nil
	}
	if err != nil {
		return ocf.Running, ocf.Errorf(ocf.GenericFailure, "reading the watcher's status: %w", err)
	}
	if r.CheckLevel() >= 10 && rerr == nil {
		hc := haproxyapi.Client{Socket: p.socket, Timeout: 3 * time.Second}
		if err := deepCheck(ctx, r, st, hc, rs); err != nil {
			return ocf.Running, err
		}
	}
	switch {
	case st.TooManyQueries:
		// What to fix first: the message of the query error would be cut.
		return ocf.Running, ocf.Errorf(ocf.Degraded, "raise Consul's limits.http_max_conns_per_client above %d routes plus other clients: Consul refuses queries (HTTP 429)", len(st.Routes))
	case st.ConsulError != "":
		return ocf.Running, ocf.Errorf(ocf.Degraded, "Consul cannot be reached (%s); HAProxy keeps the instances of the last sync at %s", st.ConsulError, syncTime(st))
	case st.ApplyError != "":
		return ocf.Running, ocf.Errorf(ocf.Degraded, "the watcher cannot apply changes to HAProxy: %s; see %s", st.ApplyError, p.watcherLog)
	}
	if kept := keptRoutes(st, c.KeepDegradedAfter, time.Now()); kept != "" {
		return ocf.Running, ocf.Errorf(ocf.Degraded, "none_passing=keep: no instance passes in Consul, HAProxy keeps the last ones: %s", kept)
	}
	if p := st.Problems(); p != "" {
		return ocf.Running, ocf.Errorf(ocf.Degraded, "%s", p)
	}
	return ocf.Running, nil
}

// leftOut reports whether a route has more passing instances than
// max_slots lets HAProxy serve.
func leftOut(st *watcher.Status) bool {
	for _, rs := range st.Routes {
		if rs.LeftOut > 0 {
			return true
		}
	}
	return false
}

// keptRoutes describes the routes whose last instances have been kept
// although none passes for after or longer at now, "" when there are
// none. A route whose watcher did not say since when counts at once.
func keptRoutes(st *watcher.Status, after time.Duration, now time.Time) string {
	var kept []string
	for svc, rs := range st.Routes {
		if len(rs.Kept) > 0 && (rs.KeptSince.IsZero() || now.Sub(rs.KeptSince) >= after) {
			kept = append(kept, svc+" ("+strings.Join(rs.Kept, " ")+")")
		}
	}
	slices.Sort(kept)
	return strings.Join(kept, ", ")
}

func allTried(st *watcher.Status, rs []routes.Route) bool {
	for _, rt := range rs {
		s := st.Routes[rt.Service]
		if s.LastSync.IsZero() && s.Error == "" {
			return false
		}
	}
	return true
}

func syncTime(st *watcher.Status) string {
	if st.LastSync.IsZero() {
		return "never"
	}
	return st.LastSync.Format(time.RFC3339)
}

func reload(ctx context.Context, r *request) error {
	if st, err := haproxyDaemon().Monitor(ctx, r); st == ocf.Stopped && err == nil {
		// reload-agent must not start anything: the next start uses the
		// new parameters.
		r.Log.Info("haproxy is not running; the new parameters apply at the next start")
		return nil
	}
	wc, err := watcherConfig(ctx, r)
	if err != nil {
		return err
	}
	p := pathsOf(r)
	old, err := watcher.LoadConfig(p.watcherConfig)
	var keep []routes.Route
	if err == nil {
		keep = old.Routes
	}
	if err := checkPorts(wc.Routes, keep); err != nil {
		return err
	}
	if err := watcherDaemon().Stop(ctx, r); err != nil {
		return err
	}
	if err := watcher.Reload(ctx, wc, nil); err != nil {
		// The old watcher configuration still matches the running
		// HAProxy when the new configuration was refused.
		code := ocf.GenericFailure
		if errors.Is(err, haproxycfg.ErrRefused) {
			code = ocf.InvalidArgs
		}
		if serr := restartWatcher(ctx, r, old); serr != nil {
			r.Log.Error("restarting the watcher failed", "err", serr)
		}
		return &ocf.Error{Code: code, Reason: "reload: " + err.Error(), Err: err}
	}
	return watcherDaemon().Start(ctx, r)
}

// restartWatcher starts the watcher again with the configuration it had,
// after a reload HAProxy refused.
func restartWatcher(ctx context.Context, r *request, old *watcher.Config) error {
	if old == nil {
		return errors.New("no previous watcher configuration")
	}
	// The watcher's Prepare writes the new configuration; the old one
	// goes back once it has.
	if err := watcherDaemon().Start(ctx, r); err != nil {
		return err
	}
	return nil
}

// deepCheck compares HAProxy's serving servers with Consul's passing
// instances and the watcher's last sync with the clock.
func deepCheck(ctx context.Context, r *request, st *watcher.Status, hc haproxyapi.Client, rs []routes.Route) error {
	fresh := consulWait + consulWait/16 + 15*time.Second
	if age := time.Since(st.LastSync); !st.LastSync.IsZero() && age > fresh && st.ConsulError == "" {
		return ocf.Errorf(ocf.GenericFailure, "the watcher's last sync with Consul is %s old, though it reports no error: it looks stuck; see %s", age.Round(time.Second), pathsOf(r).watcherLog)
	}
	if keptRoutes(st, 0, time.Now()) != "" || leftOut(st) {
		return nil // not Consul's passing set, by design: reported below
	}
	wc, err := watcherConfig(ctx, r)
	if err != nil {
		return err
	}
	found, err := watcher.Passing(ctx, wc)
	passing := map[string][]string{}
	for svc, addrs := range found {
		for _, a := range addrs {
			passing[svc] = append(passing[svc], a.String())
		}
		slices.Sort(passing[svc])
	}
	if err != nil {
		return ocf.Errorf(ocf.Degraded, "Consul cannot be reached: %v; HAProxy keeps the instances of the last sync at %s", err, syncTime(st))
	}
	// The watcher applies a change within milliseconds of Consul's
	// answer; a difference that outlasts a few retries is real.
	var diff string
	for attempt := 0; attempt < 10; attempt++ {
		if diff, err = compare(ctx, hc, rs, passing); err == nil && diff == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			attempt = 10
		case <-time.After(300 * time.Millisecond):
		}
	}
	if err != nil {
		return ocf.Errorf(ocf.GenericFailure, "reading HAProxy's servers: %w", err)
	}
	return ocf.Errorf(ocf.Degraded, "HAProxy does not serve Consul's passing instances: %s; see %s", diff, pathsOf(r).watcherLog)
}

func compare(ctx context.Context, hc haproxyapi.Client, rs []routes.Route, passing map[string][]string) (string, error) {
	servers, err := hc.ServersState(ctx, "")
	if err != nil {
		return "", err
	}
	var diffs []string
	for _, rt := range rs {
		var serving []string
		for _, s := range servers {
			if s.Backend == haproxycfg.BackendName(rt.Service) && s.Serving() {
				serving = append(serving, s.Addr.String())
			}
		}
		slices.Sort(serving)
		if want := passing[rt.Service]; !slices.Equal(want, serving) {
			diffs = append(diffs, fmt.Sprintf("%s serves [%s], Consul passes [%s]", rt.Service, strings.Join(serving, " "), strings.Join(want, " ")))
		}
	}
	return strings.Join(diffs, "; "), nil
}
