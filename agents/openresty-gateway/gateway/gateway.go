// Package gateway is ocf:ha-framework:openresty-gateway: nginx (OpenResty,
// or Debian's nginx with its Lua module) as the stack's HTTPS entry. Every
// routed request carries a JWT verified in Lua against the configured
// policy, and passes only if its service's ACL, kept in Consul KV, allows
// it. A companion (this binary with the hidden argument "watch") follows
// Consul and pushes ACLs and keys into nginx's shared memory, so that
// neither needs a reload; only a change of routes or TLS files does.
//
// Processes: nginx's master with its unprivileged workers, and the
// companion, each declared with ocf/daemon.
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/companion"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/lua"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxconf"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/routes"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/state"
	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/internal/version"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/daemon"
	"github.com/ha-framework/ha-framework/ocf/process"
)

type request = ocf.Request[Config]

// WatchCommand is argv[1] of the companion. Pacemaker never passes it.
const WatchCommand = "watch"

// consulWait is the companion's blocking query wait.
const consulWait = 30 * time.Second

// New returns the agent declaration.
func New() *ocf.Agent[Config] {
	return &ocf.Agent[Config]{
		Name: "openresty-gateway", Version: version.Version,
		ShortDesc:   "HTTPS entry verifying JWTs in nginx/Lua against ACLs from Consul KV",
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

// Main runs the agent, or the companion when argv[1] is WatchCommand;
// main passes its result to os.Exit.
func Main() int { return daemon.Main(New(), companionMode) }

// companionMode is the companion: this binary run with WatchCommand and
// the path of its configuration.
var companionMode = daemon.Companion{Arg: WatchCommand, Run: func(ctx context.Context, path string, log *slog.Logger) error {
	c, err := companion.LoadConfig(path)
	if err != nil {
		return err
	}
	log.Info("following Consul", "prefix", c.KVPrefix, "services", len(c.Services), "consul", c.ConsulAddress)
	return companion.Run(ctx, c, log)
}}

const longDesc = `Runs nginx (OpenResty, or Debian's nginx with libnginx-mod-http-lua) as the HTTPS entry of the stack: TLS termination, optional client certificates per route, and on every routed request a JWT verified in Lua (luaossl) against the policy of jwt_policy_file, then the ACL of the route's service from Consul KV (kv_prefix + service). ` +
	`Missing or invalid tokens get 401 with a WWW-Authenticate challenge, ACL denials 403; the verified subject and issuer reach the upstream in subject_header and issuer_header (chosen claims in claim_headers), and client copies of identity headers are removed. ` +
	`A companion process follows Consul with blocking queries and pushes ACLs and keys (key files, and public keys in Consul KV under jwt_kv_prefix) into nginx's shared memory without a reload; the last good state is kept in state_dir, so a restart during a Consul outage enforces it (nothing ever seen: everything is denied). ` +
	`Monitor depth 0 checks nginx's master, the companion and the health location over TLS; depth 10 also checks that nginx enforces Consul's ACLs and keys and that the certificate does not expire within cert_expiry_days. Consul unreachable, a token Consul refuses or hides documents from (named by token_file), a refused ACL or key document or a near expiry report degraded. ` +
	`pcs: "pcs resource create gw ocf:ha-framework:openresty-gateway routes=/orders/=orders=127.0.0.1:8081 tls_cert_file=/etc/ha-framework/gw.pem tls_key_file=/etc/ha-framework/gw.key jwt_policy_file=/etc/ha-framework/jwt.json clone". ` +
	`crmsh: "crm configure primitive gw ocf:ha-framework:openresty-gateway params routes=/orders/=orders=127.0.0.1:8081 tls_cert_file=/etc/ha-framework/gw.pem tls_key_file=/etc/ha-framework/gw.key jwt_policy_file=/etc/ha-framework/jwt.json op monitor interval=10s op monitor interval=60s OCF_CHECK_LEVEL=10", "crm configure clone gw-clone gw".`

// paths are the files of one resource.
type paths struct {
	dir, priv, tmp, conf, luaDir, stateFile, socket, errorLog              string
	masterPID, nginxOut, companionConf, companionPID, companionLog, status string
}

func pathsOf(r *request) paths {
	dir := r.Config.StateDir
	if dir == "" {
		dir = r.StatePath(".d")
	}
	priv := filepath.Join(dir, "private")
	j := func(n string) string { return filepath.Join(priv, n) }
	return paths{dir: dir, priv: priv, tmp: filepath.Join(dir, "tmp"), conf: j("nginx.conf"), luaDir: j(nginxconf.LuaDir),
		stateFile: j(nginxconf.StateFile), socket: j(nginxconf.AdminSocket), errorLog: j(nginxconf.ErrorLog),
		masterPID: j("master.pid"), nginxOut: j("nginx.out"), companionConf: j("companion.json"),
		companionPID: j("companion.pid"), companionLog: j("companion.log"), status: j("companion-status.json")}
}

// maxSocketPath is sun_path's usable length.
const maxSocketPath = 107

func validate(ctx context.Context, r *request) error {
	c := r.Config
	p := pathsOf(r)
	if err := safePath(p.dir); err != nil {
		return ocf.Errorf(ocf.InvalidArgs, "set parameter state_dir: the default %s (from HA_RSCTMP) %v", p.dir, err)
	}
	if len(p.socket) > maxSocketPath {
		return ocf.Errorf(ocf.InvalidArgs, "set state_dir to a shorter path: the state socket %s exceeds %d bytes", p.socket, maxSocketPath)
	}
	if c.KeysPrefix == c.KVPrefix {
		return ocf.Errorf(ocf.Misconfigured, "set jwt_kv_prefix to a prefix other than kv_prefix (%s)", c.KVPrefix)
	}
	if claims, err := nginxconf.ParseClaimHeaders(c.ClaimHeaders); err == nil {
		if err := nginxconf.CheckClaimHeaders(claims, c.IdentityPrefix, []string{c.SubjectHeader, c.IssuerHeader}); err != nil {
			return ocf.Errorf(ocf.Misconfigured, "claim_headers: %v", err)
		}
	}
	lenient := r.IsProbe() || r.Action == ocf.ActionStop
	rs, err := loadRoutes(c)
	if err != nil && !lenient {
		return err
	}
	if err == nil && c.ClientCAFile == "" && slices.ContainsFunc(rs, func(rt routes.Route) bool { return rt.MTLS }) {
		return ocf.Errorf(ocf.Misconfigured, "set client_ca_file: a route asks for client certificates (mtls)")
	}
	if !lenient {
		if err := checkFiles(c); err != nil {
			return err
		}
	}
	return nginxDaemon().Validate(ctx, r)
}

// checkFiles checks the node's files: certificate, key (root, 0600),
// policy with its keys, Consul token.
func checkFiles(c *Config) error {
	for _, f := range []struct{ path, param string }{{c.CertFile, "tls_cert_file"}, {c.ClientCAFile, "client_ca_file"}, {c.PolicyFile, "jwt_policy_file"}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); errors.Is(err, os.ErrNotExist) {
			return ocf.Errorf(ocf.NotInstalled, "%s %s does not exist on this node", f.param, f.path)
		}
	}
	if _, err := certExpiry(c.CertFile); err != nil {
		return ocf.Errorf(ocf.InvalidArgs, "tls_cert_file %s: %v", c.CertFile, err)
	}
	if _, err := ocf.ReadSecretFile(c.KeyFile, "tls_key_file"); err != nil {
		return err
	}
	if _, err := loadPolicy(c.PolicyFile); err != nil {
		return ocf.Errorf(ocf.InvalidArgs, "jwt_policy_file %s: %v", c.PolicyFile, err)
	}
	if c.TokenFile != "" {
		if _, err := ocf.ReadSecretFile(c.TokenFile, "token_file"); err != nil {
			return err
		}
	}
	return nil
}

func loadPolicy(path string) (*policy.Compiled, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := policy.Parse(data)
	if err != nil {
		return nil, err
	}
	return policy.Load(f)
}

// loadRoutes reads routes or routes_file. A fault in the parameter holds
// on every node (Misconfigured); the file is this node's.
func loadRoutes(c *Config) ([]routes.Route, error) {
	switch {
	case c.Routes != "" && c.RoutesFile != "":
		return nil, ocf.Errorf(ocf.Misconfigured, "unset routes or routes_file: they exclude each other")
	case c.Routes != "":
		rs, err := routes.Parse(c.Routes)
		if err != nil {
			return nil, ocf.Errorf(ocf.Misconfigured, "parameter routes: %v", err)
		}
		return rs, nil
	case c.RoutesFile != "":
		data, err := os.ReadFile(c.RoutesFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, ocf.Errorf(ocf.NotInstalled, "create routes_file %s on this node, or fix the parameter: it does not exist", c.RoutesFile)
		case err != nil:
			return nil, ocf.Errorf(ocf.InvalidArgs, "routes_file %s cannot be read on this node: %v", c.RoutesFile, err)
		}
		rs, err := routes.ParseFile(data)
		if err != nil {
			return nil, ocf.Errorf(ocf.InvalidArgs, "routes_file %s: %v", c.RoutesFile, err)
		}
		return rs, nil
	}
	return nil, ocf.Errorf(ocf.Misconfigured, "set parameter routes (e.g. routes=/orders/=orders=127.0.0.1:8081) or routes_file")
}

// binary is the parameter, else openresty, else nginx.
func binary(r *request) string {
	if r.Config.Binary != "" {
		return r.Config.Binary
	}
	if p, err := r.LookPath("openresty", "binary"); err == nil {
		return p
	}
	return "nginx"
}

func nginxDaemon() *daemon.Daemon[Config] {
	return &daemon.Daemon[Config]{
		Name: "nginx",
		Command: func(ctx context.Context, r *request) (daemon.Command, error) {
			p := pathsOf(r)
			return daemon.Command{Path: binary(r), Param: "binary",
				Args:    []string{"-p", p.priv + "/", "-e", p.errorLog, "-c", p.conf},
				PIDFile: p.masterPID, LogFile: p.nginxOut}, nil
		},
		Prepare: func(ctx context.Context, r *request, cmd daemon.Command) error {
			if err := checkPorts(r.Config); err != nil {
				return err
			}
			// A master killed with SIGKILL leaves its unix socket behind,
			// and nginx would retry binding it in vain. nginx is not
			// running here: Prepare runs only before a spawn.
			if err := os.Remove(pathsOf(r).socket); err != nil && !errors.Is(err, os.ErrNotExist) {
				return ocf.Errorf(ocf.InsufficientPrivileges, "removing the stale state socket: %v", err)
			}
			return render(ctx, r, cmd.Path)
		},
		Ready: func(ctx context.Context, r *request, _ daemon.Process) error {
			return health(ctx, r.Config.Listen)
		},
		// HUP after a new configuration passed nginx -t: the master
		// starts new workers and lets the old ones finish; the shared
		// state survives.
		Reload: func(ctx context.Context, r *request, p daemon.Process) error {
			if err := render(ctx, r, p.Command.Path); err != nil {
				return err
			}
			return daemon.Signal[Config](syscall.SIGHUP)(ctx, r, p)
		},
		// QUIT is nginx's graceful stop: listeners close, requests in
		// flight finish.
		StopSignal: syscall.SIGQUIT,
		Grace:      10 * time.Second,
	}
}

func companionDaemon() *daemon.Daemon[Config] {
	return &daemon.Daemon[Config]{
		Name: "companion",
		Command: func(ctx context.Context, r *request) (daemon.Command, error) {
			p := pathsOf(r)
			cmd, err := companionMode.Command(p.companionConf)
			cmd.PIDFile, cmd.LogFile = p.companionPID, p.companionLog
			return cmd, err
		},
		Prepare: func(ctx context.Context, r *request, _ daemon.Command) error {
			p := pathsOf(r)
			cc, err := companionConfig(r)
			if err != nil {
				return err
			}
			if err := companion.WriteConfig(p.companionConf, cc); err != nil {
				return ocf.Errorf(ocf.GenericFailure, "writing the companion's configuration: %w", err)
			}
			_ = os.Remove(p.status)
			return nil
		},
		// Ready once nginx holds the companion's first state.
		Ready: func(ctx context.Context, r *request, _ daemon.Process) error {
			st, err := companion.ReadStatus(pathsOf(r).status)
			if err != nil {
				return err
			}
			if st.Pushed == "" {
				return fmt.Errorf("no state pushed yet: %s%s", st.PushError, st.PolicyError)
			}
			return nil
		},
		Grace: 5 * time.Second,
	}
}

func companionConfig(r *request) (*companion.Config, error) {
	c := r.Config
	p := pathsOf(r)
	rs, err := loadRoutes(c)
	if err != nil {
		return nil, err
	}
	var services []string
	for _, rt := range rs {
		if !slices.Contains(services, rt.Service) {
			services = append(services, rt.Service)
		}
	}
	return &companion.Config{PolicyFile: c.PolicyFile, ConsulAddress: c.ConsulAddress, TokenFile: c.TokenFile,
		Datacenter: c.Datacenter, KVPrefix: c.KVPrefix, KeysPrefix: c.KeysPrefix, Services: services, StateFile: p.stateFile,
		StatusFile: p.status, Socket: p.socket, Wait: consulWait}, nil
}

// checkPorts fails with InvalidArgs when a listen address is taken on this
// node: nginx would retry its bind for seconds and then say only that it
// could not.
func checkPorts(c *Config) error {
	for _, l := range []struct{ addr, param string }{{c.Listen, "listen"}, {c.RedirectListen, "redirect_listen"}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return ocf.Errorf(ocf.InvalidArgs, "free %s or change %s: the address is taken on this node", l.addr, l.param)
		}
		ln.Close()
	}
	return nil
}

// render writes nginx.conf and the Lua modules and has nginx check them.
func render(ctx context.Context, r *request, bin string) error {
	c := r.Config
	p := pathsOf(r)
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{p.dir, 0o711}, {p.priv, 0o700}, {p.tmp, 0o711}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return ocf.Errorf(ocf.InsufficientPrivileges, "creating %s: %w", d.path, err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return ocf.Errorf(ocf.InsufficientPrivileges, "chmod %s: %w", d.path, err)
		}
	}
	rs, err := loadRoutes(c)
	if err != nil {
		return err
	}
	pol, err := loadPolicy(c.PolicyFile)
	if err != nil {
		return ocf.Errorf(ocf.InvalidArgs, "jwt_policy_file %s: %v", c.PolicyFile, err)
	}
	luaInfo, err := nginxconf.DetectLua(ctx, bin, p.priv)
	if err != nil {
		return ocf.Errorf(ocf.NotInstalled, "%v", err)
	}
	claims, err := nginxconf.ParseClaimHeaders(c.ClaimHeaders)
	if err != nil {
		return ocf.Errorf(ocf.Misconfigured, "claim_headers: %v", err)
	}
	s := nginxconf.Settings{ClaimHeaders: claims, Routes: rs, Listen: c.Listen, RedirectListen: c.RedirectListen, CertFile: c.CertFile, KeyFile: c.KeyFile,
		ClientCAFile: c.ClientCAFile, PrivateDir: p.priv, TempDir: p.tmp, Workers: c.Workers,
		LoadModules: luaInfo.LoadModules, LuaCPath: luaInfo.CPath, IdentityPrefix: c.IdentityPrefix,
		SubjectHeader: c.SubjectHeader, IssuerHeader: c.IssuerHeader, TokenCache: c.TokenCache, MaxTokenBytes: pol.MaxTokenBytes}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(c.WorkerUser)
		if err != nil {
			return ocf.Errorf(ocf.InvalidArgs, "worker_user %s does not exist on this node", c.WorkerUser)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			return ocf.Errorf(ocf.InvalidArgs, "worker_user %s: primary group %s: %v", c.WorkerUser, u.Gid, err)
		}
		s.User = u.Username + " " + g.Name
	}
	conf, err := nginxconf.Render(s)
	if err != nil {
		return ocf.Errorf(ocf.Misconfigured, "%v", err)
	}
	if err := lua.Install(p.luaDir); err != nil {
		return ocf.Errorf(ocf.GenericFailure, "%v", err)
	}
	tmp := p.conf + ".new"
	if err := process.WriteFileAtomic(tmp, conf, 0o600); err != nil {
		return ocf.Errorf(ocf.GenericFailure, "writing %s: %w", tmp, err)
	}
	if _, err := process.Run(ctx, bin, "-t", "-q", "-p", p.priv+"/", "-e", p.errorLog, "-c", tmp); err != nil {
		var ee *process.ExitError
		if errors.As(err, &ee) {
			return ocf.Errorf(ocf.InvalidArgs, "nginx refuses the configuration: %s", strings.TrimPrefix(process.FirstLine(ee.Stderr), "nginx: "))
		}
		return ocf.Errorf(ocf.GenericFailure, "nginx -t: %v", err)
	}
	if err := os.Rename(tmp, p.conf); err != nil {
		return ocf.Errorf(ocf.GenericFailure, "installing %s: %w", p.conf, err)
	}
	return nil
}

// health asks the TLS listener for the health location, on loopback.
func health(ctx context.Context, listen string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ocf.Errorf(ocf.Misconfigured, "listen %q: %v", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	// Only whether this nginx serves TLS is checked here, not its
	// certificate's chain (which names public hosts, not loopback);
	// the certificate's expiry is the deep check's.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // liveness on loopback only
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+net.JoinHostPort(host, port)+nginxconf.HealthPath, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health location: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health location: HTTP %d", resp.StatusCode)
	}
	return nil
}

func start(ctx context.Context, r *request) error {
	if err := nginxDaemon().Start(ctx, r); err != nil {
		return err
	}
	return companionDaemon().Start(ctx, r)
}

func stop(ctx context.Context, r *request) error {
	// The companion first, so it does not push into a stopping nginx.
	// A master killed with SIGKILL leaves its workers holding the ports:
	// the daemon's stop ends what is left of its process group.
	if err := companionDaemon().Stop(ctx, r); err != nil {
		return err
	}
	if err := nginxDaemon().Stop(ctx, r); err != nil {
		return err
	}
	_ = os.Remove(pathsOf(r).status)
	return nil
}

func monitor(ctx context.Context, r *request) (ocf.State, error) {
	p := pathsOf(r)
	ns, nerr := nginxDaemon().Monitor(ctx, r)
	cs, cerr := companionDaemon().Monitor(ctx, r)
	switch {
	case nerr != nil && ns == ocf.Stopped:
		return ocf.Stopped, nerr
	case cerr != nil && cs == ocf.Stopped:
		return ocf.Stopped, cerr
	case ns == ocf.Stopped && cs == ocf.Stopped:
		return ocf.Stopped, nil
	case ns == ocf.Stopped:
		return ocf.Running, ocf.Errorf(ocf.GenericFailure, "nginx is not running but its companion is; see %s", p.errorLog)
	case cs == ocf.Stopped:
		return ocf.Running, ocf.Errorf(ocf.GenericFailure, "the companion is not running beside nginx: ACLs no longer follow Consul; see %s", p.companionLog)
	case nerr != nil:
		return ocf.Running, nerr
	case cerr != nil:
		if r.Action == ocf.ActionStart {
			return ocf.Running, cerr
		}
		return ocf.Running, ocf.Errorf(ocf.GenericFailure, "the companion: %v; see %s", cerr, p.companionLog)
	}
	st, err := companion.ReadStatus(p.status)
	if err != nil {
		return ocf.Running, ocf.Errorf(ocf.GenericFailure, "reading the companion's status: %w", err)
	}
	if r.CheckLevel() >= 10 {
		if err := deepCheck(ctx, r, st); err != nil {
			return ocf.Running, err
		}
	}
	return ocf.Running, statusProblem(r.Config, st)
}

// statusProblem is the degraded state the companion reports, nil if none.
func statusProblem(c *Config, st *companion.Status) error {
	switch {
	case st.ConsulError != "" && st.ConsulRefused:
		return ocf.Errorf(ocf.Degraded, "%s: Consul refuses it (%s); the last good ACLs and keys stay in force", tokenFix(c), st.ConsulError)
	case st.ConsulError != "":
		return ocf.Errorf(ocf.Degraded, "Consul unreachable; the last good ACLs and keys stay in force: %s", st.ConsulError)
	case len(st.Hidden) > 0:
		return ocf.Errorf(ocf.Degraded, "%s: it may not read %s (key:read); the last good ones stay in force", tokenFix(c), strings.Join(st.Hidden, ", "))
	case st.PolicyError != "":
		return ocf.Errorf(ocf.Degraded, "jwt_policy_file: %s; the policy in force stays", st.PolicyError)
	case st.PushError != "":
		return ocf.Errorf(ocf.Degraded, "the companion cannot update nginx: %s", st.PushError)
	}
	var refused []string
	for svc, why := range st.Rejected {
		refused = append(refused, svc+": "+why)
	}
	if len(refused) > 0 {
		slices.Sort(refused)
		return ocf.Errorf(ocf.Degraded, "ACL refused, last good kept: %s", strings.Join(refused, "; "))
	}
	for path, why := range st.RejectedKeys {
		refused = append(refused, path+": "+why)
	}
	if len(refused) > 0 {
		slices.Sort(refused)
		return ocf.Errorf(ocf.Degraded, "JWT key refused, last good kept: %s", strings.Join(refused, "; "))
	}
	return nil
}

// deepCheck compares what nginx enforces with Consul's valid documents,
// and the certificate's expiry with cert_expiry_days.
func deepCheck(ctx context.Context, r *request, st *companion.Status) error {
	c := r.Config
	p := pathsOf(r)
	if left, err := certExpiry(c.CertFile); err != nil {
		return ocf.Errorf(ocf.Degraded, "tls_cert_file %s: %v", c.CertFile, err)
	} else if left < time.Duration(c.CertExpiryDays)*24*time.Hour {
		return ocf.Errorf(ocf.Degraded, "renew tls_cert_file %s: it expires in %s", c.CertFile, left.Round(time.Hour))
	}
	if st.ConsulError != "" {
		return nil // reported by statusProblem
	}
	if len(st.Hidden) > 0 {
		return nil // reported by statusProblem
	}
	want, err := consulDigests(ctx, r)
	if err != nil {
		return consulProblem(c, err)
	}
	// The keys and policy nginx holds must be those of the files now,
	// with Consul's keys.
	pol, err := loadPolicy(c.PolicyFile)
	if err != nil {
		return ocf.Errorf(ocf.Degraded, "jwt_policy_file %s: %v", c.PolicyFile, err)
	}
	kv, err := consulKeys(ctx, r, pol)
	if err != nil {
		return consulProblem(c, err)
	}
	fromFiles, err := state.NewWithKVKeys(pol, kv, nil)
	if err != nil {
		return ocf.Errorf(ocf.GenericFailure, "%v", err)
	}
	nc := state.Client{Socket: p.socket, Timeout: 3 * time.Second}
	// The companion applies a change within milliseconds of Consul's
	// answer; a difference that outlasts a few retries is real.
	var diff string
	for attempt := 0; attempt < 10; attempt++ {
		v, err := nc.Get(ctx)
		if err != nil {
			return ocf.Errorf(ocf.GenericFailure, "nginx's state socket: %v", err)
		}
		diff = compare(want, v.ACLs)
		if v.KeysVersion != fromFiles.KeysVersion {
			keys := compareKeys(state.KeyVersions(fromFiles.Policy), v.Keys)
			if keys == "" {
				keys = "the policy differs from jwt_policy_file's"
			}
			diff = strings.TrimPrefix(diff+", "+keys, ", ")
		}
		if diff == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			attempt = 10
		case <-time.After(300 * time.Millisecond):
		}
	}
	return ocf.Errorf(ocf.Degraded, "nginx does not enforce the current ACLs and keys: %s; see %s", diff, p.companionLog)
}

// compareKeys names the keys nginx lacks, holds in another version, or
// holds in excess.
func compareKeys(want, got map[string]map[string]string) string {
	var d []string
	for iss, keys := range want {
		for kid, v := range keys {
			if g, ok := got[iss][kid]; !ok {
				d = append(d, fmt.Sprintf("key %q of %s missing", kid, iss))
			} else if g != v {
				d = append(d, fmt.Sprintf("key %q of %s is version %s, want %s", kid, iss, g, v))
			}
		}
		for kid := range got[iss] {
			if _, ok := keys[kid]; !ok {
				d = append(d, fmt.Sprintf("key %q of %s no longer configured", kid, iss))
			}
		}
	}
	slices.Sort(d)
	return strings.Join(d, ", ")
}

func compare(want, got map[string]string) string {
	var d []string
	for svc, w := range want {
		if got[svc] != w {
			d = append(d, fmt.Sprintf("%s has %q, Consul %q", svc, got[svc], w))
		}
	}
	for svc := range got {
		if _, ok := want[svc]; !ok {
			d = append(d, svc+" has an ACL Consul no longer holds")
		}
	}
	slices.Sort(d)
	return strings.Join(d, ", ")
}

// consulDigests reads the routed services' documents from Consul, as the
// companion does; refused documents are left out (the last good one is
// expected in nginx, and the refusal is reported by the status).
func consulDigests(ctx context.Context, r *request) (map[string]string, error) {
	c := r.Config
	rs, err := loadRoutes(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	client, err := consulClient(ctx, c)
	if err != nil {
		return nil, err
	}
	pairs, _, err := client.KV().List(c.KVPrefix, (&api.QueryOptions{Datacenter: c.Datacenter, AllowStale: true}).WithContext(ctx))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	st, _ := companion.ReadStatus(pathsOf(r).status)
	for _, kv := range pairs {
		svc := strings.TrimPrefix(kv.Key, c.KVPrefix)
		if !slices.ContainsFunc(rs, func(rt routes.Route) bool { return rt.Service == svc }) {
			continue
		}
		d, err := acl.Parse(kv.Value)
		if err != nil {
			// The last good one, whatever it is, is what nginx should
			// hold: take the companion's word for it.
			if st != nil {
				if v, ok := st.ACLs[svc]; ok {
					out[svc], _, _ = strings.Cut(v, " ")
				}
			}
			continue
		}
		out[svc] = d.Digest
	}
	return out, nil
}

// consulKeys reads the keys of the issuers with kv_keys from Consul and
// validates them as the companion does; for a refused document, the last
// good key the companion persisted is expected in nginx.
//
// Return values: the keys by KV path (nil when no issuer has kv_keys), or
// the error reading Consul.
func consulKeys(ctx context.Context, r *request, pol *policy.Compiled) (map[string]policy.StoredKey, error) {
	c := r.Config
	if !slices.ContainsFunc(pol.Issuers, func(is policy.CompiledIssuer) bool { return is.KVKeys != "" }) {
		return nil, nil
	}
	client, err := consulClient(ctx, c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pairs, _, err := client.KV().List(c.KeysPrefix, (&api.QueryOptions{Datacenter: c.Datacenter, AllowStale: true}).WithContext(ctx))
	if err != nil {
		return nil, err
	}
	var prev map[string]policy.StoredKey
	if last, err := state.Read(pathsOf(r).stateFile); err == nil {
		prev = last.KVKeys
	}
	kp := make([]policy.KVPair, 0, len(pairs))
	for _, p := range pairs {
		kp = append(kp, policy.KVPair{Key: p.Key, Value: p.Value})
	}
	keys, _ := policy.SelectKVKeys(pol, c.KeysPrefix, kp, prev)
	return keys, nil
}

// tokenFix names the token to fix when Consul refuses it or hides keys
// from it.
func tokenFix(c *Config) string {
	if c.TokenFile == "" {
		return "set token_file (the anonymous token is used)"
	}
	return "fix the token in token_file " + c.TokenFile
}

// consulProblem is the degraded state for a failed read of Consul: a 403
// names the token to fix, anything else is an outage.
func consulProblem(c *Config, err error) error {
	if consulapi.IsForbidden(err) {
		return ocf.Errorf(ocf.Degraded, "%s: Consul refuses it (%s)", tokenFix(c), consulapi.Describe(err))
	}
	return ocf.Errorf(ocf.Degraded, "Consul unreachable: %v", err)
}

func consulClient(ctx context.Context, c *Config) (*api.Client, error) {
	token, err := consulapi.ReadToken(c.TokenFile)
	if err != nil {
		return nil, err
	}
	return consulapi.NewClient(ctx, consulapi.Options{Address: c.ConsulAddress, Token: token})
}

// certExpiry is how long the first certificate of the file stays valid.
func certExpiry(path string) (time.Duration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return 0, errors.New("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return 0, err
	}
	return time.Until(cert.NotAfter), nil
}

func reload(ctx context.Context, r *request) error {
	if st, err := nginxDaemon().Monitor(ctx, r); st == ocf.Stopped && err == nil {
		r.Log.Info("nginx is not running; the new parameters apply at the next start")
		return nil
	}
	if err := nginxDaemon().ReloadAgent(ctx, r); err != nil {
		return err
	}
	if err := companionDaemon().Stop(ctx, r); err != nil {
		return err
	}
	return companionDaemon().Start(ctx, r)
}
