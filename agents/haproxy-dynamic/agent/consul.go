package agent

import (
	"context"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/routes"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/watcher"
	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/ocf"
)

// consulPassing asks Consul, as the watcher does, for each route's passing
// instances, as sorted "address:port" strings.
func consulPassing(ctx context.Context, c *Config, rs []routes.Route) (map[string][]string, error) {
	var token string
	if c.TokenFile != "" {
		t, err := ocf.ReadSecretFile(c.TokenFile, "token_file")
		if err != nil {
			return nil, err
		}
		token = t
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	client, err := consulapi.New(ctx, consulapi.Options{Address: c.ConsulAddress, Token: token}, 5*time.Second)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, rt := range rs {
		tag := rt.Tag
		if tag == "" {
			tag = c.Tag
		}
		q := (&api.QueryOptions{Datacenter: c.Datacenter, AllowStale: true}).WithContext(ctx)
		entries, _, err := client.Health().Service(rt.Service, tag, true, q)
		if err != nil {
			return nil, err
		}
		addrs, _ := watcher.Instances(entries)
		for _, a := range addrs {
			out[rt.Service] = append(out[rt.Service], a.String())
		}
	}
	return out, nil
}
