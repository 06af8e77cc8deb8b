package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/stackkit"
)

// createStack sets up the whole stack with pcs, then waits for each part.
func (d *demo) createStack() {
	t := d.fatal()
	n0 := d.c.Nodes[0]
	network, err := exec.Command("docker", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", d.c.Name).Output()
	if err != nil || len(strings.Fields(string(network))) == 0 {
		t.Fatalf("the cluster network's subnet: %v %s", err, network)
	}
	if d.docker {
		d.buildWebImage()
	}
	for _, args := range d.pcsCommands(strings.Fields(string(network))[0]) {
		d.p.Printf("  %s", strings.Join(args, " "))
		if out, err := d.c.Exec(n0, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	d.waitClone("consul", "consul Started on every node", 6*time.Minute)
	d.wait("consul leader elected", 5*time.Minute, func() (bool, string) {
		out, err := d.c.Exec(n0, "curl", "-sf", "-m", "5", "http://127.0.0.1:8500/v1/status/leader")
		return err == nil && strings.Trim(out, `"`) != "", "leader " + out
	})
	acl, err := stackkit.AllowSubjects(1, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.putKV(n0, "acl/web", acl); err != nil {
		t.Fatal(err)
	}
	d.p.Printf("  consul kv put acl/web %s", acl)
	d.waitClone("lb", "haproxy-dynamic Started on every node", 5*time.Minute)
	d.webAt = d.webNode(n0, nil, 5*time.Minute)
	at := d.webAt
	d.waitClone("gw", "openresty-gateway Started on every node", 5*time.Minute)
	d.wait("every gateway serves web (alice's token)", 3*time.Minute, func() (bool, string) {
		for _, n := range d.c.Nodes {
			s := d.call(n, d.tokens["alice"])
			if !s.OK() || s.Who != at {
				return false, fmt.Sprintf("%s: status %d from %q %s", n, s.Status, s.Who, s.Err)
			}
		}
		return true, ""
	})
}

// pcsCommands are the commands that set up the stack on a cluster whose
// nodes share the network subnet.
func (d *demo) pcsCommands(subnet string) [][]string {
	var ips []string
	for _, n := range d.c.Nodes {
		ips = append(ips, d.c.IPs[n])
	}
	// Consul must bind the cluster address: with dockerd inside the
	// nodes, each also has docker0's.
	bind := `{{ GetAllInterfaces | include "network" "` + subnet + `" | attr "address" }}`
	cmds := [][]string{
		{"pcs", "resource", "create", "consul", "ocf:ha-framework:consul", "binary=" + consulInNode, "mode=server", "bootstrap_expect=3",
			"retry_join=" + strings.Join(ips, " "), "bind_addr=" + bind, "data_dir=/var/lib/consul",
			"op", "start", "timeout=120s", "clone", "interleave=true"},
		{"pcs", "resource", "create", "lb", "ocf:ha-framework:haproxy-dynamic", "routes=web=" + lbListen + "/http",
			"timeout_connect=1s", "retries=20", "clone", "interleave=true"},
		{"pcs", "constraint", "order", "start", "consul-clone", "then", "lb-clone"},
		{"pcs", "constraint", "colocation", "add", "lb-clone", "with", "consul-clone"},
	}
	check := "http://127.0.0.1:" + webPort + "/health"
	if d.docker {
		cmds = append(cmds,
			[]string{"pcs", "resource", "create", "web", "ocf:ha-framework:docker-service", "image=" + webImage, "pull=never",
				"network=host", "command=/hafw-web -listen 0.0.0.0:" + webPort, "check_http=" + check,
				"register=true", "service_name=web", "service_port=" + webPort,
				"op", "monitor", "interval=2s", "timeout=20s", "meta", "resource-stickiness=100"},
			[]string{"pcs", "constraint", "order", "start", "consul-clone", "then", "web"},
			[]string{"pcs", "constraint", "colocation", "add", "web", "with", "consul-clone"})
	} else {
		cmds = append(cmds,
			[]string{"pcs", "resource", "create", "web", "ocf:heartbeat:anything", "binfile=" + webInNode,
				"cmdline_options=-listen 0.0.0.0:" + webPort, "op", "monitor", "interval=2s", "timeout=10s", "--group", "webgrp"},
			[]string{"pcs", "resource", "create", "web-reg", "ocf:ha-framework:directory-registration",
				"service_name=web", "service_port=" + webPort, "check_http=" + check,
				"check_interval=1s", "check_timeout=1s", "drain_period=0", "--group", "webgrp"},
			[]string{"pcs", "resource", "meta", "webgrp", "resource-stickiness=100"},
			[]string{"pcs", "constraint", "order", "start", "consul-clone", "then", "webgrp"},
			[]string{"pcs", "constraint", "colocation", "add", "webgrp", "with", "consul-clone"})
	}
	return append(cmds,
		[]string{"pcs", "resource", "create", "gw", "ocf:ha-framework:openresty-gateway", "routes=/=web=" + lbListen,
			"listen=0.0.0.0:" + gwPort, "tls_cert_file=" + gwDirInNode + "/gw.pem", "tls_key_file=" + gwDirInNode + "/gw.key",
			"jwt_policy_file=" + gwDirInNode + "/jwt.json", "workers=2", "clone", "interleave=true"},
		[]string{"pcs", "constraint", "order", "start", "lb-clone", "then", "gw-clone"},
		[]string{"pcs", "constraint", "colocation", "add", "gw-clone", "with", "lb-clone"})
}

// buildWebImage builds the web service's image on this host, FROM scratch
// with the static binary, by the classic builder (no registry), and
// copies it into every node's engine.
func (d *demo) buildWebImage() {
	start := time.Now()
	ctxDir := filepath.Join(d.dir, "web")
	dockerfile := "FROM scratch\nCOPY hafw-web /hafw-web\n" +
		"LABEL SERVICE_CHECK_HTTP=/health SERVICE_CHECK_INTERVAL=1s SERVICE_CHECK_TIMEOUT=1s\n" +
		`CMD ["/hafw-web"]` + "\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		d.fatal().Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "build", "-q", "-t", webImage, ctxDir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		d.fatal().Fatalf("docker build %s: %v\n%s", webImage, err, out)
	}
	d.c.LoadImage(webImage)
	d.p.Printf("  image %s (FROM scratch, the static hafw-web) built and loaded into every node in %s", webImage, seconds(time.Since(start)))
}
