//go:build packages

// Package packaging_test checks the built packages as an administrator uses
// them (make test-packages, after make packages): the .deb on a clean node
// container (the e2e node image, a single-node Pacemaker, no agent), the
// .rpm with rpm on this machine in a scratch root.
package packaging_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dockercluster "github.com/ha-framework/ha-framework/testcluster/dockercluster"
	"github.com/ha-framework/ha-framework/testcluster/harness"
)

const ocfDir = "/usr/lib/ocf/resource.d/ha-framework"

// tree is what the packages are built from.
type tree struct {
	root, version string
	agents        []string // agents/*/main.go
	scripts       []string // crmsh/*/main.yml
}

func source(t *testing.T) tree {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	v, err := os.ReadFile(filepath.Join(root, "internal/version/VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	tr := tree{root: root, version: strings.TrimSpace(string(v))}
	mains, _ := filepath.Glob(filepath.Join(root, "agents/*/main.go"))
	for _, m := range mains {
		tr.agents = append(tr.agents, filepath.Base(filepath.Dir(m)))
	}
	ymls, _ := filepath.Glob(filepath.Join(root, "crmsh/*/main.yml"))
	for _, y := range ymls {
		tr.scripts = append(tr.scripts, filepath.Base(filepath.Dir(y)))
	}
	if len(tr.agents) == 0 || len(tr.scripts) == 0 {
		t.Fatalf("no agents or crmsh scripts under %s", root)
	}
	return tr
}

// built is the path of a package make packages left in dist/.
func (tr tree) built(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(tr.root, "dist", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%v: run make packages first", err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, harness.TailLines(string(out), 30))
	}
	return string(out)
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// previous builds the package of an older version whose agents differ from
// the current ones (another commit stamp), to upgrade from.
func previous(t *testing.T, tr tree) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	args := []string{"build", "-trimpath", "-ldflags",
		"-s -w -X github.com/ha-framework/ha-framework/internal/version.Commit=previous", "-o", bin + "/"}
	for _, a := range tr.agents {
		args = append(args, "./agents/"+a)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = tr.root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd = exec.Command(filepath.Join(tr.root, "packaging/build.sh"), "deb")
	cmd.Env = append(os.Environ(), "HAFW_VERSION="+tr.version+"~previous", "HAFW_BIN="+bin, "HAFW_DIST="+filepath.Join(dir, "dist"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, harness.TailLines(stderr.String(), 20))
	}
	lines := strings.Fields(string(out))
	return lines[len(lines)-1]
}

// node is the one container of a single-node cluster.
type node struct {
	t    *testing.T
	b    *dockercluster.Backend
	name string
}

func (n node) exec(cmd ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := n.b.Command(ctx, n.name, cmd...).CombinedOutput()
	return string(out), err
}

func (n node) must(cmd ...string) string {
	n.t.Helper()
	out, err := n.exec(cmd...)
	if err != nil {
		n.t.Fatalf("on %s: %s: %v\n%s", n.name, strings.Join(cmd, " "), err, harness.TailLines(out, 30))
	}
	return out
}

func (n node) waitFor(within time.Duration, what string, cond func() (bool, string)) {
	n.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: not after %s; last seen:\n%s", what, within, harness.TailLines(last, 40))
		}
		time.Sleep(time.Second)
	}
}

// upNode starts a single-node cluster of the e2e node image with no agent
// installed; files are mounted read-only as in harness.Spec.Files.
func upNode(t *testing.T, files map[string]string) node {
	t.Helper()
	t.Setenv("HAFW_NODE_DEB", "") // a clean node: the test installs the package itself
	b := dockercluster.New("")
	name := "hafw-pkg-" + harness.RandomHex(3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	nodes, err := b.Create(ctx, harness.Spec{Name: name, Nodes: 1, Files: files})
	cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := b.Destroy(ctx); err != nil {
			t.Logf("destroy %s: %v", name, err)
		}
	})
	if err != nil {
		t.Fatalf("node container: %v", err)
	}
	n := node{t: t, b: b, name: nodes[0].Name}
	n.waitFor(3*time.Minute, "single-node cluster with a DC", func() (bool, string) {
		out, err := n.exec("crm_mon", "--output-as=xml")
		return err == nil && strings.Contains(out, `<current_dc present="true"`), out
	})
	return n
}

// snapshot lists the node's files outside what the running cluster and the
// package manager themselves write.
func (n node) snapshot() []string {
	out := n.must("sh", "-c", `find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp `+
		`-o -path /var/log -o -path /var/lib/pacemaker -o -path /var/lib/dpkg -o -path /var/cache -o -path /hafw `+
		// crmsh's per-user cache and settings, made by crm on its first run.
		`-o -path /root/.cache -o -path /root/.config \) -prune -o -print | sort`)
	return strings.Split(strings.TrimSpace(out), "\n")
}

// checkInstalled is what an administrator sees of the installed package.
func (n node) checkInstalled(tr tree, version string) {
	n.t.Helper()
	if got := n.must("dpkg-query", "-W", "-f=${Status} ${Version}", "ha-framework"); got != "install ok installed "+version {
		n.t.Errorf("dpkg-query: %q, want version %s installed", got, version)
	}
	listed := strings.Fields(n.must("crm_resource", "--list-agents", "ocf:ha-framework"))
	for _, a := range tr.agents {
		if !slices.Contains(listed, a) {
			n.t.Errorf("crm_resource --list-agents ocf:ha-framework lists %q, not %s", listed, a)
		}
		// Pacemaker asks for meta-data as an unprivileged user too (pcs,
		// crm ra info run by anyone): the installed agent must answer.
		md := n.must("runuser", "-u", "nobody", "--", "crm_resource", "--show-metadata", "ocf:ha-framework:"+a)
		if !strings.Contains(md, `<resource-agent name="`+a+`"`) {
			n.t.Errorf("meta-data of %s as nobody:\n%s", a, harness.TailLines(md, 5))
		}
		n.must("test", "-s", "/usr/share/man/man7/ocf_ha-framework_"+a+".7.gz")
	}
	scripts := n.must("crm", "script", "list")
	for _, s := range tr.scripts {
		if !strings.Contains(scripts, "ha-framework-"+s) {
			n.t.Errorf("crm script list does not show ha-framework-%s:\n%s", s, scripts)
		}
	}
	n.must("test", "-s", "/usr/share/doc/ha-framework/copyright")
	n.must("test", "-s", "/usr/share/doc/ha-framework/changelog.gz")
}

var lastOp = regexp.MustCompile(`<lrm_rsc_op [^>]*id="pkgex_last_0"[^>]*>`)

// lastOpOf is the resource's last non-recurring operation as Pacemaker
// recorded it: a restart shows as another operation or call id.
func (n node) lastOpOf() string {
	out, _ := n.exec("cibadmin", "-Q", "--xpath", "//lrm_resource[@id='pkgex']/lrm_rsc_op[@id='pkgex_last_0']")
	m := lastOp.FindString(out)
	op := regexp.MustCompile(`operation="[^"]*"`).FindString(m)
	call := regexp.MustCompile(`call-id="[^"]*"`).FindString(m)
	if op == "" || call == "" {
		return ""
	}
	return op + " " + call
}

// TestDeb installs the .deb on a clean node, upgrades to it from an older
// version while a resource of the package runs, and purges it.
func TestDeb(t *testing.T) {
	tr := source(t)
	deb := tr.built(t, "ha-framework_"+tr.version+"_amd64.deb")

	// No maintainer script at all: nothing can stop, restart or reload a
	// resource on install, upgrade or removal.
	ctrl := run(t, "sh", "-c", "dpkg-deb --ctrl-tarfile "+deb+" | tar -t")
	var members []string
	for _, m := range strings.Fields(ctrl) {
		if m = strings.TrimPrefix(m, "./"); m != "" {
			members = append(members, m)
		}
	}
	if !slices.Equal(members, []string{"control", "md5sums"}) {
		t.Errorf("control archive holds %q, want only control and md5sums", members)
	}
	if d := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Depends", "Pre-Depends")); d != "" {
		t.Errorf("hard dependencies %q: pacemaker-remote nodes must be able to install the package", d)
	}
	if r := run(t, "dpkg-deb", "-f", deb, "Recommends"); !strings.Contains(r, "pacemaker | pacemaker-remote") {
		t.Errorf("Recommends: %q, want pacemaker | pacemaker-remote", r)
	}

	start := time.Now()
	old := previous(t, tr)
	t.Logf("older package built in %s", time.Since(start).Round(100*time.Millisecond))
	start = time.Now()
	n := upNode(t, map[string]string{old: "/hafw/pkg/old.deb", deb: "/hafw/pkg/new.deb"})
	t.Logf("single-node cluster up in %s", time.Since(start).Round(100*time.Millisecond))
	before := n.snapshot()

	start = time.Now()
	n.must("dpkg", "-i", "/hafw/pkg/old.deb")
	t.Logf("dpkg -i of %s: %s", filepath.Base(old), time.Since(start).Round(10*time.Millisecond))
	n.checkInstalled(tr, tr.version+"~previous")

	n.must("pcs", "resource", "create", "pkgex", "ocf:ha-framework:example", "label=pkg",
		"op", "monitor", "interval=1s", "timeout=20s")
	n.waitFor(time.Minute, "pkgex started", func() (bool, string) {
		out, err := n.exec("crm_resource", "--locate", "--resource", "pkgex")
		return err == nil && strings.Contains(out, "is running on"), out
	})
	started := n.lastOpOf()
	if !strings.Contains(started, `operation="start"`) {
		t.Fatalf("last operation of pkgex: %q, want its start", started)
	}
	inode := n.must("stat", "-c", "%i", ocfDir+"/example")

	// While dpkg replaces the agents, run one without pause: a file written
	// in place would fail to execute ("text file busy", a truncated
	// binary); dpkg renames each new file over the old one.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loop := n.b.Command(ctx, n.name, "sh", "-c", `n=0; f=0; end=$(($(date +%s) + 40))
while [ ! -e /tmp/stop-loop ] && [ "$(date +%s)" -lt "$end" ] && [ "$n" -lt 100000 ]; do
	`+ocfDir+`/example meta-data >/dev/null 2>&1 || f=$((f + 1)); n=$((n + 1))
done; echo "$n $f"`)
	var loopOut bytes.Buffer
	loop.Stdout = &loopOut
	if err := loop.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	start = time.Now()
	upgrade := n.must("dpkg", "-i", "/hafw/pkg/new.deb")
	t.Logf("upgrade (dpkg -i) while pkgex runs: %s", time.Since(start).Round(10*time.Millisecond))
	time.Sleep(2 * time.Second)
	n.must("touch", "/tmp/stop-loop")
	if err := loop.Wait(); err != nil {
		t.Fatalf("exec loop: %v", err)
	}
	var runs, fails int
	if _, err := fmt.Sscan(loopOut.String(), &runs, &fails); err != nil || runs == 0 || fails != 0 {
		t.Errorf("example meta-data during the upgrade: %q (runs failures), want no failure", loopOut.String())
	} else {
		t.Logf("example meta-data ran %d times during the upgrade, none failed", runs)
	}
	if strings.Contains(upgrade, "restart") || strings.Contains(upgrade, "Stopping") {
		t.Errorf("dpkg -i output mentions a restart:\n%s", upgrade)
	}
	if got := n.must("stat", "-c", "%i", ocfDir+"/example"); got == inode {
		t.Errorf("inode of the agent unchanged (%s): the file was overwritten in place", strings.TrimSpace(got))
	}
	x := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, x)
	for _, a := range tr.agents {
		want := fileSum(t, filepath.Join(x, ocfDir, a))
		if got := strings.Fields(n.must("sha256sum", ocfDir+"/"+a))[0]; got != want {
			t.Errorf("%s after the upgrade: sha256 %s, want the new package's %s", a, got, want)
		}
	}
	// Several monitors (1s) run with the new binary; none may fail and no
	// stop or start may have happened.
	time.Sleep(5 * time.Second)
	if got := n.lastOpOf(); got != started {
		t.Errorf("pkgex's last operation went from %q to %q: the upgrade restarted it", started, got)
	}
	if out := n.must("crm_mon", "--output-as=xml"); strings.Contains(out, "<failure ") {
		t.Errorf("failed operations after the upgrade:\n%s", out)
	}
	n.checkInstalled(tr, tr.version)

	n.must("pcs", "resource", "delete", "pkgex")
	n.waitFor(time.Minute, "pkgex removed", func() (bool, string) {
		out, err := n.exec("crm_mon", "--output-as=xml")
		return err == nil && !strings.Contains(out, `id="pkgex"`), out
	})
	n.must("dpkg", "--purge", "ha-framework")
	after := n.snapshot()
	for _, p := range after {
		if !slices.Contains(before, p) {
			t.Errorf("left after purge: %s", p)
		}
	}
	for _, p := range before {
		if !slices.Contains(after, p) {
			t.Errorf("removed by install and purge: %s", p)
		}
	}
}

// TestRPM checks the .rpm with this machine's rpm: paths, digests, weak
// dependencies, and an install, verify and erase in a scratch root.
func TestRPM(t *testing.T) {
	tr := source(t)
	pkg := tr.built(t, "ha-framework-"+tr.version+"-1.x86_64.rpm")
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Fatal("rpm not installed (testcluster/scripts/install-deps.sh installs it)")
	}

	paths := strings.Fields(run(t, "rpm", "-qlp", pkg))
	var want []string
	for _, a := range tr.agents {
		want = append(want, ocfDir+"/"+a, "/usr/share/man/man7/ocf_ha-framework_"+a+".7.gz")
	}
	for _, s := range tr.scripts {
		want = append(want, "/usr/share/crmsh/scripts/ha-framework-"+s+"/main.yml")
	}
	for _, w := range want {
		if !slices.Contains(paths, w) {
			t.Errorf("rpm -qlp lacks %s", w)
		}
	}
	for _, p := range paths {
		if strings.Contains(p, "lib64") {
			t.Errorf("%s: OCF agents live in /usr/lib on every distribution", p)
		}
	}
	if out := run(t, "rpm", "-K", pkg); !strings.Contains(out, "digests OK") || strings.Contains(out, "NOT OK") {
		t.Errorf("rpm -K: %s", out)
	}
	if out := run(t, "rpm", "-qp", "--requires", pkg); strings.Contains(out, "pacemaker") {
		t.Errorf("hard requirement on pacemaker:\n%s", out)
	}
	if out := run(t, "rpm", "-qp", "--recommends", pkg); !strings.Contains(out, "(pacemaker or pacemaker-remote)") {
		t.Errorf("rpm --recommends: %q, want (pacemaker or pacemaker-remote)", out)
	}

	// A scratch root has an empty rpm database: the package installs without
	// --nodeps, since it requires nothing but rpm's own features.
	root := t.TempDir()
	run(t, "rpm", "--root", root, "--initdb")
	run(t, "rpm", "--root", root, "-i", pkg)
	run(t, "rpm", "--root", root, "-V", "ha-framework")
	for _, w := range want {
		if _, err := os.Stat(filepath.Join(root, w)); err != nil {
			t.Errorf("after rpm -i: %v", err)
		}
	}
	// Static agents run from anywhere: the installed one answers.
	if md := run(t, filepath.Join(root, ocfDir, "example"), "meta-data"); !strings.Contains(md, `<resource-agent name="example"`) {
		t.Errorf("installed example's meta-data:\n%s", harness.TailLines(md, 5))
	}
	run(t, "rpm", "--root", root, "-e", "ha-framework")
	// What is left are the folders a distribution's filesystem package owns
	// (a scratch root has none, so rpm made them for the package's files).
	system := []string{"/usr", "/usr/lib", "/usr/share", "/usr/share/doc", "/usr/share/licenses",
		"/usr/share/man", "/usr/share/man/man7"}
	for _, p := range strings.Fields(run(t, "find", filepath.Join(root, "usr"))) {
		if p = strings.TrimPrefix(p, root); !slices.Contains(system, p) {
			t.Errorf("left after rpm -e: %s", p)
		}
	}
}
