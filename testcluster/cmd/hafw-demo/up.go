package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/dockercluster"
	"github.com/ha-framework/ha-framework/testcluster/harness"
	"github.com/ha-framework/ha-framework/testcluster/stackclient"
	"github.com/ha-framework/ha-framework/testcluster/stackfiles"
)

// Where things are inside the nodes, and what the stack is made of.
const (
	consulInNode = "/hafw/consul"
	filesInNode  = "/hafw/stack"        // stackfiles: CA, the gateway's certificate and key, JWT policy, ACL
	lbListen     = "127.0.0.1:8081"     // haproxy-dynamic's listener for web, on every node
	gwPath       = "/web/"              // the gateway's route to web
	webImage     = "hafw-demo-web:1"    // stackfiles' web service, FROM scratch
	service      = "web"                // the docker-service resource, and the service in Consul
	tokenTTL     = 24 * time.Hour       // of the tokens the demo hands out
	stackScript  = "ha-framework-stack" // the crmsh script of the whole stack
	filesDirName = "stack"              // stackfiles' folder under the demo's
)

// demo is one run of up.
type demo struct {
	p      *progress
	c      *harness.Cluster
	dir    string
	files  *stackfiles.Files
	client *http.Client
	tokens map[string]string // by subject
	start  time.Time
	webAt  string             // the node running web
	lost   string             // the node powered off
	outage stackclient.Outage // what the client saw of it
}

func up(p *progress, o options) int {
	d := &demo{p: p, dir: o.dir, start: time.Now(), tokens: map[string]string{}}
	t := fatal{p, o.dir}
	p.Printf("== ha-framework demo: 3 Pacemaker nodes in Docker and the whole stack")
	if err := down(p, o.dir); err != nil {
		t.Fatalf("removing the previous demo: %v", err)
	}
	consul, err := consulBinary(o.consul)
	if err != nil {
		t.Fatalf("consul: %v", err)
	}
	for _, sub := range []string{"", filesDirName} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(d.dir, markerFile), []byte("make demo-down removes this folder\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	step := time.Now()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	err = stackfiles.BuildWebImage(ctx, root, webImage)
	cancel()
	if err != nil {
		t.Fatalf("the web service's image: %v", err)
	}
	p.Printf("image %s (FROM scratch: a static Go server answering with its node's name) built in %s", webImage, seconds(time.Since(step)))
	if deb := os.Getenv("HAFW_NODE_DEB"); deb != "" {
		p.Printf("nodes install %s", deb)
	}

	p.Printf("\n== the cluster: 3 nodes, each with its own Docker Engine; fencing by fence_docker")
	p.Printf("  creating the nodes (the node image is built once, then cached; each node installs the package)")
	step = time.Now()
	d.c = harness.Up(t, dockercluster.New(""), &harness.Options{
		Name: clusterName, Keep: true, Fencing: true, Docker: true, Waiting: p.Waiting,
		// Generous: on a busy machine Pacemaker takes minutes to elect a DC.
		ReadyTimeout: 10 * time.Minute,
		Files:        map[string]string{consul: consulInNode, filepath.Join(d.dir, filesDirName): filesInNode},
	})
	p.Printf("  cluster %s ready in %s: %s", d.c.Name, seconds(time.Since(step)), d.nodeList())
	d.c.EnableFencing()
	step = time.Now()
	d.c.LoadImage(webImage)
	p.Printf("  image %s loaded into the nodes' engines in %s (a registry pull on a real cluster)", webImage, seconds(time.Since(step)))
	if err := d.writeFiles(); err != nil {
		t.Fatalf("the stack's files: %v", err)
	}

	p.Printf("\n== the stack")
	d.createStack()
	p.Printf("  stack up %s after the start", seconds(time.Since(d.start)))

	d.showRequests()
	d.showACLChange()
	d.showNodeLoss()
	d.summary()
	return 0
}

// writeFiles writes, once the nodes have addresses, what the stack is
// given (stackfiles: a test CA and the gateway's certificate for every
// node's address and name, the JWT issuer's key and policy, the ACL), the
// tokens of alice and bob, and the client that trusts the CA.
func (d *demo) writeFiles() error {
	var hosts []string
	for _, n := range d.c.Nodes {
		hosts = append(hosts, d.c.IPs[n], n)
	}
	var err error
	if d.files, err = stackfiles.Write(filepath.Join(d.dir, filesDirName), filesInNode, hosts, service, []string{"alice"}); err != nil {
		return err
	}
	for _, sub := range []string{"alice", "bob"} {
		if d.tokens[sub], err = d.files.Token(sub, tokenTTL); err != nil {
			return err
		}
		if err := os.WriteFile(d.tokenFile(sub), []byte(d.tokens[sub]+"\n"), 0o600); err != nil {
			return err
		}
	}
	ca, err := os.ReadFile(d.caFile())
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("%s: no certificate", d.caFile())
	}
	d.client = &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 4}}
	return nil
}

func (d *demo) tokenFile(sub string) string { return filepath.Join(d.dir, "token-"+sub) }

func (d *demo) caFile() string { return filepath.Join(d.dir, filesDirName, stackfiles.CAName) }

func (d *demo) fatal() fatal { return fatal{d.p, d.dir} }

// wait is WaitFor with a line saying how long it took.
func (d *demo) wait(what string, within time.Duration, cond func() (bool, string)) {
	start := time.Now()
	d.c.WaitFor(within, what, cond)
	d.p.Printf("  %s: %s", what, seconds(time.Since(start)))
}

// startedOn is where id's instances are Started, as node sees it, sorted;
// why says what it sees.
func (d *demo) startedOn(node, id string) (on []string, why string) {
	s, err := d.c.Status(node)
	if err != nil {
		return nil, err.Error()
	}
	nodes, roles := s.Resources[id], s.Roles[id]
	for i, n := range nodes {
		if i < len(roles) && roles[i] == "Started" {
			on = append(on, n)
		}
	}
	slices.Sort(on)
	why = fmt.Sprintf("%s Started on [%s]", id, strings.Join(on, ","))
	if f := s.FailuresOf(id); f != "" {
		why += ", failed: " + f
	}
	return on, why
}

// waitClone waits until id runs on every node.
func (d *demo) waitClone(id, what string, within time.Duration) {
	all := slices.Sorted(slices.Values(d.c.Nodes))
	d.wait(what, within, func() (bool, string) {
		on, why := d.startedOn(d.c.Nodes[0], id)
		return slices.Equal(on, all), why
	})
}

// webNode waits until the web service runs, registered and passing in
// Consul, on a node not in avoid, as view sees it, and returns that node.
func (d *demo) webNode(view string, avoid []string, within time.Duration) string {
	var at string
	d.wait("web Started and passing in Consul", within, func() (bool, string) {
		on, why := d.startedOn(view, "web")
		if len(on) != 1 || slices.Contains(avoid, on[0]) {
			return false, why
		}
		out, err := d.c.Exec(view, "curl", "-sf", "-m", "5", "http://127.0.0.1:8500/v1/health/service/web?passing")
		if err != nil || !strings.Contains(out, `"Node":"`+on[0]+`"`) {
			return false, why + "; not passing in Consul yet"
		}
		at = on[0]
		return true, ""
	})
	return at
}

func (d *demo) nodeList() string {
	var s []string
	for _, n := range d.c.Nodes {
		s = append(s, n+" "+d.c.IPs[n])
	}
	return strings.Join(s, ", ")
}

func (d *demo) gatewayURL(node string) string { return "https://" + d.c.IPs[node] + gwPath }

// putKV writes value at key through node's Consul agent.
func (d *demo) putKV(node, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := d.c.Command(ctx, node, "curl", "-sf", "-m", "10", "-X", "PUT", "--data-binary", "@-", "http://127.0.0.1:8500/v1/kv/"+key)
	cmd.Stdin = strings.NewReader(string(value))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "true" {
		return fmt.Errorf("PUT %s on %s: %v %s", key, node, err, out)
	}
	return nil
}
