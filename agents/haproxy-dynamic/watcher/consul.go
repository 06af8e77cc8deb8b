package watcher

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ha-framework/ha-framework/internal/consulapi"
)

// MaxAnswer bounds the size of one health answer the watcher reads from
// Consul. An entry of a passing instance with one check is about 1.5 KiB,
// so this holds tens of thousands of instances, far beyond what a backend
// routes (max_slots); a larger answer is refused as a whole (an error: the
// backend keeps its last instances) rather than exhausting memory.
const MaxAnswer = 64 << 20

// Limits of the query loop, following Consul's rules for blocking queries.
const (
	// A route starts at most queryBurst queries in any queryBurst ×
	// minQueryGap, one per minQueryGap on average. A Consul that answers
	// at once (no index, an index that never moves) would otherwise drive
	// a query, and a runtime API round, in a tight loop. The burst lets
	// changes that follow each other closely (an instance that leaves
	// and comes back, a deploy's steps) through at once: with a plain
	// gap, the second waited for the gap to end.
	queryBurst  = 3
	minQueryGap = 200 * time.Millisecond
	// Errors back off exponentially, with full jitter, so that the
	// watchers of every node do not retry in step.
	minBackoff = 500 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// healthClient runs the health queries of one route over one plain
// HTTP/1.1 connection of its own, so that it controls what it accepts
// (the answer's size, the headers' size, the index header, which may be
// missing or wrong) and what a route costs while its query waits: one
// goroutine, the caller's, and a small read buffer. net/http's transport
// adds two goroutines and 5 KiB of buffers per connection; at a thousand
// routes that was most of the watcher's memory. The answer is not asked
// for compressed: the agent is local, and gzip cost both sides more CPU
// than the bytes it saved.
type healthClient struct {
	addr       string // host:port
	host       string // for the Host header
	token      string
	datacenter string
	timeout    time.Duration // of one query, from dialing to the end of the answer
	// dial connects to addr; tests replace it to play a hostile Consul
	// that no real server can be made into.
	dial func(ctx context.Context, addr string) (net.Conn, error)

	conn net.Conn // nil between connections
	br   *bufio.Reader
	// limit bounds what the next reads of conn may return: the headers'
	// size while they are read.
	limit limitedConn
}

// readBuffer is the size of a route's read buffer: Consul's headers fit,
// and an answer's body is read through it in large reads.
const readBuffer = 1024

// maxHeaders bounds the status line and headers of an answer.
const maxHeaders = 64 << 10

func newHealthClient(address, token, datacenter string, timeout time.Duration) *healthClient {
	addr := address
	if _, rest, ok := strings.Cut(addr, "://"); ok {
		addr = rest
	}
	addr = strings.TrimRight(addr, "/")
	h := &healthClient{addr: addr, host: addr, token: token, datacenter: datacenter, timeout: timeout}
	h.dial = func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: h.timeout}
		return d.DialContext(ctx, "tcp", addr)
	}
	return h
}

// close drops the connection; the next query dials a new one.
func (h *healthClient) close() {
	if h.conn != nil {
		h.conn.Close()
		h.conn, h.br = nil, nil
	}
}

// limitedConn reads from a connection, at most left bytes (no limit when
// left is negative).
type limitedConn struct {
	r    io.Reader
	left int64
}

var errHeadersTooLarge = fmt.Errorf("Consul's answer headers are larger than %d KiB; refused", maxHeaders>>10)

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.left < 0 {
		return l.r.Read(p)
	}
	if l.left == 0 {
		return 0, errHeadersTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// roundTrip sends req and reads the status line and headers of the
// answer, on the route's connection (dialed when there is none). A
// connection kept from an earlier query that turns out closed by Consul
// (it closes idle connections) is replaced once.
func (h *healthClient) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	for try := 0; ; try++ {
		reused := h.conn != nil
		resp, err := h.roundTripOnce(ctx, req)
		if err == nil {
			return resp, nil
		}
		h.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !reused || try > 0 || !closedByPeer(err) {
			return nil, err
		}
	}
}

// closedByPeer reports whether err is what a connection closed by the
// other end gives: no answer at all.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (h *healthClient) roundTripOnce(ctx context.Context, req *http.Request) (*http.Response, error) {
	if h.conn == nil {
		conn, err := h.dial(ctx, h.addr)
		if err != nil {
			return nil, err
		}
		h.conn = conn
		h.limit = limitedConn{r: conn, left: -1}
		h.br = bufio.NewReaderSize(&h.limit, readBuffer)
	}
	// The whole query, its wait included, within the timeout; an ended
	// ctx ends it at once.
	if err := h.conn.SetDeadline(time.Now().Add(h.timeout)); err != nil {
		return nil, err
	}
	conn := h.conn
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	bw := bufio.NewWriterSize(conn, 512)
	werr := req.Write(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	// Consul may answer without reading the query (HTTP 429 when this
	// address holds too many connections) and close: the answer counts,
	// not the failed write.
	h.limit.left = maxHeaders - int64(h.br.Buffered())
	resp, err := http.ReadResponse(h.br, req)
	h.limit.left = -1
	if err != nil {
		if werr != nil {
			return nil, werr
		}
		return nil, err
	}
	return resp, nil
}

// ErrTooManyQueries is wrapped by a query's error when Consul refuses it
// with HTTP 429: this address holds more connections than Consul allows
// one client (limits.http_max_conns_per_client, 200 by default), or
// exceeds a request rate limit. The watcher holds one blocking query, so
// one connection, per route, beside every other client of the agent on
// this node.
var ErrTooManyQueries = errors.New("Consul refuses more queries from this address (HTTP 429): " +
	"raise Consul's limits.http_max_conns_per_client above the number of routes plus the node's other clients")

// errTooLarge is returned for an answer beyond MaxAnswer.
var errTooLarge = fmt.Errorf("Consul's answer is larger than %d MiB; refused", MaxAnswer>>20)

// service runs one blocking query for the passing instances of service,
// and returns the answer's entries as ParseHealth does, and its
// X-Consul-Index (0 when missing or not a number: the caller's index
// rules handle it). The answer is decoded as it arrives, one entry at a
// time: the answer for ten thousand instances is about fifteen
// megabytes, and never held whole.
func (h *healthClient) service(ctx context.Context, service, tag string, index uint64, wait time.Duration) (
	entries []Entry, skipped []string, idx uint64, err error) {
	q := url.Values{}
	q.Set("passing", "1")
	// A stale read from any server keeps routing current while the
	// servers elect a leader; a leaderless cluster would otherwise fail
	// every query.
	q.Set("stale", "")
	if tag != "" {
		q.Set("tag", tag)
	}
	if h.datacenter != "" {
		q.Set("dc", h.datacenter)
	}
	if index > 0 {
		q.Set("index", strconv.FormatUint(index, 10))
		q.Set("wait", strconv.FormatInt(wait.Milliseconds(), 10)+"ms")
	}
	u := "http://" + h.host + "/v1/health/service/" + url.PathEscape(service) + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	if h.token != "" {
		// In a header, never in the URL: URLs end up in error messages.
		req.Header.Set("X-Consul-Token", h.token)
	}
	resp, err := h.roundTrip(ctx, req)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("health query for %s: %w", service, err)
	}
	// The connection carries the next query only after an answer read
	// to its end; any other outcome closes it (draining a refused or
	// hostile answer could take forever).
	keep := false
	defer func() {
		if !keep {
			h.close()
		}
	}()
	body := &io.LimitedReader{R: resp.Body, N: MaxAnswer + 1}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusTooManyRequests:
		return nil, nil, 0, fmt.Errorf("health query for %s: %w", service, ErrTooManyQueries)
	default:
		msg, _ := io.ReadAll(io.LimitReader(body, 4096))
		return nil, nil, 0, fmt.Errorf("health query for %s: HTTP %d: %s", service, resp.StatusCode, firstLine(msg))
	}
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return nil, nil, 0, fmt.Errorf("health query for %s: answer encoded as %q, which was not asked for", service, clip(enc))
	}
	entries, skipped, err = parseHealth(body)
	if body.N <= 0 {
		return nil, nil, 0, fmt.Errorf("health query for %s: %w", service, errTooLarge)
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("health query for %s: %w", service, err)
	}
	if ctx.Err() != nil {
		return nil, nil, 0, fmt.Errorf("health query for %s: %w", service, ctx.Err())
	}
	keep = !resp.Close
	idx, _ = strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	return entries, skipped, idx, nil
}

// queryPacer spaces the starts of one route's queries: at most
// queryBurst in any window of queryBurst × minQueryGap.
type queryPacer struct {
	starts []time.Time // of the last queryBurst queries, oldest first
}

// wait returns how long a query about to start at now must wait first.
func (p *queryPacer) wait(now time.Time) time.Duration {
	if len(p.starts) < queryBurst {
		return 0
	}
	return max(0, p.starts[0].Add(queryBurst*minQueryGap).Sub(now))
}

// started records a query started at t.
func (p *queryPacer) started(t time.Time) {
	if len(p.starts) == queryBurst {
		p.starts = append(p.starts[:0], p.starts[1:]...)
	}
	p.starts = append(p.starts, t)
}

// nextIndex applies Consul's rules for blocking queries to the index of
// an answer: an index that went backwards (a snapshot restore, a new
// cluster) starts over, and an index of 0 (missing, or a Consul bug) is
// never waited on as such, since a query at index 0 returns at once; 1
// blocks until anything changes.
func nextIndex(prev, got uint64) uint64 {
	if got < prev {
		return 0
	}
	if got == 0 {
		return 1
	}
	return got
}

// backoff returns the wait before retry number n (0 for the first) after
// an error: exponential from minBackoff up to maxBackoff, with full
// jitter but never below minBackoff/2.
func backoff(n int) time.Duration {
	d := maxBackoff
	if n < 16 {
		d = min(minBackoff<<n, maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// Entry is one instance in a health answer.
type Entry struct {
	ID   string // the service ID, for log lines
	Addr string // the address as given (service address, else node's)
	Port int
}

// healthEntry is what the watcher reads of an entry of
// /v1/health/service; Node and Service are pointers so that a null is
// seen and skipped.
type healthEntry struct {
	Node *struct {
		Node    string
		Address string
	}
	Service *struct {
		ID      string
		Address string
		Port    int
	}
}

// entry is what the watcher takes of e: the service's address, else its
// node's; ok is false when e lacks its Node or its Service.
func (e *healthEntry) entry() (_ Entry, ok bool) {
	if e.Node == nil || e.Service == nil {
		return Entry{}, false
	}
	addr := e.Service.Address
	if addr == "" {
		addr = e.Node.Address
	}
	return Entry{ID: e.Service.ID, Addr: addr, Port: e.Service.Port}, true
}

// ParseHealth reads a /v1/health/service answer: a JSON array of entries.
// An entry that is not an object with a Node and a Service (null, a wrong
// type, a port that is not a number) is skipped, and described in
// skipped; only an answer that is not a JSON array is an error.
func ParseHealth(data []byte) (entries []Entry, skipped []string, err error) {
	return parseHealth(bytes.NewReader(data))
}

// parseHealth is ParseHealth of an answer as it is read: one entry in
// memory at a time.
func parseHealth(r io.Reader) (entries []Entry, skipped []string, err error) {
	notArray := func(err error) ([]Entry, []string, error) {
		return nil, nil, fmt.Errorf("health answer is not a JSON array: %v", err)
	}
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return notArray(err)
	}
	switch tok {
	case nil:
		// null reads as an empty array, as json.Unmarshal reads it into
		// a slice.
		return nil, nil, atEnd(dec)
	case json.Delim('['):
	default:
		return notArray(fmt.Errorf("starts with %v", tok))
	}
	for i := 0; dec.More(); i++ {
		// Straight into the few fields the watcher reads: the decoder
		// scans the entry once and decodes it once. A value of the wrong
		// type is skipped with the rest of its entry and reported; only
		// broken JSON ends the answer.
		var e healthEntry
		if err := dec.Decode(&e); err != nil {
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) {
				return notArray(err)
			}
			skipped = append(skipped, fmt.Sprintf("entry %d: malformed: %v", i, err))
			continue
		}
		entry, ok := e.entry()
		if !ok {
			skipped = append(skipped, fmt.Sprintf("entry %d: no Node or no Service", i))
			continue
		}
		entries = append(entries, entry)
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return notArray(err)
	}
	if err := atEnd(dec); err != nil {
		return nil, nil, err
	}
	return entries, skipped, nil
}

// atEnd reports an error unless only white space follows the top-level
// value.
func atEnd(dec *json.Decoder) error {
	tok, err := dec.Token()
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		return fmt.Errorf("health answer is not a JSON array: %v", err)
	}
	return fmt.Errorf("health answer is not a JSON array: %v after its end", tok)
}

// Addrs extracts address:port of each entry. HAProxy's runtime API takes
// IP addresses only; an entry without one, or without a valid port, is
// described in skipped. The result is sorted and free of duplicates.
func Addrs(entries []Entry) (out []netip.AddrPort, skipped []string) {
	seen := map[netip.AddrPort]bool{}
	for _, e := range entries {
		ip, err := netip.ParseAddr(e.Addr)
		if err != nil || e.Port <= 0 || e.Port > 65535 || ip.Zone() != "" {
			skipped = append(skipped, fmt.Sprintf("%s (%s:%d): no IP address and port", clip(e.ID), clip(e.Addr), e.Port))
			continue
		}
		a := netip.AddrPortFrom(ip.Unmap(), uint16(e.Port))
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out, skipped
}

// clip shortens a value from Consul for a log line or the status, and
// quotes it when it holds anything but printable ASCII.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r > '~' }) {
		return strconv.QuoteToASCII(s)
	}
	return s
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	return clip(string(line))
}

// Passing asks Consul once, without blocking, for the passing instances
// of each route, as the watcher routes them: through the same bounded
// read and parser, with the instances that no backend may use (see
// Filter) left out. It is the deep monitor's view of what HAProxy should
// serve; a route at max_slots serves only some of them (RouteStatus.LeftOut).
//
// Return values:
//   - (instances by service, nil): every route had an answer; each list
//     is sorted, possibly empty.
//   - (nil, err): the token file cannot be read, or a query failed.
func Passing(ctx context.Context, c *Config) (map[string][]netip.AddrPort, error) {
	token, err := consulapi.ReadToken(c.TokenFile)
	if err != nil {
		return nil, err
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	h := newHealthClient(c.ConsulAddress, token, c.Datacenter, timeout)
	defer h.close()
	filter := NewFilter(c.Routes)
	out := map[string][]netip.AddrPort{}
	for _, r := range c.Routes {
		tag := r.Tag
		if tag == "" {
			tag = c.Tag
		}
		entries, _, _, err := h.service(ctx, r.Service, tag, 0, 0)
		if err != nil {
			return nil, err
		}
		addrs, _ := Addrs(entries)
		out[r.Service], _ = filter.Split(addrs)
	}
	return out, nil
}
