//go:build integration

package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// The installed agent, as Pacemaker runs it (make install puts it there
// before the integration tests).
const installed = "/usr/lib/ocf/resource.d/ha-framework/openresty-gateway"

func requirePacemaker(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(installed); err != nil {
		t.Skipf("%s is not installed (make install)", installed)
	}
	if out, err := exec.Command("crm_mon", "-1", "--output-as=xml").CombinedOutput(); err != nil {
		t.Skipf("no running Pacemaker (make cluster-up): %v\n%s", err, out)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestCrmResourceValidate(t *testing.T) {
	requirePacemaker(t)
	f := newFixture(t, 90*24*time.Hour)
	params := map[string]string{}
	for k, v := range f.params {
		params[k] = v
	}
	if rc, out := ocftest.CrmValidate(t, "ha-framework", "openresty-gateway", params); rc != 0 {
		t.Errorf("crm_resource --validate with good parameters: rc %d\n%s", rc, out)
	}
	params["routes"] = "/a=a"
	if rc, out := ocftest.CrmValidate(t, "ha-framework", "openresty-gateway", params); rc == 0 || !strings.Contains(out, "routes") {
		t.Errorf("crm_resource --validate with bad routes: rc %d, want a failure naming routes\n%s", rc, out)
	}
}

// TestOnPacemaker creates the resource with pcs, sends traffic through
// it, and sees Pacemaker recover it after nginx's master is killed.
func TestOnPacemaker(t *testing.T) {
	requirePacemaker(t)
	f := newFixture(t, 90*24*time.Hour)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	id := "hafw-gw-" + hex.EncodeToString(b)
	args := []string{"resource", "create", id, "ocf:ha-framework:openresty-gateway"}
	for _, k := range []string{"routes", "listen", "tls_cert_file", "tls_key_file", "jwt_policy_file", "consul_address", "workers"} {
		args = append(args, k+"="+f.params[k])
	}
	run(t, "pcs", append(args, "op", "monitor", "interval=2s", "timeout=20s", "--wait=60")...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "pcs", "resource", "delete", id).CombinedOutput(); err != nil {
			t.Logf("pcs resource delete: %v\n%s", err, out)
		}
		_ = exec.CommandContext(ctx, "crm_resource", "--cleanup", "--resource", id).Run()
		_ = os.RemoveAll(filepath.Join("/run/resource-agents", "openresty-gateway-"+id+".d"))
		_ = os.Remove(filepath.Join("/run/resource-agents", "openresty-gateway-"+id+".lock"))
	})
	alice := f.issuer.bearer(t, "alice")
	f.put(t, "acl/orders", `{"version": 1, "rules": [{"action": "allow", "subjects": ["alice"]}]}`)
	eventually(t, "traffic through the gateway", func() bool { c, _ := f.try("/orders/1", alice); return c == 200 })
	if c := f.get(t, "/orders/1", ""); c != 401 {
		t.Errorf("without a token: %d, want 401", c)
	}

	pidFile := filepath.Join("/run/resource-agents", "openresty-gateway-"+id+".d", "private", "master.pid")
	before := readPID(t, pidFile)
	killed := time.Now()
	if err := syscall.Kill(before, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		data, _ := os.ReadFile(pidFile)
		var pid int
		fmt.Sscan(strings.TrimSpace(string(data)), &pid)
		if code, _ := f.try("/orders/1", alice); pid != 0 && pid != before && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pacemaker did not recover the gateway within 60s (pid %d, was %d)", pid, before)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("served again %s after SIGKILL of nginx's master", time.Since(killed).Round(time.Millisecond))
}
