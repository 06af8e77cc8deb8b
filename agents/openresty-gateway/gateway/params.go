package gateway

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxconf"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/routes"
	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/ocf"
)

// Config is the decoded instance parameters.
type Config struct {
	Routes     string
	RoutesFile string

	Listen         string
	RedirectListen string
	CertFile       string
	KeyFile        string
	ClientCAFile   string
	CertExpiryDays int

	PolicyFile     string
	IdentityPrefix string
	SubjectHeader  string
	IssuerHeader   string
	ClaimHeaders   string
	TokenCache     bool

	ConsulAddress string
	TokenFile     string
	Datacenter    string
	KVPrefix      string
	KeysPrefix    string

	Binary     string
	StateDir   string
	WorkerUser string
	Workers    int
}

func params(c *Config) []ocf.Param {
	// What nginx.conf or the companion's configuration is made of is
	// reloadable: reload-agent re-renders, checks with nginx -t and
	// reloads nginx gracefully (HUP), and restarts the companion.
	re := ocf.Reloadable()
	return []ocf.Param{
		ocf.String(&c.Routes, "routes", "Routes", re, ocf.Check(func(v string) error { _, err := routes.Parse(v); return err }),
			ocf.Long("Public host and path prefix to service and upstream, separated by commas or spaces: [HOST]/PATH=SERVICE=UPSTREAM[=mtls]. "+
				"The service names the ACL (Consul KV acl/SERVICE); UPSTREAM is [http://|https://]HOST:PORT, typically a local haproxy-dynamic listener; "+
				"=mtls also requires a client certificate signed by client_ca_file. "+
				"Example: /orders/=orders=127.0.0.1:8081,api.example.com/=web=127.0.0.1:8082=mtls. Either this or routes_file.")),
		ocf.String(&c.RoutesFile, "routes_file", "Routes file (JSON)", re, ocf.AbsolutePath(),
			ocf.Long(`{"routes": [{"host": "api.example.com", "path": "/orders/", "service": "orders", "upstream": "http://127.0.0.1:8081", "mtls": true}]}. `+
				"Read at start and reload-agent; after editing it, change a reloadable parameter or restart the resource.")),
		ocf.String(&c.Listen, "listen", "HTTPS listen address", ocf.Default("0.0.0.0:443"), re, ocf.Check(hostPort)),
		ocf.String(&c.RedirectListen, "redirect_listen", "HTTP address redirecting to HTTPS", re, ocf.Check(hostPort),
			ocf.Long("When set (e.g. 0.0.0.0:80), plain HTTP requests there get a 308 redirect to https.")),
		ocf.String(&c.CertFile, "tls_cert_file", "TLS certificate chain (PEM)", ocf.Required(), re, ocf.AbsolutePath()),
		ocf.String(&c.KeyFile, "tls_key_file", "TLS private key (PEM)", ocf.Required(), re, ocf.AbsolutePath(),
			ocf.Long("Owned by root, mode 0600.")),
		ocf.String(&c.ClientCAFile, "client_ca_file", "CA of client certificates (PEM)", re, ocf.AbsolutePath(),
			ocf.Long("Required when a route asks for client certificates (mtls).")),
		ocf.Int(&c.CertExpiryDays, "cert_expiry_days", "Days before certificate expiry that the monitor reports degraded", ocf.Default("14"), ocf.Range(0, 365), re),
		ocf.String(&c.PolicyFile, "jwt_policy_file", "JWT policy (JSON)", ocf.Required(), re, ocf.AbsolutePath(),
			ocf.Long(`Issuers whose tokens are accepted, with their audiences, algorithms and keys: {"max_token_bytes": 8192, "issuers": [{"issuer": "https://idp.example.com", `+
				`"audiences": ["orders-api"], "algorithms": ["RS256"], "leeway": "30s", "groups_claim": "groups", "keys": [{"kid": "2024", "file": "/etc/ha-framework/idp.pem"}]}]}. `+
				"Keys are PEM public keys or certificates (file), public JWKs (jwk_file), or HMAC secrets for HS256 (secret_file, mode 0600). "+
				"Key files are re-read every few seconds and pushed without a reload; an issuer with \"kv_keys\": \"NAME\" also takes public keys from Consul KV (see jwt_kv_prefix).")),
		ocf.String(&c.IdentityPrefix, "identity_header_prefix", "Prefix of identity headers", ocf.Default("X-Auth-"), re, ocf.Check(headerName),
			ocf.Long("Every client header with this prefix is removed before the request reaches the upstream; the verified identity is sent in subject_header and issuer_header.")),
		ocf.String(&c.SubjectHeader, "subject_header", "Header carrying the verified subject", ocf.Default("X-Auth-Subject"), re, ocf.Check(headerName)),
		ocf.String(&c.IssuerHeader, "issuer_header", "Header carrying the verified issuer", ocf.Default("X-Auth-Issuer"), re, ocf.Check(headerName)),
		ocf.String(&c.ClaimHeaders, "claim_headers", "Verified claims passed to the upstream in headers", re,
			ocf.Check(func(v string) error { _, err := nginxconf.ParseClaimHeaders(v); return err }),
			ocf.Long("CLAIM=HEADER pairs separated by commas, e.g. email=X-Auth-Email,groups=X-Auth-Groups. Each header must begin with identity_header_prefix, so client copies are removed. "+
				"Strings, numbers and booleans are sent as text, arrays of them joined by commas; a claim that is absent, an object, longer than 1024 bytes, "+
				"or holding control characters (or, in an array, a comma) is not sent.")),
		ocf.Bool(&c.TokenCache, "token_cache", "Cache verified tokens", ocf.Default("true"), re,
			ocf.Long("Each nginx worker remembers verified tokens until they expire (or the keys change), so a token's signature is checked once per worker.")),
		ocf.String(&c.ConsulAddress, "consul_address", "Local Consul agent's HTTP API", ocf.Default("127.0.0.1:8500"), re, ocf.Check(consulapi.CheckPlainAddress)),
		ocf.String(&c.TokenFile, "token_file", "Consul ACL token file", re, ocf.AbsolutePath(),
			ocf.Long("A token with key:read on kv_prefix. Mode 0600, owned by root.")),
		ocf.String(&c.Datacenter, "datacenter", "Consul datacenter of the ACL documents", re),
		ocf.String(&c.KVPrefix, "kv_prefix", "Consul KV prefix of the ACL documents", ocf.Default("acl/"), re, ocf.Check(kvPrefix)),
		ocf.String(&c.KeysPrefix, "jwt_kv_prefix", "Consul KV prefix of JWT keys", ocf.Default("jwt/"), re, ocf.Check(kvPrefix),
			ocf.Long("An issuer of jwt_policy_file with \"kv_keys\": \"NAME\" also takes the public keys at this prefix + NAME/keys/KID, e.g. jwt/idp/keys/2025-07 (one PEM public key or public JWK each; the KV key's last part is the kid). "+
				"They are validated (type matching the issuer's algorithms, RSA 2048..8192 bits, no private members) and pushed without a reload; a deleted key stops verifying tokens. "+
				"The Consul token needs key:read here too.")),
		ocf.String(&c.Binary, "binary", "openresty or nginx binary",
			ocf.Long("Name or absolute path. Default: openresty if installed, else nginx (with libnginx-mod-http-lua, lua-luaossl, lua-cjson, lua-resty-core).")),
		ocf.String(&c.StateDir, "state_dir", "State directory", ocf.AbsolutePath(), ocf.Check(safePath),
			ocf.Long("Holds nginx.conf, the Lua modules, the last good state, the state socket, pid files and logs (private/, root only), and nginx's temporary files (tmp/). "+
				"Default: HA_RSCTMP/openresty-gateway-RESOURCE.d.")),
		ocf.String(&c.WorkerUser, "worker_user", "User of nginx's workers", ocf.Default("nobody"),
			ocf.Long("Workers handle requests unprivileged; they cannot read the key files, which the companion pushes into shared memory.")),
		ocf.Int(&c.Workers, "workers", "nginx worker processes", ocf.Default("0"), ocf.Range(0, 256),
			ocf.Long("0: one per CPU.")),
	}
}

var actions = []ocf.Operation{
	{Name: ocf.ActionStart, Timeout: 30 * time.Second},
	{Name: ocf.ActionStop, Timeout: 30 * time.Second},
	{Name: ocf.ActionMonitor, Timeout: 20 * time.Second, Interval: 10 * time.Second},
	{Name: ocf.ActionMonitor, Timeout: 30 * time.Second, Interval: 60 * time.Second, Depth: 10},
	{Name: ocf.ActionReloadAgent, Timeout: 30 * time.Second},
}

func hostPort(v string) error {
	if v == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(v)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n < 1 || n > 65535 || (host != "" && net.ParseIP(host) == nil) {
		return errors.New("must be IP:PORT, e.g. 0.0.0.0:443")
	}
	return nil
}

func headerName(v string) error {
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return errors.New("must be letters, digits and -")
		}
	}
	if v == "" || len(v) > 64 {
		return errors.New("must have 1 to 64 characters")
	}
	return nil
}

func safePath(v string) error {
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._/+-", c)) {
			return errors.New("must hold only letters, digits and . _ / + -")
		}
	}
	return nil
}

func kvPrefix(v string) error {
	if v == "" || strings.HasPrefix(v, "/") || !strings.HasSuffix(v, "/") {
		return errors.New("must be a relative KV path ending in /, e.g. acl/")
	}
	return nil
}
