//go:build integration

// Integration tests against the real single-node Pacemaker that
// testcluster/scripts/pacemaker.sh starts, with the agents installed by
// make install. Run them with make test (or make integration).
package testcluster

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/ha-framework/ha-framework/agents"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/cluster"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

const ocfDir = "/usr/lib/ocf/resource.d/ha-framework"

// TestStaticBinaries: every installed agent is a static executable, with no
// program interpreter (dynamic loader) to need.
func TestStaticBinaries(t *testing.T) {
	for _, s := range agents.All() {
		f, err := elf.Open(filepath.Join(ocfDir, s.Name))
		if err != nil {
			t.Fatalf("%s: %v (run make install)", s.Name, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked", s.Name)
			}
		}
		f.Close()
	}
}

func TestOCFTesterExample(t *testing.T) {
	ocfTester(t, "example", map[string]string{"label": "conformance"}, map[string]string{"HA_RSCTMP": t.TempDir()})
}

// ocfTester runs the real ocf-tester on an installed agent, and stops the
// resource afterwards: ocf-tester ends with migrate_from, which may leave
// it running.
func ocfTester(t *testing.T, name string, params, env map[string]string) {
	t.Helper()
	path := filepath.Join(ocfDir, name)
	ocftest.OCFTester(t, path, ocftest.Config{Name: name, Params: params, Env: env})
	cmd := exec.Command(path, "stop")
	cmd.Env = append(os.Environ(), "OCF_RESOURCE_INSTANCE=ocftest-"+name)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range params {
		cmd.Env = append(cmd.Env, "OCF_RESKEY_"+k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("stop after ocf-tester: %v\n%s", err, out)
	}
}

func TestCrmResourceValidate(t *testing.T) {
	rc, out := ocftest.CrmValidate(t, "ha-framework", "example", nil)
	if rc != 6 || !strings.Contains(out, "ocf-exit-reason:parameter label is required") {
		t.Errorf("validate without label: rc %d, want 6 with a reason naming label:\n%s", rc, out)
	}
	rc, out = ocftest.CrmValidate(t, "ha-framework", "example", map[string]string{"label": "x", "delay": "soon"})
	if rc != 6 || !strings.Contains(out, `delay="soon" is invalid`) {
		t.Errorf("validate with a bad delay: rc %d, want 6:\n%s", rc, out)
	}
	if rc, out = ocftest.CrmValidate(t, "ha-framework", "example", map[string]string{"label": "x"}); rc != 0 {
		t.Errorf("validate with label: rc %d, want 0:\n%s", rc, out)
	}
}

func TestExampleOnPacemaker(t *testing.T) {
	requireCluster(t)
	dir := t.TempDir()
	id := uniqueID(t, "hafw-ex")
	state, trace := filepath.Join(dir, "state"), filepath.Join(dir, "trace")
	pcs(t, "resource", "create", id, "ocf:ha-framework:example", "label=one", "state="+state,
		"trace_ra=1", "trace_file="+trace, "op", "monitor", "interval=2s", "--wait=60")
	t.Cleanup(func() { deleteResource(t, id) })
	// Reloads come first: after a cleanup, the last operation Pacemaker
	// records is a probe, and Pacemaker 2.1.5 then restarts on any change.
	waitFor(t, 60*time.Second, "resource started", func() (bool, string) { return role(t, id) == "Started", role(t, id) })

	t.Run("update of a reloadable parameter reloads without restart", func(t *testing.T) {
		before := countActions(t, trace)
		pcs(t, "resource", "update", id, "message=changed", "--wait=60")
		waitFor(t, 30*time.Second, "message applied", func() (bool, string) {
			data, _ := os.ReadFile(state)
			return strings.Contains(string(data), "\nchanged\n"), string(data)
		})
		after := countActions(t, trace)
		if after["reload-agent"] <= before["reload-agent"] {
			t.Errorf("no reload-agent ran: before %v, after %v", before, after)
		}
		if after["stop"] != before["stop"] || after["start"] != before["start"] {
			t.Errorf("resource was restarted: before %v, after %v", before, after)
		}
	})

	t.Run("update of another parameter restarts", func(t *testing.T) {
		before := countActions(t, trace)
		pcs(t, "resource", "update", id, "label=two", "--wait=60")
		waitFor(t, 30*time.Second, "restart", func() (bool, string) {
			after := countActions(t, trace)
			return after["stop"] > before["stop"] && after["start"] > before["start"], ""
		})
	})

	t.Run("recurring monitor failure is recovered", func(t *testing.T) {
		if err := os.Remove(state); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 60*time.Second, "failure recorded and resource restarted", func() (bool, string) {
			_, err := os.Stat(state)
			fails := failCount(t, id)
			return fails > 0 && err == nil && role(t, id) == "Started", "failcount=" + strconv.Itoa(fails) + " role=" + role(t, id)
		})
		pcs(t, "resource", "cleanup", id)
		settle(t)
	})
}

func TestPromotableExample(t *testing.T) {
	requireCluster(t)
	id := uniqueID(t, "hafw-exp")
	pcs(t, "resource", "create", id, "ocf:ha-framework:example", "label=p",
		"state="+filepath.Join(t.TempDir(), "state"), "promotable", "--wait=90")
	t.Cleanup(func() { deleteResource(t, id+"-clone") })
	waitFor(t, 90*time.Second, "promoted", func() (bool, string) { r := role(t, id); return r == "Promoted", r })
}

// --- helpers ---

func requireCluster(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("pcs"); err != nil {
		t.Fatal("pcs missing: run testcluster/scripts/install-deps.sh")
	}
	if out, err := exec.Command("crm_mon", "-1", "--output-as=xml").CombinedOutput(); err != nil {
		t.Fatalf("no running Pacemaker (run testcluster/scripts/pacemaker.sh up): %v\n%s", err, out)
	}
}

func uniqueID(t *testing.T, prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func pcs(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pcs", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pcs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// deleteResource removes a test resource and waits until Pacemaker no
// longer runs it, so that no test leaves anything behind.
func deleteResource(t *testing.T, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "pcs", "resource", "delete", id).CombinedOutput(); err != nil {
		t.Logf("pcs resource delete %s: %v\n%s", id, err, out)
		_ = exec.CommandContext(ctx, "pcs", "resource", "delete", id, "--force").Run()
	}
	_ = exec.CommandContext(ctx, "crm_resource", "--cleanup", "--resource", id).Run()
}

// settle waits until the cluster has no pending actions.
func settle(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("crm_resource", "--wait", "--timeout=60s").CombinedOutput(); err != nil {
		t.Fatalf("crm_resource --wait: %v\n%s", err, out)
	}
}

func crmMon(t *testing.T) *etree.Document {
	t.Helper()
	out, err := exec.Command("crm_mon", "-1", "--output-as=xml", "--include=all").Output()
	if err != nil {
		t.Fatalf("crm_mon: %v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(out); err != nil {
		t.Fatalf("crm_mon output: %v", err)
	}
	return doc
}

// role returns the role crm_mon shows for resource id ("Started",
// "Promoted", "Stopped", ...), "" when absent.
func role(t *testing.T, id string) string {
	for _, r := range crmMon(t).FindElements("//resources//resource") {
		if r.SelectAttrValue("id", "") == id {
			if r.SelectAttrValue("failed", "false") == "true" {
				return "Failed"
			}
			return r.SelectAttrValue("role", "")
		}
	}
	return ""
}

// failCount is the resource's fail count on any node.
func failCount(t *testing.T, id string) int {
	n := 0
	for _, h := range crmMon(t).FindElements("//node_history//resource_history") {
		if h.SelectAttrValue("id", "") == id {
			c, _ := strconv.Atoi(h.SelectAttrValue("fail-count", "0"))
			n += c
		}
	}
	return n
}

// countActions counts the actions a resource's trace file records.
func countActions(t *testing.T, trace string) map[string]int {
	data, _ := os.ReadFile(trace)
	counts := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "msg=done") {
			for _, f := range strings.Fields(line) {
				if a, ok := strings.CutPrefix(f, "action="); ok {
					counts[a]++
				}
			}
		}
	}
	return counts
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("gave up after %v waiting for %s; last state: %s", limit, what, last)
}

func TestClusterCLI(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	var c cluster.CLI
	node, err := c.LocalNode(ctx, ocf.Env{})
	if err != nil || node == "" {
		t.Fatalf("LocalNode = %q, %v", node, err)
	}
	rsc := uniqueID(t, "hafw-score") + ":0"
	t.Cleanup(func() { _ = c.DeletePromotionScore(ctx, rsc, "") })
	if _, err := c.PromotionScore(ctx, rsc, ""); !errors.Is(err, cluster.ErrNoValue) {
		t.Errorf("score before setting: %v, want ErrNoValue", err)
	}
	if err := c.SetPromotionScore(ctx, rsc, "", 42); err != nil {
		t.Fatal(err)
	}
	if got, err := c.PromotionScore(ctx, rsc, node); err != nil || got != 42 {
		t.Errorf("score = %d, %v; want 42", got, err)
	}
	if err := c.DeletePromotionScore(ctx, rsc, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.DeletePromotionScore(ctx, rsc, ""); err != nil {
		t.Errorf("deleting an absent score: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	if _, err := c.LocalNode(short, ocf.Env{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LocalNode after the deadline: %v", err)
	}
}

// TestCrmshScript creates the example through its crmsh cluster script, as
// a crmsh user would.
func TestCrmshScript(t *testing.T) {
	requireCluster(t)
	id := uniqueID(t, "hafw-crm")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "crm", "script", "run", "ha-framework-example", "id="+id, "label=crmsh")
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crm script run: %v\n%s", err, out)
	}
	t.Cleanup(func() { deleteResource(t, id) })
	waitFor(t, 60*time.Second, "started", func() (bool, string) { r := role(t, id); return r == "Started", r })
}

// TestInstalledMetadata: what the installed (version-stamped) binaries
// print, as any user, is exactly the committed meta-data.
func TestInstalledMetadata(t *testing.T) {
	for _, s := range agents.All() {
		cmd := exec.Command("su", "nobody", "-s", "/bin/sh", "-c", filepath.Join(ocfDir, s.Name)+" meta-data")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "OCF_OUTPUT_FORMAT=text"}
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s meta-data as nobody: %v", s.Name, err)
		}
		want, err := os.ReadFile(filepath.Join("..", "metadata", s.Name+".xml"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: installed binary's meta-data differs from metadata/%s.xml; run make metadata", s.Name, s.Name)
		}
	}
}

// TestCrmshScriptsVerify: crmsh accepts every installed cluster script
// with a minimal configuration, and every script in crmsh/ has a case.
func TestCrmshScriptsVerify(t *testing.T) {
	args := map[string][]string{
		"example":                {"id=v1", "label=x"},
		"consul":                 {"id=v2", "mode=server", "bootstrap_expect=3"},
		"directory-registration": {"id=v3", "service_name=web", "service_port=80"},
		"haproxy-dynamic":        {"id=v4", "routes=web=127.0.0.1:8081/http"},
		"docker-service":         {"id=v6", "image=shop/web:1.4"},
		"openresty-gateway":      {"id=v5", "routes=/orders/=orders=127.0.0.1:8081", "tls_cert_file=/etc/gw.pem", "tls_key_file=/etc/gw.key", "jwt_policy_file=/etc/jwt.json"},
		"stack": {"consul:id=v7c", "consul:servers=n1 n2 n3", "service:id=v7s", "service:image=shop/web:1.4",
			"proxy:id=v7l", "proxy:routes=web=127.0.0.1:8081/http", "gateway:id=v7g", "gateway:routes=/web/=web=127.0.0.1:8081",
			"gateway:tls_cert_file=/etc/gw.pem", "gateway:tls_key_file=/etc/gw.key", "gateway:jwt_policy_file=/etc/jwt.json"},
	}
	// What the output must show: the agent of the script's name, or for
	// the whole stack its last resource and the service's constraint.
	shows := map[string][]string{"stack": {"ocf:ha-framework:openresty-gateway", "order v7s-after-consul Mandatory: v7c-clone v7s"}}
	scripts, _ := filepath.Glob(filepath.Join("..", "crmsh", "*", "main.yml"))
	if len(scripts) != len(args) {
		t.Errorf("%d scripts in crmsh/, %d cases here", len(scripts), len(args))
	}
	for _, s := range scripts {
		name := filepath.Base(filepath.Dir(s))
		cmd := exec.Command("crm", append([]string{"script", "verify", "ha-framework-" + name}, args[name]...)...)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		want, ok := shows[name]
		if !ok {
			want = []string{"ocf:ha-framework:" + name}
		}
		if err != nil || strings.Contains(string(out), "ERROR") || !containsAll(string(out), want) {
			t.Errorf("crm script verify ha-framework-%s: %v\n%s", name, err, out)
		}
	}
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
