//go:build integration

package registration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// These tests run the agent in-process against a real Consul dev agent
// each test starts on free loopback ports. The consul binary comes from
// HAFW_CONSUL or the cache testcluster/scripts/build-consul.sh fills.

func consulBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("HAFW_CONSUL"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("HAFW_CONSUL=%s: %v", bin, err)
		}
		return bin
	}
	var roots []string
	if d := os.Getenv("HAFW_CACHE_DIR"); d != "" {
		roots = append(roots, d)
	}
	roots = append(roots, "/var/cache/ha-framework")
	for _, root := range roots {
		if found, _ := filepath.Glob(filepath.Join(root, "consul-*", "consul")); len(found) > 0 {
			return found[len(found)-1]
		}
	}
	t.Skip("consul binary not found: set HAFW_CONSUL or run testcluster/scripts/build-consul.sh (make test does)")
	return ""
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// devAgent is a Consul dev agent (server and client in one, in memory).
type devAgent struct {
	addr string
	node string
	api  *api.Client
	cmd  *exec.Cmd
}

// startConsul starts a dev agent, extra arguments appended, and returns
// once it has a leader. rootToken is the management token when extra
// enables ACLs.
func startConsul(t *testing.T, rootToken string, extra ...string) *devAgent {
	t.Helper()
	bin := consulBinary(t)
	p := freePorts(t, 4)
	node := "hafw-dr-" + randomSuffix(t)
	args := append([]string{"agent", "-dev", "-client", "127.0.0.1", "-bind", "127.0.0.1",
		"-http-port", strconv.Itoa(p[0]), "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-serf-lan-port", strconv.Itoa(p[1]), "-serf-wan-port", strconv.Itoa(p[2]), "-server-port", strconv.Itoa(p[3]),
		"-node", node}, extra...)
	logPath := filepath.Join(t.TempDir(), "consul.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &devAgent{addr: fmt.Sprintf("127.0.0.1:%d", p[0]), node: node, cmd: cmd}
	t.Cleanup(func() { d.kill(); logFile.Close() })
	cfg := api.DefaultNonPooledConfig()
	cfg.Address, cfg.Token = d.addr, rootToken
	if d.api, err = api.NewClient(cfg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if leader, err := d.api.Status().Leader(); err == nil && leader != "" {
			return d
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("consul dev agent at %s has no leader after 30s; its log:\n%s", d.addr, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *devAgent) kill() {
	if d.cmd.Process != nil && d.cmd.ProcessState == nil {
		d.cmd.Process.Kill()
		d.cmd.Wait()
	}
}

// listener opens a TCP port for TCP checks, closed at the end.
func listener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

func runner(t *testing.T, resource string, params map[string]string) *ocftest.Runner {
	t.Helper()
	return runnerIn(t, t.TempDir(), resource, params)
}

// runnerIn is runner with the state directory (HA_RSCTMP) given, for
// resources that share one, as on one node.
func runnerIn(t *testing.T, stateDir, resource string, params map[string]string) *ocftest.Runner {
	t.Helper()
	return ocftest.NewRunner(t, New(), ocftest.Config{Name: "directory-registration", Params: params,
		Env: map[string]string{"OCF_RESOURCE_INSTANCE": resource, "OCF_RESKEY_CRM_meta_on_node": "node1", "HA_RSCTMP": stateDir}})
}

var (
	probe     = map[string]string{"OCF_RESKEY_CRM_meta_interval": ""}
	recurring = map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}
	deep      = map[string]string{"OCF_RESKEY_CRM_meta_interval": "60000", "OCF_CHECK_LEVEL": "10"}
)

func must(t *testing.T, r *ocftest.Runner, action string, extra map[string]string, want ocf.Code) ocftest.Result {
	t.Helper()
	got := r.Run(action, extra)
	if got.Code != want {
		t.Fatalf("%s returned %v, want %v; exit reason %q; stderr:\n%s", action, got.Code, want, got.Reason, got.Stderr)
	}
	return got
}

func writeDefinition(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// catalogEntry is the catalog's (servers') view of one instance.
func catalogEntry(t *testing.T, d *devAgent, name, id string) *api.ServiceEntry {
	t.Helper()
	entries, _, err := d.api.Health().Service(name, "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Service.ID == id {
			return e
		}
	}
	return nil
}

func TestConformanceOnConsul(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	ocftest.Conformance(t, New(), ocftest.Config{Name: "directory-registration",
		Params: map[string]string{
			"consul_address": d.addr, "service_name": "conformance", "service_port": "8443",
			"check_tcp": listener(t), "check_interval": "1s", "check_ttl": "30s",
			"wait_for": "passing", "drain_period": "0",
		},
		Env: map[string]string{"OCF_RESKEY_CRM_meta_on_node": "node1"}})
}

// TestLifecycle follows one registration: visible in the catalog with
// its identity after start, in maintenance during the drain, gone after
// stop.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	def := filepath.Join(t.TempDir(), "orders.json")
	writeDefinition(t, def, fmt.Sprintf(`{"service": {"name": "orders", "port": 8443, "tags": ["v1"],
		"checks": [{"name": "port", "tcp": %q, "interval": "1s"}, {"name": "pacemaker", "ttl": "30s"}]}}`, listener(t)))
	r := runner(t, "orders-reg", map[string]string{"consul_address": d.addr, "definition_file": def,
		"wait_for": "passing", "drain_period": "3s"})

	must(t, r, "monitor", probe, ocf.NotRunning)
	must(t, r, "start", nil, ocf.Success)
	e := catalogEntry(t, d, "orders", "orders-node1")
	if e == nil {
		t.Fatal("orders-node1 is not in the catalog after start with wait_for=passing")
	}
	if e.Service.Meta["ha_resource"] != "orders-reg" || e.Service.Port != 8443 || e.Node.Node != d.node {
		t.Errorf("catalog entry = %+v on node %s", e.Service, e.Node.Node)
	}
	var checkIDs []string
	for _, c := range e.Checks {
		checkIDs = append(checkIDs, c.CheckID)
		if c.CheckID == "service:orders-node1:2" && c.Status != api.HealthPassing {
			t.Errorf("the TTL check is %s after start, want passing", c.Status)
		}
	}
	if !strings.Contains(strings.Join(checkIDs, " "), "service:orders-node1:1") {
		t.Errorf("catalog checks = %v", checkIDs)
	}
	must(t, r, "monitor", recurring, ocf.Success)

	// Stop in the background and watch the catalog: the maintenance
	// check must show before the instance goes.
	type result struct {
		res     ocftest.Result
		elapsed time.Duration
	}
	done := make(chan result, 1)
	begin := time.Now()
	go func() { res := r.Run("stop", nil); done <- result{res, time.Since(begin)} }()
	sawMaintenance := false
	var stopped result
wait:
	for {
		select {
		case stopped = <-done:
			break wait
		case <-time.After(100 * time.Millisecond):
		}
		e := catalogEntry(t, d, "orders", "orders-node1")
		if e == nil {
			if !sawMaintenance {
				t.Fatal("the instance left the catalog before it was seen in maintenance")
			}
			continue
		}
		for _, c := range e.Checks {
			if c.CheckID == api.ServiceMaintPrefix+"orders-node1" && c.Status == api.HealthCritical {
				sawMaintenance = true
			}
		}
	}
	if stopped.res.Code != ocf.Success {
		t.Fatalf("stop = %+v", stopped.res)
	}
	if !sawMaintenance {
		t.Error("the maintenance check never showed in the catalog during the drain")
	}
	if stopped.elapsed < 3*time.Second {
		t.Errorf("stop took %v, less than drain_period 3s", stopped.elapsed)
	}
	deadline := time.Now().Add(5 * time.Second)
	for catalogEntry(t, d, "orders", "orders-node1") != nil {
		if time.Now().After(deadline) {
			t.Fatal("orders-node1 is still in the catalog 5s after stop")
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(t, r, "monitor", recurring, ocf.NotRunning)
	must(t, r, "stop", nil, ocf.Success)
}

// TestSafetyNet is the case Pacemaker cannot clean up: the registration
// stays but nothing monitors it any more (Pacemaker gone from the node).
// The TTL check expires and deregister_critical_service_after, added to
// every check, makes Consul remove the instance. It takes Consul's
// minimum of a minute, plus up to 30s until its reaper runs.
func TestSafetyNet(t *testing.T) {
	if testing.Short() {
		t.Skip("takes up to two minutes (Consul's minimum deregister_critical_service_after, and its reaper's pace)")
	}
	t.Parallel()
	d := startConsul(t, "")
	r := runner(t, "net-reg", map[string]string{"consul_address": d.addr, "service_name": "net",
		"check_ttl": "2s", "deregister_critical_service_after": "1m"})
	must(t, r, "start", nil, ocf.Success)
	begin := time.Now()
	for {
		services, err := d.api.Agent().Services()
		if err != nil {
			t.Fatal(err)
		}
		if services["net-node1"] == nil {
			break
		}
		if time.Since(begin) > 150*time.Second {
			t.Fatal("Consul kept the unmonitored registration for 150s; deregister_critical_service_after was not applied")
		}
		time.Sleep(time.Second)
	}
	if elapsed := time.Since(begin); elapsed < time.Minute {
		t.Errorf("removed after %v, before the TTL expired plus a minute", elapsed)
	}
	must(t, r, "monitor", recurring, ocf.NotRunning)
}

// TestStaleRegistration is the reboot case: Consul restored this
// resource's registration (its ID, its name, its meta) on a node where
// the resource no longer runs, and the state directory holds no record of
// it. A probe withdraws it and reports "not running"
// (TestProbeAfterNodeReturn has the whole return), and leaves alone what
// only carries the meta. Within one boot, the record of what was
// registered lets a probe and a stop find a registration even with the
// definition file broken, and a start remove one under an ID the
// definition no longer gives.
func TestStaleRegistration(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	stale := &api.AgentServiceRegistration{ID: "orders-node1", Name: "orders", Port: 1,
		Meta:  map[string]string{"ha_resource": "orders-reg"},
		Check: &api.AgentServiceCheck{CheckID: "old-ttl", TTL: "30s"}}
	impostor := &api.AgentServiceRegistration{ID: "orders-oldnode", Name: "orders", Port: 2,
		Meta: map[string]string{"ha_resource": "orders-reg"}}
	other := &api.AgentServiceRegistration{ID: "unrelated", Name: "orders", Meta: map[string]string{"ha_resource": "someone-else"}}
	for _, reg := range []*api.AgentServiceRegistration{stale, impostor, other} {
		if err := d.api.Agent().ServiceRegister(reg); err != nil {
			t.Fatal(err)
		}
	}
	def := filepath.Join(t.TempDir(), "orders.json")
	writeDefinition(t, def, `{"service": {"name": "orders", "port": 8443, "checks": [{"ttl": "30s"}]}}`)
	r := runner(t, "orders-reg", map[string]string{"consul_address": d.addr, "definition_file": def, "drain_period": "1s"})

	must(t, r, "monitor", probe, ocf.NotRunning)
	services, err := d.api.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := services["orders-node1"]; ok {
		t.Error("the probe left the stale registration")
	}
	for _, id := range []string{"orders-oldnode", "unrelated"} {
		if _, ok := services[id]; !ok {
			t.Errorf("the probe removed %s, which this resource never registered", id)
		}
	}
	must(t, r, "stop", nil, ocf.Success)

	// Registered by this resource, then the file breaks: the record
	// still names the registration.
	must(t, r, "start", nil, ocf.Success)
	writeDefinition(t, def, `{"service": {"name": "orders", "port": 8443, "checks": [{"ttl": "30s"},]}}`)
	must(t, r, "monitor", probe, ocf.Success)
	// A recurring monitor reports the registration, degraded by the
	// broken file, so that someone fixes it.
	if got := must(t, r, "monitor", recurring, ocf.Degraded); !strings.Contains(got.Reason, "definition_file: not valid JSON") {
		t.Errorf("recurring monitor reason %q", got.Reason)
	}
	must(t, r, "stop", nil, ocf.Success)
	if services, _ = d.api.Agent().Services(); services["orders-node1"] != nil {
		t.Error("stop with a broken definition left the registration")
	}
	// With the file broken and nothing registered, a probe says "not
	// running" and a start says what is wrong with the file.
	must(t, r, "monitor", probe, ocf.NotRunning)
	if got := must(t, r, "start", nil, ocf.InvalidArgs); !strings.Contains(got.Reason, "not valid JSON") {
		t.Errorf("start reason %q", got.Reason)
	}

	// A start under a new ID replaces the recorded registration under
	// the old one, and only that.
	writeDefinition(t, def, `{"service": {"name": "orders", "port": 8443, "checks": [{"ttl": "30s"}]}}`)
	must(t, r, "start", nil, ocf.Success)
	writeDefinition(t, def, `{"service": {"id": "orders-green", "name": "orders", "port": 8443, "checks": [{"ttl": "30s"}]}}`)
	must(t, r, "start", nil, ocf.Success)
	services, _ = d.api.Agent().Services()
	if _, ok := services["orders-node1"]; ok {
		t.Error("start left the registration under the old ID")
	}
	for _, id := range []string{"orders-green", "orders-oldnode", "unrelated"} {
		if _, ok := services[id]; !ok {
			t.Errorf("%s is missing after the start under a new ID", id)
		}
	}
}

// TestForeignService: a service that someone else registered with
// ha_resource=<this resource> is never taken for this resource's. The
// old agent's probe reported it running on a node where the resource
// never ran (Pacemaker then sees the resource active twice), and start
// and stop put it in maintenance and deregistered it.
func TestForeignService(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	foreign := []*api.AgentServiceRegistration{
		// Another ID, the same name.
		{ID: "orders-elsewhere", Name: "orders", Port: 1, Meta: map[string]string{"ha_resource": "orders-reg"},
			Check: &api.AgentServiceCheck{CheckID: "foreign-ttl", TTL: "30m", Status: api.HealthPassing}},
		// Another name.
		{ID: "evil-node1", Name: "evil", Port: 2, Meta: map[string]string{"ha_resource": "orders-reg"}},
	}
	for _, reg := range foreign {
		if err := d.api.Agent().ServiceRegister(reg); err != nil {
			t.Fatal(err)
		}
	}
	untouched := func(when string) {
		t.Helper()
		services, err := d.api.Agent().Services()
		if err != nil {
			t.Fatal(err)
		}
		checks, err := d.api.Agent().Checks()
		if err != nil {
			t.Fatal(err)
		}
		for _, reg := range foreign {
			if services[reg.ID] == nil {
				t.Errorf("%s: the foreign service %s was deregistered", when, reg.ID)
			}
			if _, inMaint := checks[api.ServiceMaintPrefix+reg.ID]; inMaint {
				t.Errorf("%s: the foreign service %s was put in maintenance", when, reg.ID)
			}
		}
	}
	r := runner(t, "orders-reg", map[string]string{"consul_address": d.addr, "service_name": "orders", "check_ttl": "30s", "drain_period": "0"})
	got := must(t, r, "monitor", probe, ocf.NotRunning)
	if !strings.Contains(got.Stderr, "orders-elsewhere") || !strings.Contains(got.Stderr, "left alone") {
		t.Errorf("the probe did not log the foreign registrations:\n%s", got.Stderr)
	}
	must(t, r, "stop", nil, ocf.Success)
	untouched("stop before start")
	must(t, r, "start", nil, ocf.Success)
	must(t, r, "monitor", recurring, ocf.Success)
	untouched("start")
	must(t, r, "stop", nil, ocf.Success)
	untouched("stop")
	if services, _ := d.api.Agent().Services(); services["orders-node1"] != nil {
		t.Error("stop left this resource's own registration")
	}

	// The ID this resource derives, taken by a service of another
	// name with this resource's meta: not this resource's.
	if err := d.api.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "orders-node1", Name: "evil", Port: 3,
		Meta: map[string]string{"ha_resource": "orders-reg"}}); err != nil {
		t.Fatal(err)
	}
	must(t, r, "monitor", probe, ocf.NotRunning)
	if got := must(t, r, "start", nil, ocf.InvalidArgs); !strings.Contains(got.Reason, `orders-node1 on this node's Consul is taken by service "evil"`) {
		t.Errorf("start reason %q", got.Reason)
	}
	must(t, r, "stop", nil, ocf.Success)
	s, _, err := d.api.Agent().Service("orders-node1", nil)
	if err != nil || s.Service != "evil" {
		t.Errorf("the foreign orders-node1 changed: %+v, %v", s, err)
	}
}

// TestExclusive: an action that changes the registration waits for the
// resource's lock, so a start cannot interleave with a stop (here, the
// lock held by the test stands for a stop in progress).
func TestExclusive(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	state := t.TempDir()
	unlock, err := process.Lock(context.Background(), filepath.Join(state, "directory-registration-lock-reg.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "directory-registration",
		Params: map[string]string{"consul_address": d.addr, "service_name": "lock"},
		Env: map[string]string{"OCF_RESOURCE_INSTANCE": "lock-reg", "OCF_RESKEY_CRM_meta_on_node": "node1",
			"OCF_RESKEY_CRM_meta_timeout": "3000", "HA_RSCTMP": state}})
	if got := r.Run("start", nil); got.Code == ocf.Success {
		t.Fatal("start succeeded while the resource's lock was held")
	}
	if services, _ := d.api.Agent().Services(); services["lock-node1"] != nil {
		t.Error("start registered while the resource's lock was held")
	}
	must(t, r, "monitor", recurring, ocf.NotRunning) // monitors never wait
	unlock()
	must(t, r, "start", nil, ocf.Success)
	must(t, r, "stop", nil, ocf.Success)
}

// TestDefinitionChanges covers both ways a definition changes: an edited
// file, which only the depth-10 monitor sees, and changed parameters,
// which Pacemaker hands to reload-agent.
func TestDefinitionChanges(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	def := filepath.Join(t.TempDir(), "orders.json")
	writeDefinition(t, def, `{"service": {"name": "orders", "port": 8443, "checks": [{"ttl": "30s"}]}}`)
	r := runner(t, "orders-reg", map[string]string{"consul_address": d.addr, "definition_file": def})
	must(t, r, "start", nil, ocf.Success)

	writeDefinition(t, def, `{"service": {"name": "orders", "port": 9443, "tags": ["new"], "checks": [{"ttl": "30s"}]}}`)
	must(t, r, "monitor", recurring, ocf.Success)
	if s, _, _ := d.api.Agent().Service("orders-node1", nil); s.Port != 8443 {
		t.Errorf("a depth-0 monitor changed the registration: port %d", s.Port)
	}
	must(t, r, "monitor", deep, ocf.Success)
	s, _, err := d.api.Agent().Service("orders-node1", nil)
	if err != nil || s.Port != 9443 || len(s.Tags) != 1 || s.Tags[0] != "new" {
		t.Fatalf("after the deep monitor: %+v, %v", s, err)
	}
	// crm_resource --force-check=10 runs a depth-10 probe: the way to
	// apply an edit at once.
	writeDefinition(t, def, `{"service": {"name": "orders", "port": 9444, "checks": [{"ttl": "30s"}]}}`)
	must(t, r, "monitor", map[string]string{"OCF_RESKEY_CRM_meta_interval": "", "OCF_CHECK_LEVEL": "10"}, ocf.Success)
	if s, _, _ := d.api.Agent().Service("orders-node1", nil); s.Port != 9444 {
		t.Errorf("a depth-10 probe did not apply the edit: port %d", s.Port)
	}

	// Parameters: a new service ID through reload-agent replaces the
	// registration, the new one in place before the old one goes.
	p := runner(t, "pay-reg", map[string]string{"consul_address": d.addr, "service_name": "pay", "check_ttl": "30s", "wait_for": "catalog"})
	must(t, p, "start", nil, ocf.Success)
	if catalogEntry(t, d, "pay", "pay-node1") == nil {
		t.Error("pay-node1 is not in the catalog after start with wait_for=catalog")
	}
	must(t, p, "reload-agent", map[string]string{"OCF_RESKEY_service_id": "pay-blue", "OCF_RESKEY_service_port": "7000"}, ocf.Success)
	services, _ := d.api.Agent().Services()
	if _, ok := services["pay-node1"]; ok {
		t.Error("reload-agent left the registration under the old ID")
	}
	if s := services["pay-blue"]; s == nil || s.Port != 7000 {
		t.Errorf("after reload-agent: %+v", s)
	}
	must(t, p, "monitor", map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_RESKEY_service_id": "pay-blue", "OCF_RESKEY_service_port": "7000"}, ocf.Success)
}

func TestHealthStates(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	closed := deadAddress(t)
	params := map[string]string{"consul_address": d.addr, "service_name": "down", "check_tcp": closed, "check_interval": "1s"}
	r := runner(t, "down-reg", params)
	must(t, r, "start", nil, ocf.Success) // wait_for=agent does not care about checks
	// Let the TCP check run once.
	time.Sleep(2500 * time.Millisecond)
	if got := must(t, r, "monitor", recurring, ocf.Degraded); !strings.Contains(got.Reason, "is critical") {
		t.Errorf("reason %q", got.Reason)
	}
	failing := map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_RESKEY_on_critical": "failure"}
	if got := must(t, r, "monitor", failing, ocf.GenericFailure); !strings.Contains(got.Reason, "on_critical=failure") {
		t.Errorf("reason %q", got.Reason)
	}
	must(t, r, "stop", nil, ocf.Success)

	// wait_for=passing gives up at the timeout, saying what it waited for.
	params["wait_for"] = "passing"
	r = ocftest.NewRunner(t, New(), ocftest.Config{Name: "directory-registration", Params: params,
		Env: map[string]string{"OCF_RESOURCE_INSTANCE": "down-reg", "OCF_RESKEY_CRM_meta_on_node": "node1", "OCF_RESKEY_CRM_meta_timeout": "4000"}})
	if got := must(t, r, "start", nil, ocf.GenericFailure); !strings.Contains(got.Reason, "not passing before the start timeout") {
		t.Errorf("reason %q", got.Reason)
	}
	must(t, r, "stop", nil, ocf.Success)

	// A TTL no longer than the monitor interval flaps: degraded, named.
	r = runner(t, "ttl-reg", map[string]string{"consul_address": d.addr, "service_name": "ttl", "check_ttl": "5s"})
	must(t, r, "start", nil, ocf.Success)
	if got := must(t, r, "monitor", recurring, ocf.Degraded); !strings.Contains(got.Reason, "not longer than the monitor interval") {
		t.Errorf("reason %q", got.Reason)
	}

	// An interrupted stop leaves maintenance on: start ends it.
	if err := d.api.Agent().EnableServiceMaintenance("ttl-node1", "test"); err != nil {
		t.Fatal(err)
	}
	if got := must(t, r, "monitor", map[string]string{"OCF_RESKEY_CRM_meta_interval": "1000"}, ocf.Degraded); !strings.Contains(got.Reason, "in maintenance") {
		t.Errorf("reason %q", got.Reason)
	}
	must(t, r, "start", nil, ocf.Success)
	must(t, r, "monitor", map[string]string{"OCF_RESKEY_CRM_meta_interval": "1000"}, ocf.Success)
}

// TestStartEntersPassing: an instance whose service answers when start
// registers it is passing in the catalog as soon as start returns, not
// critical until Consul first runs its check (a random part of
// check_interval, here ten minutes, later). One that does not answer
// starts critical, as Consul would have it.
func TestStartEntersPassing(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	for _, tc := range []struct {
		name, check, want string
	}{
		{"answers", srv.URL + "/health", api.HealthPassing},
		{"silent", "http://" + deadAddress(t) + "/health", api.HealthCritical},
	} {
		r := runner(t, tc.name+"-reg", map[string]string{"consul_address": d.addr, "service_name": tc.name,
			"check_http": tc.check, "check_interval": "10m", "wait_for": "catalog"})
		must(t, r, "start", nil, ocf.Success)
		e := catalogEntry(t, d, tc.name, tc.name+"-node1")
		if e == nil {
			t.Fatalf("%s: not in the catalog after start", tc.name)
		}
		if got := e.Checks.AggregatedStatus(); got != tc.want {
			t.Errorf("%s: %s in the catalog right after start, want %s", tc.name, got, tc.want)
		}
		must(t, r, "stop", nil, ocf.Success)
	}
}

// TestConflictingID refuses to take over a registration that is not this
// resource's.
func TestConflictingID(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	if err := d.api.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web-node1", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	r := runner(t, "web-reg", map[string]string{"consul_address": d.addr, "service_name": "web"})
	got := must(t, r, "start", nil, ocf.InvalidArgs)
	if !strings.Contains(got.Reason, "set service_id (or \"id\" in the definition): web-node1 on this node's Consul is taken by something other than Pacemaker") {
		t.Errorf("reason %q", got.Reason)
	}
}

// TestConsulGoesAway: with the local agent gone, a probe cannot see
// registrations and reports "not running", a recurring monitor fails
// (soft: Consul may be restarting), a stop succeeds (the node's
// registrations are out of discovery while its agent is down), a start
// fails, softly, naming the address.
func TestConsulGoesAway(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	r := runner(t, "gone-reg", map[string]string{"consul_address": d.addr, "service_name": "gone", "check_ttl": "30s"})
	must(t, r, "start", nil, ocf.Success)
	d.kill()
	must(t, r, "monitor", probe, ocf.NotRunning)
	if got := must(t, r, "monitor", recurring, ocf.GenericFailure); !strings.Contains(got.Reason, "does not answer (connection refused)") {
		t.Errorf("reason %q", got.Reason)
	}
	must(t, r, "stop", nil, ocf.Success)
	// A soft error: NotInstalled would ban the resource from the node
	// until someone cleans it up, for what is usually an outage.
	if got := must(t, r, "start", nil, ocf.GenericFailure); !strings.Contains(got.Reason, "or fix consul_address: "+d.addr+" does not answer") {
		t.Errorf("reason %q", got.Reason)
	}
}

// TestACLToken runs against an agent with ACLs on (default deny): the
// token from token_file is used, a token Consul rejects gives a reason
// naming token_file, the policy the README documents is enough, and the
// token never appears in the output.
func TestACLToken(t *testing.T) {
	t.Parallel()
	const root = "3f2cbd8c-0e5b-4b8e-9a53-52d0c1f0a001"
	d := startConsul(t, root, "-hcl", `acl { enabled = true
		default_policy = "deny"
		tokens { initial_management = "`+root+`" } }`)
	dir := t.TempDir()
	good := filepath.Join(dir, "root.token")
	bad := filepath.Join(dir, "bad.token")
	writeSecret := func(path, token string) {
		if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeSecret(bad, "3f2cbd8c-0e5b-4b8e-9a53-52d0c1f0dead")

	r := runner(t, "acl-reg", map[string]string{"consul_address": d.addr, "service_name": "acl", "token_file": bad, "check_ttl": "30s"})
	got := r.Run("start", nil)
	if got.Code != ocf.InvalidArgs || !strings.Contains(got.Reason, "token_file "+bad+": its token needs service:write") {
		t.Errorf("start with a rejected token = %v %q", got.Code, got.Reason)
	}
	must(t, r, "monitor", probe, ocf.NotRunning)

	// The least privilege the README documents: write on the service,
	// read on nodes (the catalog checks of wait_for).
	policy, _, err := d.api.ACL().PolicyCreate(&api.ACLPolicy{Name: "acl-registration",
		Rules: `service "acl" { policy = "write" }
node_prefix "" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	narrow, _, err := d.api.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: policy.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeSecret(good, narrow.SecretID)
	r = runner(t, "acl-reg", map[string]string{"consul_address": d.addr, "service_name": "acl", "token_file": good,
		"check_ttl": "30s", "wait_for": "passing"})
	for _, step := range []struct {
		action string
		extra  map[string]string
		want   ocf.Code
	}{{"start", nil, ocf.Success}, {"monitor", recurring, ocf.Success}, {"monitor", deep, ocf.Success}, {"stop", nil, ocf.Success}} {
		got := must(t, r, step.action, step.extra, step.want)
		if strings.Contains(got.Stderr, narrow.SecretID) || strings.Contains(got.Stdout, narrow.SecretID) {
			t.Fatalf("%s printed the token", step.action)
		}
	}
}

// TestTokenFilePermissions: a token file others can read is refused
// before Consul is asked.
func TestTokenFilePermissions(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	token := filepath.Join(t.TempDir(), "open.token")
	if err := os.WriteFile(token, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(token, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runner(t, "perm-reg", map[string]string{"consul_address": d.addr, "service_name": "perm", "token_file": token})
	if got := must(t, r, "start", nil, ocf.InvalidArgs); !strings.Contains(got.Reason, "chmod 600 "+token) {
		t.Errorf("reason %q", got.Reason)
	}
	services, _ := d.api.Agent().Services()
	if len(services) > 0 {
		t.Errorf("registered despite the open token file: %v", services)
	}
}

// TestUnsafeStateDir: a state directory that others can write to (where
// they could plant a link in place of the record) is refused by start,
// with a reason saying what to fix; probe and stop still work.
func TestUnsafeStateDir(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	state := filepath.Join(t.TempDir(), "planted")
	if err := os.Mkdir(state, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "directory-registration",
		Params: map[string]string{"consul_address": d.addr, "service_name": "planted"},
		Env:    map[string]string{"OCF_RESOURCE_INSTANCE": "planted-reg", "OCF_RESKEY_CRM_meta_on_node": "node1", "HA_RSCTMP": state}})
	got := r.Run("start", nil)
	if got.Code == ocf.Success || !strings.Contains(got.Reason, "check what is in "+state+", then remove it or chmod 700 it") {
		t.Errorf("start = %v %q, want a failure naming the directory", got.Code, got.Reason)
	}
	if services, _ := d.api.Agent().Services(); services["planted-node1"] != nil {
		t.Error("start registered without a safe place for its record")
	}
	must(t, r, "monitor", probe, ocf.NotRunning)
	must(t, r, "stop", nil, ocf.Success)
	if info, err := os.Stat(state); err != nil || info.Mode().Perm() != 0o777 {
		t.Errorf("the unsafe directory was changed: %v, %v", info.Mode(), err)
	}
}
