//go:build integration

package gateway

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxtest"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// These tests run the agent in-process with the real nginx (Debian's, with
// its Lua module), a real Consul dev agent and an echoing upstream, all on
// loopback ports picked free. The companion is this test binary.

type fixture struct {
	consul *consultest.Cluster
	kv     *api.Client
	issuer *issuer
	params map[string]string
	env    map[string]string
	base   string
	client *http.Client
}

func newFixture(t *testing.T, certValid time.Duration) *fixture {
	t.Helper()
	nginxtest.Binary(t)
	dir := t.TempDir()
	cl := consultest.StartServer(t, &consultest.Options{Dev: true})
	kv, err := api.NewClient(&api.Config{Address: cl.HTTPAddr(0)})
	if err != nil {
		t.Fatal(err)
	}
	// A short state directory: the state socket's path is limited to
	// 107 bytes, and t.TempDir's names are long.
	state, err := os.MkdirTemp("/tmp", "hafw-gw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	cert, key := testCertValid(t, dir, certValid)
	up := nginxtest.NewEcho(t)
	listen := nginxtest.FreePort(t)
	is := newIssuer(t, dir)
	return &fixture{consul: cl, kv: kv, issuer: is, base: "https://" + listen,
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}},
		params: map[string]string{"routes": "/orders/=orders=" + up.URL, "listen": listen, "tls_cert_file": cert, "tls_key_file": key,
			"jwt_policy_file": is.policyFile, "consul_address": cl.HTTPAddr(0), "state_dir": filepath.Join(state, "s"), "workers": "1"},
		env: map[string]string{"HA_RSCTMP": state, "OCF_RESKEY_CRM_meta_timeout": "30000"}}
}

func (f *fixture) runner(t *testing.T) *ocftest.Runner {
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "openresty-gateway", Params: f.params, Env: f.env})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	return r
}

func (f *fixture) get(t *testing.T, path, auth string) int {
	t.Helper()
	code, err := f.try(path, auth)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// try is get for polls: a refused connection is an answer, not a failure.
func (f *fixture) try(path, auth string) (int, error) {
	req, _ := http.NewRequest("GET", f.base+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (f *fixture) put(t *testing.T, key, doc string) {
	t.Helper()
	if _, err := f.kv.KV().Put(&api.KVPair{Key: key, Value: []byte(doc)}, nil); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for start := time.Now(); !f(); time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

var deep = map[string]string{"OCF_CHECK_LEVEL": "10", "OCF_RESKEY_CRM_meta_interval": "60000"}

func TestLifecycle(t *testing.T) {
	f := newFixture(t, 90*24*time.Hour)
	r := f.runner(t)
	began := time.Now()
	if res := r.Run(ocf.ActionStart, nil); res.Code != ocf.Success {
		t.Fatalf("start: %v %q\n%s", res.Code, res.Reason, res.Stderr)
	}
	t.Logf("started in %s", time.Since(began).Round(time.Millisecond))
	alice := f.issuer.bearer(t, "alice")
	if c := f.get(t, "/orders/1", ""); c != 401 {
		t.Errorf("without a token: %d, want 401", c)
	}
	if c := f.get(t, "/orders/1", alice); c != 403 {
		t.Errorf("no ACL yet: %d, want 403", c)
	}
	f.put(t, "acl/orders", `{"version": 1, "rules": [{"action": "allow", "subjects": ["alice"]}]}`)
	eventually(t, "the ACL from Consul enforced", func() bool { return f.get(t, "/orders/1", alice) == 200 })
	if res := r.Run(ocf.ActionMonitor, deep); res.Code != ocf.Success {
		t.Errorf("deep monitor: %v %q", res.Code, res.Reason)
	}

	// A document that fails validation: degraded, the last good stays.
	f.put(t, "acl/orders", `{"version": 2, "rules": [{"action": "allow", "subjects": ["alice"]}], "extra": 1}`)
	eventually(t, "degraded with the reason", func() bool {
		res := r.Run(ocf.ActionMonitor, nil)
		return res.Code == ocf.Degraded && strings.Contains(res.Reason, "ACL refused, last good kept: orders") && strings.Contains(res.Reason, "extra")
	})
	if res := r.Run(ocf.ActionMonitor, deep); res.Code != ocf.Degraded {
		t.Errorf("deep monitor with a refused document: %v %q, want degraded", res.Code, res.Reason)
	}
	if c := f.get(t, "/orders/1", alice); c != 200 {
		t.Errorf("after a refused document: %d, want 200", c)
	}
	f.put(t, "acl/orders", `{"version": 3, "rules": [{"action": "allow"}]}`)
	eventually(t, "healthy again", func() bool { return r.Run(ocf.ActionMonitor, deep).Code == ocf.Success })

	// A key rotated in the files reaches nginx without a reload, and the
	// deep monitor compares nginx's keys with the files'.
	old := f.issuer.bearer(t, "alice")
	rotated := newIssuer(t, t.TempDir())
	data, err := os.ReadFile(rotated.policyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.issuer.policyFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rotated key enforced", func() bool {
		return f.get(t, "/orders/1", rotated.bearer(t, "alice")) == 200 && f.get(t, "/orders/1", old) == 401
	})
	if res := r.Run(ocf.ActionMonitor, deep); res.Code != ocf.Success {
		t.Errorf("deep monitor after the key rotation: %v %q", res.Code, res.Reason)
	}
	f.issuer = rotated
	alice = rotated.bearer(t, "alice")

	// New routes: reload-agent, no restart, the shared state survives.
	pid := readPID(t, filepath.Join(f.params["state_dir"], "private", "master.pid"))
	f.params["routes"] += ",/v2/=v2=" + strings.Split(f.params["routes"], "=")[2]
	r2 := ocftest.NewRunner(t, New(), ocftest.Config{Name: "openresty-gateway", Params: f.params, Env: f.env})
	if res := r2.Run(ocf.ActionReloadAgent, nil); res.Code != ocf.Success {
		t.Fatalf("reload-agent: %v %q\n%s", res.Code, res.Reason, res.Stderr)
	}
	f.put(t, "acl/v2", `{"version": 1, "rules": [{"action": "allow", "subjects": ["alice"]}]}`)
	eventually(t, "the new route serves", func() bool { return f.get(t, "/v2/x", alice) == 200 })
	if got := readPID(t, filepath.Join(f.params["state_dir"], "private", "master.pid")); got != pid {
		t.Errorf("reload-agent restarted nginx: master %d, was %d", got, pid)
	}
	if c := f.get(t, "/orders/1", alice); c != 200 {
		t.Errorf("orders after the reload: %d, want 200", c)
	}

	// Consul goes away: degraded, the ACLs stay enforced.
	f.consul.Stop(0)
	eventually(t, "degraded during the Consul outage", func() bool {
		res := r2.Run(ocf.ActionMonitor, nil)
		return res.Code == ocf.Degraded && strings.Contains(res.Reason, "Consul unreachable")
	})
	if c := f.get(t, "/orders/1", alice); c != 200 {
		t.Errorf("during the outage: %d, want 200", c)
	}
	// A restart during the outage enforces the persisted state.
	if res := r2.Run(ocf.ActionStop, nil); res.Code != ocf.Success {
		t.Fatalf("stop: %v %q", res.Code, res.Reason)
	}
	if res := r2.Run(ocf.ActionMonitor, nil); res.Code != ocf.NotRunning {
		t.Errorf("monitor after stop: %v %q, want not running", res.Code, res.Reason)
	}
	if res := r2.Run(ocf.ActionStart, nil); res.Code != ocf.Success {
		t.Fatalf("start during the outage: %v %q\n%s", res.Code, res.Reason, res.Stderr)
	}
	if c := f.get(t, "/v2/x", alice); c != 200 {
		t.Errorf("after a restart during the outage: %d, want 200 (the persisted ACL)", c)
	}
	if c := f.get(t, "/v2/x", f.issuer.bearer(t, "bob")); c != 403 {
		t.Errorf("bob after a restart during the outage: %d, want 403 (the persisted ACL)", c)
	}
	if res := r2.Run(ocf.ActionStop, nil); res.Code != ocf.Success {
		t.Fatalf("stop: %v %q", res.Code, res.Reason)
	}
}

// TestRecoveryAfterKilledMaster: after nginx's master dies by SIGKILL,
// the recovery Pacemaker runs (stop, start) works: its workers, which
// outlive it holding the listening sockets, and its unix socket, which
// it leaves behind, are cleared by stop and start.
func TestRecoveryAfterKilledMaster(t *testing.T) {
	f := newFixture(t, 90*24*time.Hour)
	r := f.runner(t)
	if res := r.Run(ocf.ActionStart, nil); res.Code != ocf.Success {
		t.Fatalf("start: %v %q", res.Code, res.Reason)
	}
	if err := syscall.Kill(readPID(t, filepath.Join(f.params["state_dir"], "private", "master.pid")), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the monitor sees the master gone", func() bool { return r.Run(ocf.ActionMonitor, nil).Code == ocf.GenericFailure })
	if res := r.Run(ocf.ActionStop, nil); res.Code != ocf.Success {
		t.Fatalf("stop: %v %q", res.Code, res.Reason)
	}
	if res := r.Run(ocf.ActionStart, nil); res.Code != ocf.Success {
		t.Fatalf("start after the kill: %v %q", res.Code, res.Reason)
	}
	f.put(t, "acl/orders", `{"version": 1, "rules": [{"action": "allow"}]}`)
	eventually(t, "serving again", func() bool { c, _ := f.try("/orders/1", f.issuer.bearer(t, "a")); return c == 200 })
}

func TestCertificateExpiryDegrades(t *testing.T) {
	f := newFixture(t, 3*24*time.Hour)
	r := f.runner(t)
	if res := r.Run(ocf.ActionStart, nil); res.Code != ocf.Success {
		t.Fatalf("start: %v %q\n%s", res.Code, res.Reason, res.Stderr)
	}
	if res := r.Run(ocf.ActionMonitor, deep); res.Code != ocf.Degraded || !strings.Contains(res.Reason, "renew tls_cert_file") {
		t.Errorf("deep monitor with a certificate expiring in 3 days: %v %q, want degraded", res.Code, res.Reason)
	}
	f.params["cert_expiry_days"] = "2"
	r2 := ocftest.NewRunner(t, New(), ocftest.Config{Name: "openresty-gateway", Params: f.params, Env: f.env})
	if res := r2.Run(ocf.ActionMonitor, deep); res.Code != ocf.Success {
		t.Errorf("deep monitor with cert_expiry_days=2: %v %q, want success", res.Code, res.Reason)
	}
}

// TestStartFailsFast: a taken port fails the start at once, naming the
// parameter; nginx refusing its configuration fails it with nginx's words.
func TestStartFailsFast(t *testing.T) {
	f := newFixture(t, 90*24*time.Hour)
	busy, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	f.params["listen"] = busy.Addr().String()
	r := f.runner(t)
	began := time.Now()
	res := r.Run(ocf.ActionStart, nil)
	if res.Code != ocf.InvalidArgs || !strings.Contains(res.Reason, "change listen") {
		t.Errorf("start on a taken port: %v %q, want OCF_ERR_ARGS naming listen", res.Code, res.Reason)
	}
	if d := time.Since(began); d > 15*time.Second {
		t.Errorf("the failed start took %s: it must not wait for the timeout", d)
	}
	// A certificate nginx cannot load (the key does not match it).
	f.params["listen"] = nginxtest.FreePort(t)
	other, _ := testCertValid(t, t.TempDir(), 90*24*time.Hour)
	f.params["tls_cert_file"] = other
	r = f.runner(t)
	res = r.Run(ocf.ActionStart, nil)
	if res.Code != ocf.InvalidArgs || !strings.Contains(res.Reason, "nginx refuses the configuration") || !strings.Contains(res.Reason, "SSL_CTX_use_PrivateKey") {
		t.Errorf("start with a mismatched key: %v %q, want OCF_ERR_ARGS quoting nginx -t", res.Code, res.Reason)
	}
}

func TestConformance(t *testing.T) {
	f := newFixture(t, 90*24*time.Hour)
	ocftest.Conformance(t, New(), ocftest.Config{Name: "openresty-gateway", Params: f.params, Env: f.env})
}

// TestOCFTester runs the real ocf-tester on the agent built from this
// package.
func TestOCFTester(t *testing.T) {
	f := newFixture(t, 90*24*time.Hour)
	// ocf-tester also runs meta-data as an unprivileged user: every
	// directory above the binary must let it through.
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	bin := filepath.Join(dir, "openresty-gateway")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Chmod(bin, 0o755); err != nil { // ocf-tester wants exactly 755
		t.Fatal(err)
	}
	ocftest.OCFTester(t, bin, ocftest.Config{Name: "openresty-gateway", Params: f.params, Env: f.env})
	cmd := exec.Command(bin, "stop")
	cmd.Env = append(os.Environ(), "OCF_RESOURCE_INSTANCE=ocftest-openresty-gateway", "HA_RSCTMP="+f.env["HA_RSCTMP"])
	for k, v := range f.params {
		cmd.Env = append(cmd.Env, "OCF_RESKEY_"+k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("stop after ocf-tester: %v\n%s", err, out)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(strings.TrimSpace(string(data)), &pid)
	return pid
}
