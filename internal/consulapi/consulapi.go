// Package consulapi is the one place agents get a Consul HTTP API client
// from: the parameters that say how to reach the local agent (declared
// once with Params), the ACL token read from a file and sent in a header
// (never in a URL, argv or the environment), TLS, a deadline per request
// taken from the request's context, and typed tests on the errors.
//
// A client from New carries no timeout of its own: pass the action's
// context to every call (QueryOptions.WithContext,
// WriteOptions.WithContext), so that each call ends by the action's
// deadline, however many calls the action makes. A call made without a
// deadline (some api methods take no options) is bounded by
// NoDeadlineLimit.
package consulapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/ocf"
)

// DefaultAddress is the local Consul agent's plain HTTP API.
const DefaultAddress = "127.0.0.1:8500"

// NoDeadlineLimit bounds a request whose context has no deadline, so
// that a call that cannot take a context still ends.
const NoDeadlineLimit = 10 * time.Second

// Config is how an agent reaches its node's Consul agent, as declared by
// Params and decoded from the resource's parameters.
type Config struct {
	// Address is host:port, http://host:port or https://host:port
	// (consul_address).
	Address string
	// TokenFile names the file holding the ACL token (token_file); ""
	// for none.
	TokenFile string
	// CAFile, CertFile and KeyFile configure TLS (ca_file, cert_file,
	// key_file).
	CAFile, CertFile, KeyFile string
}

// Params declares consul_address, token_file, ca_file, cert_file and
// key_file, bound to c's fields; reloadable makes all five Reloadable
// (for an agent whose reload-agent reconnects). Agents append them to
// their own parameters and call c.Options in Validate.
func Params(c *Config, reloadable bool) []ocf.Param {
	var re []ocf.Option
	if reloadable {
		re = append(re, ocf.Reloadable())
	}
	opts := func(o ...ocf.Option) []ocf.Option { return append(o, re...) }
	return []ocf.Param{
		ocf.String(&c.Address, "consul_address", "Local Consul agent's HTTP API", opts(ocf.Default(DefaultAddress), ocf.Check(CheckAddress),
			ocf.Long("Address of the Consul agent on this node: host:port or http://host:port for plain HTTP, https://host:port for HTTPS "+
				"(with ca_file, and cert_file and key_file when the agent verifies clients)."))...),
		ocf.String(&c.TokenFile, "token_file", "ACL token file", opts(ocf.AbsolutePath(),
			ocf.Long("File holding the ACL token sent to Consul; mode 0600, owned by root. "+
				"Never give the token itself as a parameter: parameters are stored in the CIB and passed in the environment."))...),
		ocf.String(&c.CAFile, "ca_file", "CA certificate file for an https consul_address", opts(ocf.AbsolutePath(),
			ocf.Long("PEM file of the certificate authority that signed the Consul agent's HTTPS certificate. Default: the system's roots."))...),
		ocf.String(&c.CertFile, "cert_file", "Client certificate file for an https consul_address", opts(ocf.AbsolutePath(),
			ocf.Long("PEM client certificate presented to a Consul agent that verifies incoming HTTPS clients (verify_incoming). Set key_file with it."))...),
		ocf.String(&c.KeyFile, "key_file", "Client key file for an https consul_address", opts(ocf.AbsolutePath(),
			ocf.Long("PEM private key of cert_file; mode 0600, owned by root."))...),
	}
}

// CheckAddress accepts the forms of consul_address: host:port,
// http://host:port or https://host:port, with a port from 1 to 65535.
// It is the parameter's ocf.Check.
func CheckAddress(v string) error {
	_, _, err := splitAddress(v)
	return err
}

// CheckPlainAddress is CheckAddress for agents that reach Consul over plain
// HTTP only (host:port or http://host:port): they take no CA file, so an
// https address could not be verified.
func CheckPlainAddress(v string) error {
	scheme, _, err := splitAddress(v)
	if err == nil && scheme == "https" {
		return errors.New("use a plain HTTP address (https needs a CA file, which this agent does not take)")
	}
	if err != nil {
		return errors.New("must be host:port or http://host:port")
	}
	return nil
}

// splitAddress returns the scheme ("http" or "https") and host:port of a
// consul_address.
func splitAddress(v string) (scheme, hostport string, err error) {
	scheme, hostport = "http", v
	if rest, ok := strings.CutPrefix(v, "https://"); ok {
		scheme, hostport = "https", rest
	} else if rest, ok := strings.CutPrefix(v, "http://"); ok {
		hostport = rest
	}
	host, port, serr := net.SplitHostPort(hostport)
	n, perr := strconv.Atoi(port)
	if serr != nil || host == "" || perr != nil || n < 1 || n > 65535 || strings.ContainsAny(host, "/?#@ ") {
		return "", "", errors.New("must be host:port, http://host:port or https://host:port")
	}
	return scheme, hostport, nil
}

// Options reads what c names on this node and returns the options
// NewClient takes: the token through ocf.ReadSecretFile, and a check that the TLS
// files exist.
//
// Return values:
//   - (o, nil): ready for NewClient.
//   - (Options{}, err), an *ocf.Error with Misconfigured: consul_address
//     is malformed, or only one of cert_file and key_file is set, or a
//     path is not absolute.
//   - (Options{}, err), an *ocf.Error with InvalidArgs: a file is missing on
//     this node, or the token file is unreadable, empty, or not private
//     (see ocf.ReadSecretFile).
func (c Config) Options() (Options, error) {
	if err := CheckAddress(c.Address); err != nil {
		return Options{}, ocf.Errorf(ocf.Misconfigured, "parameter consul_address=%q is invalid: %v", c.Address, err)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return Options{}, ocf.Errorf(ocf.Misconfigured, "parameters cert_file and key_file go together; set both or neither")
	}
	for _, f := range []struct{ param, path string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile}} {
		if f.path == "" {
			continue
		}
		if !strings.HasPrefix(f.path, "/") {
			return Options{}, ocf.Errorf(ocf.Misconfigured, "parameter %s=%q must be an absolute path", f.param, f.path)
		}
		if _, err := os.Stat(f.path); err != nil {
			return Options{}, ocf.Errorf(ocf.InvalidArgs, "parameter %s: %s is missing on this node: %w", f.param, f.path, err)
		}
	}
	o := Options{Address: c.Address, CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile}
	token, err := ReadToken(c.TokenFile)
	if err != nil {
		return Options{}, err
	}
	o.Token = token
	return o, nil
}

// ReadToken reads the ACL token of the token_file parameter through
// ocf.ReadSecretFile (strict owner and mode).
// Return values:
//   - ("", nil): file is "": no token, Consul's anonymous one applies.
//   - (token, nil): the file's token.
//   - ("", err): ocf.ReadSecretFile's error, which names token_file.
func ReadToken(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	return ocf.ReadSecretFile(file, "token_file")
}

// Options say how to reach a Consul agent's HTTP API.
type Options struct {
	// Address is host:port, http://host:port or https://host:port.
	Address string
	// Token is the ACL token ("" for none), already read from its file.
	Token string
	// CAFile, CertFile and KeyFile configure TLS for https addresses.
	CAFile, CertFile, KeyFile string
}

// NewClient returns a client for o. Nothing of the process environment
// reaches it: the api package reads CONSUL_HTTP_TOKEN,
// CONSUL_HTTP_TOKEN_FILE, CONSUL_NAMESPACE, CONSUL_PARTITION and the
// CONSUL_* TLS variables by itself, which would let an administrator's
// shell (crm_resource --force-start) change what an agent sends where;
// the token and target of every request are set here instead. The client
// has no timeout of its own (see the package documentation). Its idle
// connections are closed once ctx is done: an agent's action ends its
// context, and a process that runs many actions (a test runner, a
// program that embeds agents) would otherwise keep each action's
// connections to the agent open until they time out, and reach the
// agent's limit of connections per client address (HTTP 429).
//
// Return values:
//   - (client, nil): no request made yet; a wrong address or TLS
//     mismatch shows on the first call.
//   - (nil, err): Address is malformed, or the TLS files cannot be
//     loaded (missing, unreadable, not PEM, key not matching the
//     certificate).
func NewClient(ctx context.Context, o Options) (*api.Client, error) {
	scheme, hostport, err := splitAddress(o.Address)
	if err != nil {
		return nil, fmt.Errorf("consul address %q: %w", o.Address, err)
	}
	// A transport of its own: one derived from http.DefaultTransport may
	// already hold a TLS configuration, which the api package would then
	// keep instead of o's CA and certificate. No proxy: the local agent
	// is reached directly, whatever proxy the environment names.
	transport := &http.Transport{
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 4,
	}
	// Plain HTTP needs no TLS setup; skipping it spares every monitor the
	// cost of loading the system's root certificates.
	if scheme == "https" || o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" {
		tlsCfg, err := api.SetupTLSConfig(&api.TLSConfig{CAFile: o.CAFile, CertFile: o.CertFile, KeyFile: o.KeyFile})
		if err != nil {
			return nil, fmt.Errorf("consul TLS settings: %w", err)
		}
		tlsCfg.MinVersion = tls.VersionTLS12
		transport.TLSClientConfig = tlsCfg
	}
	hc := &http.Client{Transport: &guard{next: transport, token: o.Token}}
	cfg := &api.Config{Address: hostport, Scheme: scheme, HttpClient: hc, Token: o.Token}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", o.Address, err)
	}
	context.AfterFunc(ctx, transport.CloseIdleConnections)
	return c, nil
}

// guard is the client's transport: it sends exactly the configured token
// (or none) and only the default namespace and partition, whatever the
// api package took from the environment, and bounds requests that carry
// no deadline.
type guard struct {
	next  http.RoundTripper
	token string
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Del("X-Consul-Token")
	if g.token != "" {
		req.Header.Set("X-Consul-Token", g.token)
	}
	if q := req.URL.Query(); q.Has("ns") || q.Has("partition") {
		q.Del("ns")
		q.Del("partition")
		req.URL.RawQuery = q.Encode()
	}
	if _, ok := req.Context().Deadline(); ok {
		return g.next.RoundTrip(req)
	}
	ctx, cancel := context.WithTimeout(req.Context(), NoDeadlineLimit)
	resp, err := g.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	// The body is read after RoundTrip returns: the limit ends with it.
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
