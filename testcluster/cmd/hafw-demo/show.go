package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/stackclient"
)

// call makes one request through node's gateway.
func (d *demo) call(node, token string) stackclient.Sample {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return stackclient.Call(ctx, d.client, d.gatewayURL(node), token)
}

// expect prints one request and its answer, and ends the demo when the
// status is not want.
func (d *demo) expect(node, label, token string, want int) {
	s := d.call(node, token)
	line := fmt.Sprintf("  GET %s %-34s → %d", d.gatewayURL(node), label, s.Status)
	if s.Who != "" {
		line += " from web on " + s.Who
	}
	line += fmt.Sprintf(" in %s", s.End.Sub(s.Start).Round(time.Millisecond))
	if s.Err != "" {
		line += " (" + s.Err + ")"
	}
	d.p.Printf("%s", line)
	if s.Status != want {
		d.fatal().Fatalf("%s: got %d, want %d", label, s.Status, want)
	}
}

// clientNode is a node other than the web service's, for the gateway the
// demo calls.
func (d *demo) clientNode(webAt string) string {
	for _, n := range d.c.Nodes {
		if n != webAt {
			return n
		}
	}
	return d.c.Nodes[0]
}

func (d *demo) showRequests() {
	d.p.Printf("\n== requests through the gateway (TLS by the test CA, JWT RS256, ACL acl/web allows alice only)")
	g := d.clientNode(d.webAt)
	forged, err := stackclient.Tampered(d.tokens["alice"], "admin")
	if err != nil {
		d.fatal().Fatal(err)
	}
	d.expect(g, "with alice's token (allowed)", d.tokens["alice"], 200)
	d.expect(g, "with bob's token (ACL: denied)", d.tokens["bob"], 403)
	d.expect(g, "with a forged token (sub changed)", forged, 401)
	d.expect(g, "without a token", "", 401)
}

// nginxPIDs is the gateway's nginx master and workers on node.
func (d *demo) nginxPIDs(node string) (master string, workers []string) {
	out, _ := d.c.Exec(node, "pgrep", "-f", "^nginx: master process")
	master = strings.TrimSpace(out)
	out, _ = d.c.Exec(node, "pgrep", "-f", "^nginx: worker process")
	workers = strings.Fields(out)
	slices.Sort(workers)
	return master, workers
}

func (d *demo) showACLChange() {
	d.p.Printf("\n== the ACL changed in Consul, enforced without reloading nginx")
	t := d.fatal()
	g := d.clientNode(d.webAt)
	master, workers := d.nginxPIDs(g)
	d.p.Printf("  before: nginx on %s: master pid %s, worker pids %s", g, master, strings.Join(workers, " "))
	doc, err := stackclient.AllowSubjects(2, "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	put := time.Now()
	if err := d.putKV(d.c.Nodes[0], "acl/web", doc); err != nil {
		t.Fatal(err)
	}
	d.p.Printf("  consul kv put acl/web %s", doc)
	var s stackclient.Sample
	d.c.WaitFor(30*time.Second, "bob served after the ACL change", func() (bool, string) {
		s = d.call(g, d.tokens["bob"])
		return s.OK(), fmt.Sprintf("bob gets %d", s.Status)
	})
	d.p.Printf("  bob's token → %d from web on %s, %s after the put", s.Status, s.Who, time.Since(put).Round(10*time.Millisecond))
	master2, workers2 := d.nginxPIDs(g)
	d.p.Printf("  after:  nginx on %s: master pid %s, worker pids %s", g, master2, strings.Join(workers2, " "))
	if master2 != master || !slices.Equal(workers, workers2) {
		t.Fatalf("nginx was reloaded or restarted: a reload starts new workers")
	}
	d.p.Printf("  same master, same workers: no reload (a reload replaces every worker); the companion pushed the ACL into shared memory")
}

func (d *demo) showNodeLoss() {
	at := d.webAt
	g := d.clientNode(at)
	d.p.Printf("\n== node loss: %s (runs web) powered off; a client calls through the gateway on %s", at, g)
	const (
		pause   = 100 * time.Millisecond
		maxReqs = 3000
		bound   = 3 * time.Minute
	)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var (
		mu     sync.Mutex
		fault  time.Time
		served int
		failed int
		last   = time.Now()
	)
	// Done once 10 requests started after the fault were served by
	// another node.
	done := func(ss []stackclient.Sample) bool {
		mu.Lock()
		f := fault
		mu.Unlock()
		if f.IsZero() {
			return false
		}
		n := 0
		for _, s := range ss {
			if s.OK() && !s.Start.Before(f) && s.Who != at {
				n++
			}
		}
		return n >= 10
	}
	seen := func(s stackclient.Sample) {
		mu.Lock()
		defer mu.Unlock()
		if s.OK() {
			served++
		} else {
			failed++
		}
		last = s.End
	}
	result := make(chan []stackclient.Sample, 1)
	go func() {
		result <- stackclient.Loop(ctx, d.client, d.gatewayURL(g), d.tokens["alice"], pause, maxReqs, done, seen)
	}()
	time.Sleep(3 * time.Second) // answers before the fault
	mu.Lock()
	fault = time.Now()
	mu.Unlock()
	d.c.Kill(at)
	d.p.Printf("  docker kill %s at +0s (every process of the node gone at once)", at)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var ss []stackclient.Sample
wait:
	for {
		select {
		case ss = <-result:
			break wait
		case <-tick.C:
			mu.Lock()
			why := fmt.Sprintf("%d served, %d failed, last answer %s ago", served, failed, seconds(time.Since(last)))
			mu.Unlock()
			d.p.Waiting("web served again through "+g, time.Since(fault), why)
		}
	}
	o := stackclient.Measure(ss, fault, at)
	d.p.Printf("  client: %s", o)
	for _, line := range failures(ss, fault, 5) {
		d.p.Printf("    %s", line)
	}
	if o.Recovered.IsZero() {
		d.fatal().Fatalf("web was not served again within %s", bound)
	}
	d.wait(at+" fenced", 5*time.Minute, func() (bool, string) {
		out, _ := d.c.Exec(g, "stonith_admin", "--history", at)
		return strings.Contains(out, "successful"), strings.TrimSpace(out)
	})
	now := d.webNode(g, []string{at}, 5*time.Minute)
	d.p.Printf("  web now runs on %s; %s stays powered off (docker start %s powers it on; it rejoins)", now, at, at)
	d.lost, d.webAt = at, now
	d.outage = o
}

// failures describes the first max failed requests of ss, their times
// relative to the fault.
func failures(ss []stackclient.Sample, fault time.Time, max int) []string {
	var lines []string
	n := 0
	for _, s := range ss {
		if s.OK() {
			continue
		}
		n++
		if n > max {
			continue
		}
		what := fmt.Sprintf("status %d", s.Status)
		if s.Status == 0 {
			what = "no answer: " + s.Err
		}
		lines = append(lines, fmt.Sprintf("failed: the request sent at %s, %s after %s",
			relative(s.Start.Sub(fault)), what, s.End.Sub(s.Start).Round(10*time.Millisecond)))
	}
	if n > max {
		lines = append(lines, fmt.Sprintf("and %d more failed", n-max))
	}
	return lines
}

// relative is d as an offset from the fault: "+1.25s", "-0.30s".
func relative(d time.Duration) string {
	return fmt.Sprintf("%+.2fs", d.Seconds())
}

func (d *demo) summary() {
	p := d.p
	p.Printf("\n== summary (%s in all)", seconds(time.Since(d.start)))
	p.Printf("  token of alice: %s (valid %d h; bob's: %s)", d.tokenFile("alice"), int(tokenTTL.Hours()), d.tokenFile("bob"))
	p.Printf("  CA:             %s", d.caFile())
	for _, n := range d.c.Nodes {
		if n != d.lost {
			p.Printf("  gateway:        %s", d.gatewayURL(n))
		}
	}
	if d.outage.Requests > 0 {
		p.Printf("  node loss seen by the client: %d requests, %d served, %d failed; served again %s after the kill; longest wait %s",
			d.outage.Requests, d.outage.Served, d.outage.Failed, d.outage.SinceFault().Round(100*time.Millisecond), d.outage.Gap.Round(100*time.Millisecond))
	}
	g := d.clientNode(d.lost)
	p.Printf("\nGo on:")
	p.Printf("  # a request through the gateway, as alice")
	p.Printf("  curl --cacert %s -H \"Authorization: Bearer $(cat %s)\" %s",
		d.caFile(), d.tokenFile("alice"), d.gatewayURL(g))
	p.Printf("  # the cluster, live; the Consul servers; the ACL (crm_mon lists the degraded monitors of the")
	p.Printf("  # failover as failed actions: the proxies kept the lost instance, Consul lost a server;")
	p.Printf("  # crm_resource --cleanup clears them)")
	p.Printf("  docker exec -it %s crm_mon", g)
	p.Printf("  docker exec %s %s members", g, consulInNode)
	p.Printf("  docker exec %s curl -s 127.0.0.1:8500/v1/kv/acl/%s?raw", g, service)
	if d.lost != "" {
		p.Printf("  # power the lost node on again (it rejoins), then move the service back to it")
		p.Printf("  docker start %s", d.lost)
		p.Printf("  docker exec %s pcs resource move %s %s", g, service, d.lost)
	}
	p.Printf("  # remove it all")
	p.Printf("  make demo-down")
}
