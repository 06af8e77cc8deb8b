package ocftest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecretExposures(t *testing.T) {
	const secret = "s3cr3t-7c1d9e2f-only-in-this-test"
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"private": 0o600, "shared": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("token = "+secret+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(dir, "agent.log")
	if err := os.WriteFile(log, []byte("using "+secret), 0o600); err != nil {
		t.Fatal(err)
	}
	// A process with the secret in its argv and one with it in its
	// environment.
	var cmds []*exec.Cmd
	for _, c := range []*exec.Cmd{exec.Command("/bin/sh", "-c", "sleep 30; :", secret), exec.Command("/bin/sleep", "30")} {
		if len(c.Args) == 2 {
			c.Env = []string{"TOKEN=" + secret}
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	time.Sleep(50 * time.Millisecond) // both exec'd

	got := SecretExposures(secret, []Result{{Stderr: "ok"}, {Stderr: "token " + secret}}, []string{log}, []string{dir})
	all := strings.Join(got, "\n")
	for _, want := range []string{"(/bin/sh -c sleep 30; : <secret>): argv", "(/bin/sleep 30): environment", "output of action 1",
		"log " + log, "shared (mode 0644)"} {
		if !strings.Contains(all, want) {
			t.Errorf("SecretExposures found:\n%s\nwant an entry with %q", all, want)
		}
	}
	for _, wrong := range []string{"private", "output of action 0", secret} {
		if strings.Contains(all, wrong) {
			t.Errorf("SecretExposures found:\n%s\nwant nothing with %q", all, wrong)
		}
	}
	if got := SecretExposures("no-such-secret-anywhere-5d2e", nil, []string{log}, []string{dir}); got != nil {
		t.Errorf("SecretExposures of a secret nowhere = %q, want nil", got)
	}
}
