package dockerservice

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"unicode"
)

// portSpec is one published port: hostIP:hostPort -> containerPort/proto.
// A zero HostPort lets the daemon pick one.
type portSpec struct {
	HostIP        string `json:"host_ip,omitempty"`
	HostPort      int    `json:"host_port,omitempty"`
	ContainerPort int    `json:"container_port"`
	Proto         string `json:"proto"`
}

// parsePublish reads one publish entry, as docker run -p writes it:
// CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER, each optionally with
// /tcp or /udp; an IPv6 address is written in brackets ([::1]:8080:80).
func parsePublish(s string) (portSpec, error) {
	p := portSpec{Proto: "tcp"}
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		p.Proto = s[i+1:]
		s = s[:i]
		if p.Proto != "tcp" && p.Proto != "udp" && p.Proto != "sctp" {
			return portSpec{}, fmt.Errorf("protocol %q is not tcp, udp or sctp", p.Proto)
		}
	}
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:")
		if end < 0 {
			return portSpec{}, fmt.Errorf("%q: an IPv6 address in brackets must be followed by :HOSTPORT:PORT", s)
		}
		ip, err := netip.ParseAddr(s[1:end])
		if err != nil || !ip.Is6() {
			return portSpec{}, fmt.Errorf("%q is not an IPv6 address", s[1:end])
		}
		p.HostIP = ip.String()
		s = s[end+2:]
		parts := strings.Split(s, ":")
		if len(parts) != 2 {
			return portSpec{}, fmt.Errorf("want [IP]:HOSTPORT:PORT")
		}
		return p.ports(parts[0], parts[1])
	}
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 1:
		return p.ports("", parts[0])
	case 2:
		return p.ports(parts[0], parts[1])
	case 3:
		ip, err := netip.ParseAddr(parts[0])
		if err != nil || !ip.Is4() {
			return portSpec{}, fmt.Errorf("%q is not an IPv4 address (write IPv6 in brackets)", parts[0])
		}
		p.HostIP = ip.String()
		return p.ports(parts[1], parts[2])
	}
	return portSpec{}, fmt.Errorf("want PORT, HOSTPORT:PORT or IP:HOSTPORT:PORT")
}

func (p portSpec) ports(host, ctr string) (portSpec, error) {
	var err error
	if p.ContainerPort, err = portNumber(ctr); err != nil {
		return portSpec{}, err
	}
	if host != "" {
		if p.HostPort, err = portNumber(host); err != nil {
			return portSpec{}, err
		}
	}
	return p, nil
}

func portNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 || s != strconv.Itoa(n) {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return n, nil
}

// mountSpec is one mount: a host directory (Source absolute) or a named
// volume, at Target in the container.
type mountSpec struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Bind reports whether the mount is a host path rather than a volume.
func (m mountSpec) Bind() bool { return strings.HasPrefix(m.Source, "/") }

// parseMount reads SOURCE:TARGET[:ro|:rw], SOURCE being an absolute host
// path or a volume name.
func parseMount(s string) (mountSpec, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return mountSpec{}, fmt.Errorf("want SOURCE:TARGET or SOURCE:TARGET:ro")
	}
	m := mountSpec{Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return mountSpec{}, fmt.Errorf("mode %q is not ro or rw", parts[2])
		}
	}
	if !path.IsAbs(m.Target) {
		return mountSpec{}, fmt.Errorf("target %q is not an absolute path", m.Target)
	}
	if m.Source == "" {
		return mountSpec{}, fmt.Errorf("source is empty")
	}
	if !m.Bind() && !validVolumeName(m.Source) {
		return mountSpec{}, fmt.Errorf("source %q is neither an absolute path nor a volume name", m.Source)
	}
	return m, nil
}

func validVolumeName(s string) bool {
	for i, r := range s {
		ok := r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) || i > 0 && strings.ContainsRune("_.-", r)
		if !ok {
			return false
		}
	}
	return s != ""
}

// parseBytes reads a memory size: a number of bytes with an optional
// binary unit (k, m, g, t; an optional trailing b), as docker run -m.
func parseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "b")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 || math.IsNaN(f) || f*float64(mult) > math.MaxInt64/2 {
		return 0, fmt.Errorf("not a size; use bytes or a number with k, m, g or t (512m, 1.5g)")
	}
	n := int64(f * float64(mult))
	if n < 6<<20 {
		// dockerd refuses less with an error that names no parameter.
		return 0, fmt.Errorf("must be at least 6m")
	}
	return n, nil
}

// parseCPUs reads a CPU limit as a decimal number of CPUs ("1.5") and
// returns it in units of 10^-9 CPUs, as the Engine API takes it.
func parseCPUs(s string) (int64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(f >= 0.01) || f > 1024 {
		return 0, fmt.Errorf("not a number of CPUs from 0.01 to 1024")
	}
	return int64(math.Round(f * 1e9)), nil
}

// parseLabel reads KEY=VALUE.
func parseLabel(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("want KEY=VALUE")
	}
	if strings.HasPrefix(k, labelPrefix) {
		return "", "", fmt.Errorf("label %s is the agent's own", k)
	}
	return k, v, nil
}

// parseEnvFile reads an environment file: KEY=VALUE lines, blank lines
// and lines starting with # ignored, values taken literally (no quotes,
// no expansion), as docker run --env-file. Errors name the line number,
// never its content: the file holds secrets.
func parseEnvFile(data []byte) ([]string, error) {
	var env []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		trimmed := strings.TrimLeftFunc(line, unicode.IsSpace)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		k, _, ok := strings.Cut(trimmed, "=")
		if !ok {
			return nil, fmt.Errorf("line %d has no '='; write KEY=VALUE", n)
		}
		if !validEnvName(k) {
			return nil, fmt.Errorf("line %d: the name before '=' is not a valid variable name", n)
		}
		if seen[k] {
			return nil, fmt.Errorf("line %d sets %s a second time", n, k)
		}
		seen[k] = true
		env = append(env, trimmed)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading: %v", err)
	}
	return env, nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// containerName makes a valid container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)
// from a resource id.
func containerName(id string) string {
	b := []byte(id)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '.' || c == '-')
		if !ok {
			b[i] = '_'
			if i == 0 {
				b[i] = 'x'
			}
		}
	}
	if len(b) == 0 {
		return "docker-service"
	}
	return string(b)
}

// validContainerName reports whether dockerd accepts s as a name.
func validContainerName(s string) error {
	if s == "" || containerName(s) != s {
		return fmt.Errorf("must start with a letter or digit and hold only letters, digits, '_', '.' and '-'")
	}
	return nil
}
