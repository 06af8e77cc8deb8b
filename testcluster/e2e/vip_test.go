//go:build e2e

// A floating IP in front of the gateways: stock ocf:heartbeat:IPaddr2,
// colocated with a running openresty-gateway instance (README, "A floating
// IP in front of the gateways"). A client on this host calls the gateway
// through the address while the node holding it is killed; fencing on.
//
//	make e2e-vip  # this scenario alone; make e2e runs it with the others
package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

const vipID = "vip"

// floatingIP is an address of the cluster network that no node has: the
// 200th of the network, clear of the nodes (.11 up) and Docker's gateway.
func floatingIP(t *testing.T, c *harness.Cluster) netip.Prefix {
	t.Helper()
	network := clusterNetwork(t, c)
	a := network.Addr()
	for range 200 {
		a = a.Next()
	}
	if !network.Contains(a) {
		t.Fatalf("network %s too small for a floating address", network)
	}
	return netip.PrefixFrom(a, network.Bits())
}

// waitVIPOn waits until view sees the address Started on one node not in
// avoid, and returns it.
func waitVIPOn(t *testing.T, c *harness.Cluster, view string, avoid []string, within time.Duration) string {
	t.Helper()
	var at string
	c.WaitFor(within, "floating IP Started", func() (bool, string) {
		s, err := c.Status(view)
		if err != nil {
			return false, err.Error()
		}
		on := s.Resources[vipID]
		why := fmt.Sprintf("vip on %v %v", on, s.Roles[vipID]) + failures(s, vipID)
		if len(on) != 1 || s.Roles[vipID][0] != "Started" {
			return false, why
		}
		for _, a := range avoid {
			if on[0] == a {
				return false, why
			}
		}
		at = on[0]
		return true, ""
	})
	return at
}

// hostClient calls the gateway through addr from this host, one request at
// a time, 100 ms apart, and records each as a sample (the answer: web's
// node name, or FAIL). It stops after 10 successes that started after the
// fault (told on the channel), or after clientMax seconds / 900 requests.
func hostClient(ctx context.Context, addr, token string, pool *x509.CertPool, fault <-chan int64) []sample {
	dialer := &net.Dialer{Timeout: time.Second}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: gwHost},
		// Every request resolves gwHost to the floating address, on a
		// new connection: a kept-alive one would stay with a dead node.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, net.JoinHostPort(addr, "443"))
		},
		DisableKeepAlives: true,
	}}
	limit, _ := strconv.Atoi(clientMax)
	end := time.Now().Add(time.Duration(limit) * time.Second)
	var ss []sample
	var at int64
	ok := 0
	for n := 0; n < 900 && time.Now().Before(end) && ctx.Err() == nil; n++ {
		select {
		case at = <-fault:
		default:
		}
		s := sample{start: time.Now().UnixMilli(), res: "FAIL"}
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+gwHost+"/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
			resp.Body.Close()
			if resp.StatusCode == 200 && len(body) > 0 {
				s.res = strings.TrimSpace(string(body))
			}
		}
		s.end = time.Now().UnixMilli()
		ss = append(ss, s)
		if at > 0 && s.start >= at && s.res != "FAIL" {
			if ok++; ok >= 10 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ss
}

func TestFloatingIP(t *testing.T) {
	g := newGatewayFiles(t)
	files := g.withConsul(t)
	start := time.Now()
	// ReadyTimeout: a loaded machine starts Pacemaker slowly.
	c := up(t, &harness.Options{Fencing: true, Files: files, ReadyTimeout: 6 * time.Minute})
	t.Logf("timing: cluster up in %s", time.Since(start).Round(100*time.Millisecond))
	c.EnableFencing()
	createConsulClone(t, c)
	web := setupProxyFailover(t, c)
	createGateway(t, c, g, web)
	n0 := c.Nodes[0]

	vip := floatingIP(t, c)
	created := time.Now()
	for _, args := range [][]string{
		{"pcs", "resource", "create", vipID, "ocf:heartbeat:IPaddr2", "ip=" + vip.Addr().String(), "cidr_netmask=" + strconv.Itoa(vip.Bits()),
			"op", "monitor", "interval=5s", "meta", "resource-stickiness=100"},
		{"pcs", "constraint", "colocation", "add", vipID, "with", "gw-clone", "INFINITY"},
		{"pcs", "constraint", "order", "start", "gw-clone", "then", vipID, "kind=Optional"},
	} {
		if out, err := c.Exec(n0, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	at := waitVIPOn(t, c, n0, nil, time.Minute)
	if at == web {
		// One fault at a time: the address's node, not the service's too.
		target := others(c, web)[0]
		if out, err := c.Exec(n0, "pcs", "resource", "move", vipID, target); err != nil {
			t.Fatalf("pcs resource move %s %s: %v\n%s", vipID, target, err, out)
		}
		at = waitVIPOn(t, c, n0, []string{web}, time.Minute)
	}
	tok := g.token(t, "alice")
	c.WaitFor(time.Minute, "web served through "+vip.Addr().String()+" from "+web, func() (bool, string) {
		out, err := viaGateway(c, tok, web, vip.Addr().String())
		return err == nil && strings.TrimSpace(out) == web, strings.TrimSpace(out) + " " + errString(err)
	})
	t.Logf("timing: %s Started on %s (web on %s), served through it %s after create", vip, at, web, time.Since(created).Round(100*time.Millisecond))

	pem, err := os.ReadFile(gwCertOnHost(t, g))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	fault := make(chan int64, 1)
	done := make(chan []sample, 1)
	go func() { done <- hostClient(context.Background(), vip.Addr().String(), tok, pool, fault) }()
	time.Sleep(3 * time.Second) // a baseline of successes
	t.Logf("killing %s (holds %s; %s)", at, vip.Addr(), consulRole(c, web, at))
	c.Kill(at)
	// Taken once docker kill returned: on a loaded machine the command
	// takes a while, and requests started before the node was gone would
	// count as served after it (the answer is web's node, which lives on).
	killed := nowMs()
	fault <- killed
	ss := <-done
	o := measure(ss, killed, "")
	t.Logf("timing: client on this host through %s: %s", vip.Addr(), o)
	logSamples(t, ss, killed)
	if o.before != web {
		t.Errorf("before the kill the client was served by %q, want %s", o.before, web)
	}
	if o.recovered == 0 {
		t.Fatalf("never served through %s again within the client's %ss", vip.Addr(), clientMax)
	}
	survivors := others(c, at)
	waitFenced(t, c, survivors[0], at, 2*time.Minute)
	now := waitVIPOn(t, c, survivors[0], []string{at}, time.Minute)
	t.Logf("timing: %s moved %s → %s; served again %s after the kill", vip.Addr(), at, now, o.sinceFault())
	// And from a node that does not hold the address.
	from := others(c, now)[0]
	if from == at {
		from = others(c, now)[1]
	}
	if out, err := viaGateway(c, tok, from, vip.Addr().String()); err != nil || strings.TrimSpace(out) != web {
		t.Errorf("from %s through %s: %q %v, want %s", from, vip.Addr(), out, err, web)
	}
	if out, err := c.Exec(now, "ip", "-4", "-o", "addr", "show"); err != nil || !strings.Contains(out, " "+vip.String()+" ") {
		t.Errorf("%s does not hold %s: %v\n%s", now, vip, err, out)
	}
}

// gwCertOnHost is the host file of the gateway's certificate.
func gwCertOnHost(t *testing.T, g *gatewayFiles) string {
	t.Helper()
	for h, n := range g.mounts {
		if n == gwDir+"/gw.pem" {
			return h
		}
	}
	t.Fatal("no gateway certificate among the files")
	return ""
}
