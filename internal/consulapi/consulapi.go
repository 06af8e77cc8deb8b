// Package consulapi builds Consul API clients for agent invocations: bound
// to the action's deadline, with the ACL token read from a file and passed
// in a header, never in a URL, argv or the environment.
package consulapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Options say how to reach a Consul agent's HTTP API.
type Options struct {
	// Address is host:port, http://host:port or https://host:port.
	Address string
	// Token is the ACL token ("" for none), already read from its file.
	Token string
	// CAFile, CertFile and KeyFile configure TLS for https addresses.
	CAFile, CertFile, KeyFile string
}

// New returns a client whose every request ends by ctx's deadline, or
// within limit when ctx has none.
func New(ctx context.Context, o Options, limit time.Duration) (c *api.Client, err error) {
	cfg := api.DefaultNonPooledConfig()
	// DefaultConfig reads CONSUL_* variables; an agent's behaviour must
	// come from its parameters only.
	cfg.Address, cfg.Scheme, cfg.Token, cfg.TokenFile = o.Address, "http", o.Token, ""
	cfg.Namespace, cfg.Partition, cfg.Datacenter, cfg.HttpAuth = "", "", "", nil
	// The local agent is reached directly, whatever proxy the
	// environment names.
	cfg.Transport.Proxy = nil
	cfg.TLSConfig = api.TLSConfig{CAFile: o.CAFile, CertFile: o.CertFile, KeyFile: o.KeyFile}
	switch {
	case strings.HasPrefix(o.Address, "https://"):
		cfg.Scheme, cfg.Address = "https", strings.TrimPrefix(o.Address, "https://")
	case strings.HasPrefix(o.Address, "http://"):
		cfg.Address = strings.TrimPrefix(o.Address, "http://")
	}
	if d, ok := ctx.Deadline(); ok {
		limit = time.Until(d)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("no time left to reach Consul: %w", context.DeadlineExceeded)
	}
	// Plain HTTP needs no TLS setup; skipping it spares every monitor the
	// cost of loading the system's root certificates.
	hc := &http.Client{Transport: cfg.Transport}
	if cfg.Scheme == "https" || o.CAFile != "" || o.CertFile != "" {
		if hc, err = api.NewHttpClient(cfg.Transport, cfg.TLSConfig); err != nil {
			return nil, fmt.Errorf("consul TLS settings: %w", err)
		}
	}
	hc.Timeout = limit
	cfg.HttpClient = hc
	if c, err = api.NewClient(cfg); err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", o.Address, err)
	}
	return c, nil
}
