// Package routes parses the routes of haproxy-dynamic: which Consul
// service is reachable on which local address, and how HAProxy balances
// it. It does no I/O beyond reading the bytes it is given, so the agent,
// the watcher and the fuzzer share one definition of a valid route.
//
// The parameter syntax is a list separated by commas or white space:
//
//	NAME=[ADDR:]PORT[/OPTION]...
//
// where ADDR is an IPv4 address or a bracketed IPv6 address (default
// 127.0.0.1) and each OPTION is a mode (tcp, the default, or http), a
// balance algorithm (roundrobin, the default, leastconn, static-rr,
// first, source, random) or "check" (HAProxy health-checks the instances
// too, a TCP connect, or "GET /" in http mode). Example:
//
//	web=8081/http,db=127.0.0.1:5433/tcp/leastconn/check
//
// The routes file is JSON, {"routes": [Route...]}, and adds what does not
// fit in one word: an HTTP check path and a per-route Consul tag.
package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Modes and balance algorithms HAProxy accepts here. The algorithms are
// those that need no argument and work with servers changed at run time.
var (
	Modes      = []string{"tcp", "http"}
	Algorithms = []string{"roundrobin", "leastconn", "static-rr", "first", "source", "random"}
)

// Route is one routed service.
type Route struct {
	// Service is the Consul service name; it also names the HAProxy
	// frontend and backend, so it is restricted to what both accept.
	Service string `json:"service"`
	// Listen is the local address HAProxy binds for this service.
	Listen netip.AddrPort `json:"listen"`
	Mode   string         `json:"mode,omitempty"`
	// Balance is the HAProxy balance algorithm.
	Balance string `json:"balance,omitempty"`
	// Check makes HAProxy health-check instances itself, on top of
	// Consul's passing filter: it notices a dead instance faster than
	// Consul's check interval.
	Check bool `json:"check,omitempty"`
	// CheckPath is the HTTP check's path (http mode, implies Check).
	CheckPath string `json:"check_path,omitempty"`
	// Tag keeps only instances with this Consul tag; it overrides the
	// agent's global tag.
	Tag string `json:"tag,omitempty"`
}

const maxNameLen = 63

// Parse reads the routes parameter. Errors name the offending entry and
// say what is expected.
func Parse(s string) ([]Route, error) {
	entries := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if len(entries) == 0 {
		return nil, errors.New("no routes; expected NAME=[ADDR:]PORT[/OPTION]..., e.g. web=127.0.0.1:8081/http")
	}
	rs := make([]Route, 0, len(entries))
	for _, e := range entries {
		r, err := parseEntry(e)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", e, err)
		}
		rs = append(rs, r)
	}
	return rs, Check(rs)
}

func parseEntry(e string) (Route, error) {
	name, rest, ok := strings.Cut(e, "=")
	if !ok {
		return Route{}, errors.New("expected NAME=[ADDR:]PORT[/OPTION]...")
	}
	words := strings.Split(rest, "/")
	listen, err := parseListen(words[0])
	if err != nil {
		return Route{}, err
	}
	r := Route{Service: name, Listen: listen}
	for _, w := range words[1:] {
		switch {
		case slices.Contains(Modes, w):
			if r.Mode != "" {
				return Route{}, fmt.Errorf("mode given twice (%s and %s)", r.Mode, w)
			}
			r.Mode = w
		case slices.Contains(Algorithms, w):
			if r.Balance != "" {
				return Route{}, fmt.Errorf("balance algorithm given twice (%s and %s)", r.Balance, w)
			}
			r.Balance = w
		case w == "check":
			r.Check = true
		default:
			return Route{}, fmt.Errorf("unknown option %q; expected a mode (%s), a balance algorithm (%s) or check",
				w, strings.Join(Modes, ", "), strings.Join(Algorithms, ", "))
		}
	}
	return r, nil
}

// parseListen accepts PORT, IPv4:PORT and [IPv6]:PORT.
func parseListen(s string) (netip.AddrPort, error) {
	if p, err := strconv.ParseUint(s, 10, 16); err == nil {
		if p == 0 {
			return netip.AddrPort{}, errors.New("port 0; expected a port from 1 to 65535")
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(p)), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("listen address %q is not PORT, IPv4:PORT or [IPv6]:PORT", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// file is the routes file's layout.
type file struct {
	Routes []fileRoute `json:"routes"`
}

type fileRoute struct {
	Service   string `json:"service"`
	Listen    string `json:"listen"`
	Mode      string `json:"mode"`
	Balance   string `json:"balance"`
	Check     bool   `json:"check"`
	CheckPath string `json:"check_path"`
	Tag       string `json:"tag"`
}

// ParseFile reads a routes file: {"routes": [{"service": "web", "listen":
// "127.0.0.1:8081", "mode": "http", "balance": "leastconn", "check": true,
// "check_path": "/health", "tag": "v2"}]}. Unknown keys are errors, so a
// misspelt option is never silently ignored.
func ParseFile(data []byte) ([]Route, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a routes file ({\"routes\": [...]}): %v", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	if len(f.Routes) == 0 {
		return nil, errors.New(`no routes; expected {"routes": [{"service": "web", "listen": "127.0.0.1:8081"}]}`)
	}
	rs := make([]Route, 0, len(f.Routes))
	for i, fr := range f.Routes {
		listen, err := parseListen(fr.Listen)
		if err != nil {
			return nil, fmt.Errorf("routes[%d] (%s): %w", i, fr.Service, err)
		}
		r := Route{Service: fr.Service, Listen: listen, Mode: fr.Mode, Balance: fr.Balance,
			Check: fr.Check || fr.CheckPath != "", CheckPath: fr.CheckPath, Tag: fr.Tag}
		if r.Mode != "" && !slices.Contains(Modes, r.Mode) {
			return nil, fmt.Errorf("routes[%d] (%s): mode %q; expected %s", i, fr.Service, r.Mode, strings.Join(Modes, " or "))
		}
		if r.Balance != "" && !slices.Contains(Algorithms, r.Balance) {
			return nil, fmt.Errorf("routes[%d] (%s): unknown balance algorithm %q; expected one of %s", i, fr.Service, r.Balance, strings.Join(Algorithms, ", "))
		}
		rs = append(rs, r)
	}
	return rs, Check(rs)
}

// Check fills defaults and verifies routes together: valid names, no
// service routed twice, no two routes on one port.
func Check(rs []Route) error {
	seen := map[string]bool{}
	for i := range rs {
		r := &rs[i]
		if err := validName(r.Service); err != nil {
			return fmt.Errorf("service name %q: %w", r.Service, err)
		}
		if seen[r.Service] {
			return fmt.Errorf("service %s is routed twice; give each service one route", r.Service)
		}
		seen[r.Service] = true
		if r.Mode == "" {
			r.Mode = "tcp"
		}
		if r.Balance == "" {
			r.Balance = "roundrobin"
		}
		if r.CheckPath != "" {
			if r.Mode != "http" {
				return fmt.Errorf("service %s: check_path needs mode http", r.Service)
			}
			if !strings.HasPrefix(r.CheckPath, "/") || strings.ContainsFunc(r.CheckPath, func(c rune) bool { return c <= ' ' || c > '~' || c == '"' || c == '\\' }) {
				return fmt.Errorf("service %s: check_path %q must start with / and hold no spaces, quotes or control characters", r.Service, r.CheckPath)
			}
		}
		if r.Tag != "" {
			if err := validName(r.Tag); err != nil {
				return fmt.Errorf("service %s: tag %q: %w", r.Service, r.Tag, err)
			}
		}
		for _, o := range rs[:i] {
			if o.Listen.Port() == r.Listen.Port() && overlap(o.Listen.Addr(), r.Listen.Addr()) {
				return fmt.Errorf("services %s and %s both listen on %s; give each route its own port", o.Service, r.Service, r.Listen)
			}
		}
	}
	return nil
}

// overlap reports whether binding both addresses on one port conflicts: the
// same address, or a wildcard of the same family.
func overlap(a, b netip.Addr) bool {
	return a == b || (a.Is4() == b.Is4() && (a.IsUnspecified() || b.IsUnspecified()))
}

// validName accepts what Consul service names and HAProxy proxy names
// both allow without quoting.
func validName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("longer than %d characters", maxNameLen)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return errors.New("only letters, digits, '-', '_' and '.' are allowed")
		}
	}
	return nil
}

// String renders r in the parameter syntax (without check_path and tag,
// which only the file can hold).
func (r Route) String() string {
	s := r.Service + "=" + r.Listen.String() + "/" + r.Mode + "/" + r.Balance
	if r.Check {
		s += "/check"
	}
	return s
}
