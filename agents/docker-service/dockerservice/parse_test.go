package dockerservice

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/ha-framework/ha-framework/ocf/process"
)

func TestParsePublish(t *testing.T) {
	tests := []struct {
		in   string
		want portSpec
		err  string
	}{
		{"80", portSpec{ContainerPort: 80, Proto: "tcp"}, ""},
		{"8080:80", portSpec{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, ""},
		{"127.0.0.1:8080:80/udp", portSpec{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Proto: "udp"}, ""},
		{"[::1]:8080:80", portSpec{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, ""},
		{"80/icmp", portSpec{}, `protocol "icmp"`},
		{"0:80", portSpec{}, `port "0" is not a number`},
		{"08080:80", portSpec{}, `port "08080"`},
		{"a:b:c:d", portSpec{}, "want PORT"},
		{"::1:80:80", portSpec{}, "want PORT"},
		{"[127.0.0.1]:80:80", portSpec{}, "is not an IPv6 address"},
		{"[::1]80:80", portSpec{}, "must be followed by"},
		{"", portSpec{}, `port ""`},
	}
	for _, tt := range tests {
		got, err := parsePublish(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parsePublish(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parsePublish(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseMount(t *testing.T) {
	tests := []struct {
		in   string
		want mountSpec
		err  string
	}{
		{"/srv:/data", mountSpec{Source: "/srv", Target: "/data"}, ""},
		{"/srv:/data:ro", mountSpec{Source: "/srv", Target: "/data", ReadOnly: true}, ""},
		{"cache:/cache:rw", mountSpec{Source: "cache", Target: "/cache"}, ""},
		{"/srv", mountSpec{}, "want SOURCE:TARGET"},
		{":/data", mountSpec{}, "source is empty"},
		{"../etc:/data", mountSpec{}, "neither an absolute path nor a volume name"},
		{"/srv:/data:z", mountSpec{}, `mode "z"`},
	}
	for _, tt := range tests {
		got, err := parseMount(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseMount(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseMount(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseBytesAndCPUs(t *testing.T) {
	for in, want := range map[string]int64{"512m": 512 << 20, "1g": 1 << 30, "1.5G": 3 << 29, "10485760": 10 << 20, "8mb": 8 << 20} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1g", "NaN", "1e30t", "5m"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
	if got, err := parseCPUs("0.5"); err != nil || got != 500_000_000 {
		t.Errorf("parseCPUs(0.5) = %d, %v", got, err)
	}
	for _, in := range []string{"0", "NaN", "-1", "2000", "x"} {
		if _, err := parseCPUs(in); err == nil {
			t.Errorf("parseCPUs(%q) accepted", in)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	got, err := parseEnvFile([]byte("# comment\n\nA=1\r\n  B=two words = \"quoted\"\nEMPTY=\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"A=1", `B=two words = "quoted"`, "EMPTY="}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for in, want := range map[string]string{
		"A=1\nB\n":           "line 2 has no '='",
		"1A=x\n":             "line 1: the name before '=' is not a valid variable name",
		"A=1\nA=2\n":         "line 2 sets A a second time",
		"A B=secret-value\n": "line 1: the name",
	} {
		_, err := parseEnvFile([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseEnvFile(%q) error %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-value") {
			t.Errorf("error %q shows a value", err)
		}
	}
}

func TestLastLine(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"a\nb\n\n  \n", 10, "b"},
		{"fatal: \x1b[31mred\x1b[0m\r\n", 40, "fatal: red"},
		{"", 10, ""},
		{"héllo wörld", 8, "héll..."},
		{strings.Repeat("x", 200), 72, strings.Repeat("x", 69) + "..."},
	}
	for _, tt := range tests {
		if got := lastLine(tt.in, tt.max); got != tt.want {
			t.Errorf("lastLine(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestParseIdentity(t *testing.T) {
	id := process.Identity{PID: 1234, Start: 987654, Boot: "0b1c-2d"}
	if got, err := parseIdentity(id.String()); err != nil || got != id {
		t.Errorf("parseIdentity(%q) = %+v, %v", id.String(), got, err)
	}
	for _, bad := range []string{"", "1234 987654", "1 5 b", "x 5 b", "12 -5 b", "12 5 b extra"} {
		if _, err := parseIdentity(bad); err == nil {
			t.Errorf("parseIdentity(%q) accepted", bad)
		}
	}
}

func FuzzParsePublish(f *testing.F) {
	for _, s := range []string{"80", "8080:80/udp", "127.0.0.1:1:2", "[::1]:1:2/sctp", "[:80", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePublish(s)
		if err != nil {
			return
		}
		if p.ContainerPort < 1 || p.ContainerPort > 65535 || p.HostPort < 0 || p.HostPort > 65535 {
			t.Fatalf("parsePublish(%q) = %+v: port out of range", s, p)
		}
		if p.Proto != "tcp" && p.Proto != "udp" && p.Proto != "sctp" {
			t.Fatalf("parsePublish(%q): protocol %q", s, p.Proto)
		}
		_ = (spec{Ports: []portSpec{p}}).createOptions(identity{Name: "x"}) // must not panic
	})
}

func FuzzParseMount(f *testing.F) {
	for _, s := range []string{"/a:/b", "v:/b:ro", "::", "/a:/b:c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMount(s)
		if err == nil && (m.Source == "" || !strings.HasPrefix(m.Target, "/") || strings.Contains(m.Source, ":")) {
			t.Fatalf("parseMount(%q) = %+v", s, m)
		}
	})
}

func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{"A=1\n", "# x\nB=2\r\n", "A\n", "A=1\nA=2", "=x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := parseEnvFile(data)
		if err != nil {
			if strings.Contains(err.Error(), "=") && strings.Count(err.Error(), "=") > strings.Count("line 1 has no '='; write KEY=VALUE", "=") {
				t.Fatalf("error %q may show the file's content", err)
			}
			return
		}
		for _, kv := range env {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || !validEnvName(k) || strings.ContainsAny(kv, "\n") {
				t.Fatalf("parseEnvFile gave %q", kv)
			}
		}
	})
}

func FuzzLastLine(f *testing.F) {
	f.Add("a\nb\n", 10)
	f.Add("héllo\x00\x1b", 3)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 1 || max > 1000 { // lastLine is called with a positive max; OneLine reads 0 as no limit
			return
		}
		got := lastLine(s, max)
		if len(got) > max || strings.ContainsAny(got, "\n\r\x00") || !utf8.ValidString(got) {
			t.Fatalf("lastLine(%q, %d) = %q", s, max, got)
		}
	})
}
