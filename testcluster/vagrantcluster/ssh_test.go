package vagrantcluster

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSSHConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/ssh-config.txt")
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := parseSSHConfig(string(data))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hosts {
		got = append(got, h.Alias+" "+h.Option("hostname")+" "+h.Option("User")+" "+h.Option("IdentityFile"))
	}
	want := []string{
		"node1 192.168.131.117 vagrant /var/lib/hafw-vagrant/vagrant.d/insecure_private_key",
		"node2 192.168.131.54 vagrant /var/lib/hafw-vagrant/vagrant.d/insecure_private_key",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}

func TestParseSSHConfigErrors(t *testing.T) {
	for name, text := range map[string]string{
		"no HostName": "Host node1\n  User vagrant\n",
		"pattern":     "Host *\n  HostName x\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseSSHConfig(text); err == nil {
				t.Errorf("parseSSHConfig(%q) = nil error", text)
			}
		})
	}
	hosts, err := parseSSHConfig("")
	if err != nil || len(hosts) != 0 {
		t.Errorf("empty: %v, %v", hosts, err)
	}
}

func TestRenderSSHConfig(t *testing.T) {
	got := renderSSHConfig([]sshHost{{Alias: "node1", Options: [][2]string{{"HostName", "10.0.0.5"}, {"User", "vagrant"}}}}, "/state/c/ssh")
	want := `Host node1
  ControlMaster auto
  ControlPath /state/c/ssh/%n
  ControlPersist 300
  ServerAliveInterval 5
  ServerAliveCountMax 6
  ConnectTimeout 10
  BatchMode yes
  HostName 10.0.0.5
  User vagrant

`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	// What ssh reads back: our options and Vagrant's.
	hosts, err := parseSSHConfig(got)
	if err != nil || len(hosts) != 1 || hosts[0].Option("ControlMaster") != "auto" || hosts[0].Option("HostName") != "10.0.0.5" {
		t.Errorf("round trip: %+v, %v", hosts, err)
	}
}

func TestShellQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"crm_mon", "crm_mon"},
		{"--output-as=xml", "--output-as=xml"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$HOME", "'$HOME'"},
		{"node1:d1;node2:d2", "'node1:d1;node2:d2'"},
		{"~", "'~'"},
		{"*", "'*'"},
	} {
		if got := shellQuote(tc.in); got != tc.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestShellQuoteRoundTrip has a real shell split the quoted words again,
// as the node's login shell does with what ssh sends.
func TestShellQuoteRoundTrip(t *testing.T) {
	args := []string{"", "plain", "two words", "it's", `"double"`, "$(id)", "`id`", "a\nnewline", "tab\there",
		"back\\slash", "semi;colon", "pipe|and&", "glob*?[x]", "~user", "!bang", "'", "''", "pcmk_host_map=node1:a;node2:b",
		"#comment", "{a,b}", "\x01ctl", "ünïcødé"}
	var words []string
	for _, a := range args {
		words = append(words, shellQuote(a))
	}
	for _, sh := range []string{"sh", "bash"} {
		if _, err := exec.LookPath(sh); err != nil {
			continue
		}
		out, err := exec.Command(sh, "-c", "set -- "+strings.Join(words, " ")+"\n"+`for a in "$@"; do printf '%s\0' "$a"; done`).Output()
		if err != nil {
			t.Fatalf("%s: %v", sh, err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if diff := cmp.Diff(args, got); diff != "" {
			t.Errorf("%s split the quoted words differently (-want +got):\n%s", sh, diff)
		}
	}
}

func TestRemoteCommand(t *testing.T) {
	got := remoteCommand([]string{"bash", "-c", "echo $1", "x"})
	if want := `sudo -n -- bash -c 'echo $1' x`; got != want {
		t.Errorf("remoteCommand = %s, want %s", got, want)
	}
}
