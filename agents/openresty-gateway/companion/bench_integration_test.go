//go:build integration

package companion_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/companion"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxconf"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxtest"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/routes"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// BenchmarkACLPropagation measures how long an ACL change written to
// Consul takes to be enforced by nginx (the first request that sees the
// new verdict, polled every millisecond), over 30 changes; it reports the
// median and the 99th percentile (the largest of 30).
func BenchmarkACLPropagation(b *testing.B) {
	cl := consultest.StartServer(b, &consultest.Options{Dev: true})
	kv, err := api.NewClient(&api.Config{Address: cl.HTTPAddr(0)})
	if err != nil {
		b.Fatal(err)
	}
	up := nginxtest.NewEcho(b)
	g := nginxtest.Start(b, nginxconf.Settings{Routes: []routes.Route{{Prefix: "/", Service: "orders", Upstream: up.URL}}}, nil)
	pf, sign := writePolicy(b, b.TempDir())
	priv := g.Settings.PrivateDir
	cfg := &companion.Config{PolicyFile: pf, ConsulAddress: cl.HTTPAddr(0), KVPrefix: "acl/", Services: []string{"orders"},
		StateFile: filepath.Join(priv, nginxconf.StateFile), StatusFile: filepath.Join(priv, "status.json"),
		Socket: g.Admin.Socket, Wait: 30 * time.Second, Tick: 2 * time.Second}
	startCompanion(b, cfg)
	alice := sign("alice")
	code := func() int {
		c, _ := try(g, alice)
		return c
	}
	var ds []time.Duration
	for i := 0; i < 30; i++ {
		want, rule := 200, "allow"
		if i%2 == 1 {
			want, rule = 403, "deny"
		}
		doc := fmt.Sprintf(`{"version": %d, "rules": [{"action": %q, "subjects": ["alice"]}]}`, i+1, rule)
		start := time.Now()
		if _, err := kv.KV().Put(&api.KVPair{Key: "acl/orders", Value: []byte(doc)}, nil); err != nil {
			b.Fatal(err)
		}
		for code() != want {
			if time.Since(start) > 10*time.Second {
				b.Fatalf("change %d not enforced within 10s", i)
			}
			time.Sleep(time.Millisecond)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
