// Package haproxyapi talks to HAProxy's runtime API (the "stats socket"):
// one connection per command in non-interactive mode, so a command never
// waits behind another and HAProxy ends each answer by closing. Parsers
// are separate from the I/O and tested on captured outputs.
package haproxyapi

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Client sends commands to the socket at Socket.
type Client struct {
	Socket string
	// Timeout bounds a command when ctx has no earlier deadline; 0 means
	// 5 s. The runtime API answers in microseconds unless HAProxy is
	// stuck, and a stuck HAProxy must not hang a monitor.
	Timeout time.Duration
}

// maxAnswer bounds what a command may return: show stat of thousands of
// servers stays far below.
const maxAnswer = 16 << 20

// Do sends one command and returns HAProxy's answer.
func (c Client) Do(ctx context.Context, cmd string) (string, error) {
	conn, done, err := c.send(ctx, cmd)
	if err != nil {
		return "", err
	}
	defer done()
	out, err := io.ReadAll(io.LimitReader(conn, maxAnswer))
	if err != nil {
		return "", fmt.Errorf("runtime API %q: %w", cmd, err)
	}
	return string(out), nil
}

// send connects to the runtime API and sends cmd, under the client's
// timeout; the caller reads the answer from the connection and calls
// done, which closes it.
func (c Client) send(ctx context.Context, cmd string) (conn net.Conn, done func(), err error) {
	if strings.ContainsAny(cmd, "\n;") {
		return nil, nil, fmt.Errorf("runtime API command %q holds a newline or ';'", cmd)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	var d net.Dialer
	conn, err = d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("runtime API socket %s: %w", c.Socket, err)
	}
	done = func() { conn.Close(); cancel() }
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		done()
		return nil, nil, fmt.Errorf("runtime API %q: %w", cmd, err)
	}
	return conn, done, nil
}

// Info returns "show info" as a map (Pid, Version, Uptime_sec, ...).
func (c Client) Info(ctx context.Context) (map[string]string, error) {
	out, err := c.Do(ctx, "show info")
	if err != nil {
		return nil, err
	}
	info := ParseInfo(out)
	if info["Pid"] == "" {
		return nil, fmt.Errorf("runtime API show info: unexpected answer %q", firstLine(out))
	}
	return info, nil
}

// ParseInfo reads "show info" output.
func ParseInfo(out string) map[string]string {
	info := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			info[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return info
}

// Admin state bits of "show servers state" (srv_admin_state), from
// HAProxy's include/haproxy/server-t.h.
const (
	AdminForcedMaint    = 0x01 // set server state maint
	AdminInheritedMaint = 0x02 // tracked server in maintenance
	AdminConfigMaint    = 0x04 // "disabled" in the configuration
	AdminForcedDrain    = 0x08 // set server state drain
	AdminInheritedDrain = 0x10
	AdminResolveMaint   = 0x20 // DNS resolution failed
	AdminHostnameMaint  = 0x40

	maintMask = AdminForcedMaint | AdminInheritedMaint | AdminResolveMaint | AdminHostnameMaint
	drainMask = AdminForcedDrain | AdminInheritedDrain
)

// ServerState is one line of "show servers state".
type ServerState struct {
	Backend string
	Server  string
	Addr    netip.AddrPort
	// OpState is srv_op_state: 0 stopped, 1 starting, 2 running, 3
	// stopping.
	OpState int
	Admin   int
}

// Maint reports whether the server takes no traffic by administration.
func (s ServerState) Maint() bool { return s.Admin&maintMask != 0 }

// Draining reports whether the server is in drain (weight 0: only
// existing and persistent sessions).
func (s ServerState) Draining() bool { return !s.Maint() && s.Admin&drainMask != 0 }

// Serving reports whether new traffic may go to the server.
func (s ServerState) Serving() bool { return !s.Maint() && !s.Draining() }

// ServersState returns the servers of backend ("" for all). The answer
// is parsed as it arrives, a line at a time, never held whole: the
// watcher reads every backend each second, ten thousand servers and 1.5
// MB of text at a thousand routes, and holding and copying the text was
// most of what it allocated.
func (c Client) ServersState(ctx context.Context, backend string) ([]ServerState, error) {
	cmd := "show servers state"
	if backend != "" {
		cmd += " " + backend
	}
	var states []ServerState
	err := c.stream(ctx, cmd, func(r *bufio.Reader) (err error) {
		states, err = readServersState(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return states, nil
}

// readServersState is ParseServersState of an answer as it is read.
func readServersState(r *bufio.Reader) ([]ServerState, error) {
	// As ParseServersState trims the answer: blank lines before the
	// version are skipped.
	var version string
	var err error
	for strings.TrimSpace(version) == "" && err == nil {
		version, err = r.ReadString('\n')
	}
	header, _ := r.ReadString('\n')
	p, perr := newStateParser(version, header, true)
	if perr != nil {
		if err != nil && err != io.EOF {
			return nil, err
		}
		return nil, perr
	}
	var states []ServerState
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			st, ok, perr := p.parse(line)
			if perr != nil {
				return nil, perr
			}
			if ok {
				states = append(states, st)
			}
		}
		if err == io.EOF {
			return states, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// stream sends one command and hands HAProxy's answer, at most maxAnswer
// bytes, to read as it arrives.
func (c Client) stream(ctx context.Context, cmd string, read func(*bufio.Reader) error) error {
	conn, done, err := c.send(ctx, cmd)
	if err != nil {
		return err
	}
	defer done()
	lr := &io.LimitedReader{R: conn, N: maxAnswer + 1}
	if err := read(bufio.NewReaderSize(lr, 32<<10)); err != nil {
		return fmt.Errorf("runtime API %q: %w", cmd, err)
	}
	if lr.N <= 0 {
		return fmt.Errorf("runtime API %q: answer larger than %d MiB", cmd, maxAnswer>>20)
	}
	return nil
}

// ParseServersState reads "show servers state" output, version 1, by
// its header's column names, so added columns do not break it. It walks
// the text once and reuses one slice for the fields of every line.
func ParseServersState(out string) ([]ServerState, error) {
	rest := strings.TrimSpace(out)
	version, rest, _ := strings.Cut(rest, "\n")
	header, rest, _ := strings.Cut(rest, "\n")
	p, err := newStateParser(version, header, false)
	if err != nil {
		return nil, err
	}
	states := make([]ServerState, 0, strings.Count(rest, "\n")+1)
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		st, ok, err := p.parse(line)
		if err != nil {
			return nil, err
		}
		if ok {
			states = append(states, st)
		}
	}
	return states, nil
}

// stateParser reads the server lines of "show servers state" by the
// columns its header names.
type stateParser struct {
	be, srv, addr, port, op, admin int
	ncol                           int
	f                              []string // the fields of the current line
	// names interns backend and server names, which repeat on every
	// line and across backends, when lines are read one by one: nil
	// when the names may point into the whole answer.
	names map[string]string
}

func newStateParser(version, header string, intern bool) (*stateParser, error) {
	header = strings.TrimSpace(header)
	if strings.TrimSpace(version) != "1" || !strings.HasPrefix(header, "# ") {
		return nil, fmt.Errorf("show servers state: unexpected answer %q", firstLine(version))
	}
	names := strings.Fields(strings.TrimPrefix(header, "# "))
	col := map[string]int{}
	for i, name := range names {
		col[name] = i
	}
	for _, name := range []string{"be_name", "srv_name", "srv_addr", "srv_port", "srv_op_state", "srv_admin_state"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("show servers state: no column %s", name)
		}
	}
	p := &stateParser{be: col["be_name"], srv: col["srv_name"], addr: col["srv_addr"], port: col["srv_port"],
		op: col["srv_op_state"], admin: col["srv_admin_state"], f: make([]string, 0, len(names)),
		// Every column the header lists, not every name: a name listed
		// twice would let a line too short for the last columns through.
		ncol: len(names)}
	if intern {
		p.names = map[string]string{}
	}
	return p, nil
}

// parse reads one server line; ok is false for a blank line.
func (p *stateParser) parse(line string) (st ServerState, ok bool, err error) {
	p.f = appendFields(p.f[:0], line)
	f := p.f
	if len(f) == 0 {
		return ServerState{}, false, nil
	}
	line = strings.TrimRight(line, "\n")
	if len(f) < p.ncol {
		return ServerState{}, false, fmt.Errorf("show servers state: short line %q", line)
	}
	addr, err := netip.ParseAddr(f[p.addr])
	if err != nil {
		return ServerState{}, false, fmt.Errorf("show servers state: address in %q: %v", line, err)
	}
	port, err1 := strconv.ParseUint(f[p.port], 10, 16)
	op, err2 := strconv.Atoi(f[p.op])
	admin, err3 := strconv.Atoi(f[p.admin])
	if err := errors.Join(err1, err2, err3); err != nil {
		return ServerState{}, false, fmt.Errorf("show servers state: %q: %v", line, err)
	}
	return ServerState{Backend: p.intern(f[p.be]), Server: p.intern(f[p.srv]),
		Addr: netip.AddrPortFrom(addr, uint16(port)), OpState: op, Admin: admin}, true, nil
}

// intern returns s, or a copy of it shared by every line that names the
// same: s itself points into a line read for this call only.
func (p *stateParser) intern(s string) string {
	if p.names == nil {
		return s
	}
	if n, ok := p.names[s]; ok {
		return n
	}
	n := strings.Clone(s)
	p.names[n] = n
	return n
}

// appendFields appends the fields of line, split as strings.Fields
// splits them, to f.
func appendFields(f []string, line string) []string {
	for i := 0; i < len(line); i++ {
		if line[i] >= utf8.RuneSelf {
			// Unicode white space: rare, and strings.Fields knows it.
			return append(f, strings.Fields(line)...)
		}
	}
	start := -1
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			if start >= 0 {
				f = append(f, line[start:i])
				start = -1
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		f = append(f, line[start:])
	}
	return f
}

// FilterServersState returns out, the text of "show servers state", with
// only the server lines for which keep returns true, for a state file
// that restores some servers and leaves the others as configured. Lines
// that do not parse are dropped.
func FilterServersState(out string, keep func(ServerState) bool) string {
	lines := strings.SplitAfter(out, "\n")
	if len(lines) < 2 {
		return out
	}
	header := lines[0] + lines[1]
	var b strings.Builder
	b.WriteString(header)
	for _, line := range lines[2:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		st, err := ParseServersState(header + line)
		if err != nil || len(st) != 1 || !keep(st[0]) {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// SetAddr points backend/server at addr.
func (c Client) SetAddr(ctx context.Context, backend, server string, addr netip.AddrPort) error {
	cmd := fmt.Sprintf("set server %s/%s addr %s port %d", backend, server, addr.Addr(), addr.Port())
	out, err := c.Do(ctx, cmd)
	if err != nil {
		return err
	}
	// HAProxy answers a change with "IP changed from ..." or "no need to
	// change the addr, port changed from ...", and "no need to change the
	// addr, no need to change the port" when an instance comes back to the
	// slot it had; anything else is a refusal.
	if s := strings.TrimSpace(out); s != "" && !strings.Contains(s, "changed from") && !strings.HasPrefix(s, "no need to change") {
		return fmt.Errorf("runtime API %q: %s", cmd, firstLine(s))
	}
	return nil
}

// SetState sets backend/server to ready, drain or maint.
func (c Client) SetState(ctx context.Context, backend, server, state string) error {
	cmd := fmt.Sprintf("set server %s/%s state %s", backend, server, state)
	out, err := c.Do(ctx, cmd)
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(out); s != "" {
		return fmt.Errorf("runtime API %q: %s", cmd, firstLine(s))
	}
	return nil
}

// Sessions returns the current sessions (scur) per "backend/server" from
// show stat, to tell when a draining server is idle: of backend's servers
// only, or of every server when backend is "".
func (c Client) Sessions(ctx context.Context, backend string) (map[string]int, error) {
	cmd := "show stat"
	if backend != "" {
		// Proxy, type 4 (servers), any server id: a backend's own rows,
		// not the whole table (ten thousand rows at a thousand routes).
		cmd += " " + backend + " 4 -1"
	}
	out, err := c.Do(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return ParseSessions(out)
}

// ParseSessions reads the CSV of show stat.
func ParseSessions(out string) (map[string]int, error) {
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("show stat: %v", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("show stat: empty answer")
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	px, sv, scur := col["pxname"], col["svname"], col["scur"]
	if _, ok := col["scur"]; !ok {
		return nil, errors.New("show stat: no scur column")
	}
	sessions := map[string]int{}
	for _, row := range rows[1:] {
		if len(row) <= max(px, sv, scur) || row[sv] == "FRONTEND" || row[sv] == "BACKEND" {
			continue
		}
		n, _ := strconv.Atoi(row[scur])
		sessions[row[px]+"/"+row[sv]] = n
	}
	return sessions, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
