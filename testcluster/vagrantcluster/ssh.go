package vagrantcluster

import (
	"bufio"
	"fmt"
	"path/filepath"
	"strings"
)

// sshHost is one Host block of `vagrant ssh-config`: its alias (the
// machine's name) and its options in the order printed.
type sshHost struct {
	Alias   string
	Options [][2]string // keyword, value
}

// Option is the value of keyword (case-insensitive, as ssh reads it), ""
// when absent.
func (h sshHost) Option(keyword string) string {
	for _, o := range h.Options {
		if strings.EqualFold(o[0], keyword) {
			return o[1]
		}
	}
	return ""
}

// parseSSHConfig reads the output of `vagrant ssh-config`: Host lines
// followed by indented "Keyword value" lines. Vagrant prints one block per
// machine; lines before the first Host and comments are ignored.
func parseSSHConfig(text string) ([]sshHost, error) {
	var hosts []sshHost
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keyword, value, _ := strings.Cut(line, " ")
		value = strings.TrimSpace(value)
		if strings.EqualFold(keyword, "Host") {
			if value == "" || strings.ContainsAny(value, " *?") {
				return nil, fmt.Errorf("ssh-config: unexpected Host line %q", line)
			}
			hosts = append(hosts, sshHost{Alias: value})
			continue
		}
		if len(hosts) == 0 {
			continue // vagrant's warnings before the first block
		}
		h := &hosts[len(hosts)-1]
		h.Options = append(h.Options, [2]string{keyword, value})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if h.Option("HostName") == "" {
			return nil, fmt.Errorf("ssh-config: host %s has no HostName", h.Alias)
		}
	}
	return hosts, nil
}

// renderSSHConfig is an ssh_config for ssh -F: Vagrant's blocks, each with
// a shared connection per node (ControlMaster, sockets in controlDir) so
// that a command costs one round trip instead of a key exchange under
// software emulation, and keep-alives that notice a node powered off by
// its peers' fencing within half a minute (PowerOff closes the connection
// itself). Shorter ones drop live connections: a node busy with pcs under
// emulation answered a keep-alive only after more than 6 s.
func renderSSHConfig(hosts []sshHost, controlDir string) string {
	var b strings.Builder
	for _, h := range hosts {
		fmt.Fprintf(&b, "Host %s\n", h.Alias)
		// First value wins in ssh_config: ours come before Vagrant's.
		for _, o := range [][2]string{
			{"ControlMaster", "auto"},
			{"ControlPath", filepath.Join(controlDir, "%n")},
			{"ControlPersist", "300"},
			{"ServerAliveInterval", "5"},
			{"ServerAliveCountMax", "6"},
			{"ConnectTimeout", "10"},
			{"BatchMode", "yes"},
		} {
			fmt.Fprintf(&b, "  %s %s\n", o[0], o[1])
		}
		for _, o := range h.Options {
			fmt.Fprintf(&b, "  %s %s\n", o[0], o[1])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// shellQuote makes s one word of a POSIX shell command line: ssh hands the
// remote user's shell its arguments joined by spaces, so each must carry
// its own quoting. Words of only safe characters stay as they are for
// readable logs.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-+=/.,:@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// remoteCommand is the command line ssh sends for argv, run as root: the
// nodes log in as vagrant, which may sudo without a password.
func remoteCommand(argv []string) string {
	words := make([]string, 0, len(argv)+3)
	words = append(words, "sudo", "-n", "--")
	for _, a := range argv {
		words = append(words, shellQuote(a))
	}
	return strings.Join(words, " ")
}
