package watcher

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/routes"
)

var cmpAddr = cmp.Comparer(func(x, y netip.AddrPort) bool { return x == y })

// testdata/health-service.json is a real Consul 1.20 answer: web-1 with a
// service address, web-2 with none (the node's address applies).
func TestParseHealthCaptured(t *testing.T) {
	data, err := os.ReadFile("testdata/health-service.json")
	if err != nil {
		t.Fatal(err)
	}
	entries, skipped, err := ParseHealth(data)
	if err != nil || len(skipped) > 0 {
		t.Fatalf("ParseHealth = %v, skipped %v", err, skipped)
	}
	want := []Entry{{ID: "web-1", Addr: "127.0.0.1", Port: 9001}, {ID: "web-2", Addr: "127.0.0.1", Port: 9002}}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestParseHealth(t *testing.T) {
	good := `{"Node": {"Node": "n1", "Address": "10.0.0.1"}, "Service": {"ID": "web-1", "Port": 80}}`
	tests := []struct {
		name        string
		data        string
		want        []netip.AddrPort
		wantSkipped []string // substrings, one per skipped entry
		wantErr     string
	}{
		{name: "good", data: "[" + good + "]", want: addrs("10.0.0.1:80")},
		{name: "null Node", data: `[{"Node": null, "Service": {"ID": "x", "Port": 80}}, ` + good + `]`,
			want: addrs("10.0.0.1:80"), wantSkipped: []string{"entry 0: no Node or no Service"}},
		{name: "null Service", data: `[` + good + `, {"Node": {"Address": "10.0.0.2"}, "Service": null}]`,
			want: addrs("10.0.0.1:80"), wantSkipped: []string{"entry 1: no Node or no Service"}},
		{name: "null entry", data: `[null, ` + good + `]`, want: addrs("10.0.0.1:80"), wantSkipped: []string{"entry 0: no Node"}},
		{name: "missing keys", data: `[{}]`, wantSkipped: []string{"entry 0: no Node"}},
		{name: "port not a number", data: `[{"Node": {}, "Service": {"ID": "x", "Port": "80"}}, ` + good + `]`,
			want: addrs("10.0.0.1:80"), wantSkipped: []string{"entry 0: malformed"}},
		{name: "port too large for int", data: `[{"Node": {}, "Service": {"Port": 1e30}}]`, wantSkipped: []string{"entry 0: malformed"}},
		{name: "entry not an object", data: `[42, "x"]`, wantSkipped: []string{"entry 0: malformed", "entry 1: malformed"}},
		{name: "port out of range", data: `[{"Node": {"Address": "10.0.0.1"}, "Service": {"ID": "x", "Port": 70000}}]`,
			wantSkipped: []string{"x (10.0.0.1:70000): no IP address and port"}},
		{name: "hostname", data: `[{"Node": {"Address": "db.example"}, "Service": {"ID": "x", "Port": 80}}]`,
			wantSkipped: []string{"x (db.example:80)"}},
		{name: "control characters are quoted", data: `[{"Node": {"Address": "a\u001b[31m"}, "Service": {"ID": "x\n", "Port": 80}}]`,
			wantSkipped: []string{`"x\n" ("a\x1b[31m":80)`}},
		{name: "duplicates collapse, order sorted",
			data: `[{"Node": {"Address": "10.0.0.2"}, "Service": {"Port": 80}}, {"Node": {"Address": "10.0.0.1"}, "Service": {"Port": 80}}, {"Node": {"Address": "10.0.0.9"}, "Service": {"Address": "10.0.0.1", "Port": 80}}]`,
			want: addrs("10.0.0.1:80", "10.0.0.2:80")},
		{name: "IPv4-mapped IPv6 unmapped", data: `[{"Node": {}, "Service": {"Address": "::ffff:10.0.0.1", "Port": 80}}]`, want: addrs("10.0.0.1:80")},
		{name: "not an array", data: `{"Node": {}}`, wantErr: "not a JSON array"},
		{name: "null answer", data: `null`},
		{name: "truncated", data: `[` + good, wantErr: "not a JSON array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, skipped, err := ParseHealth([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, bad := Addrs(entries)
			skipped = append(skipped, bad...)
			if diff := cmp.Diff(tt.want, got, cmpAddr, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("instances (-want +got):\n%s", diff)
			}
			if len(skipped) != len(tt.wantSkipped) {
				t.Fatalf("skipped %q, want %d entries like %q", skipped, len(tt.wantSkipped), tt.wantSkipped)
			}
			for i, s := range tt.wantSkipped {
				if !strings.Contains(skipped[i], s) {
					t.Errorf("skipped[%d] = %q, want it to contain %q", i, skipped[i], s)
				}
			}
		})
	}
}

// Consul's API client decodes null entries as nil pointers; the deep
// monitor hands them to Instances.
func TestInstancesNilEntries(t *testing.T) {
	entries := []*api.ServiceEntry{
		nil,
		{Node: nil, Service: &api.AgentService{ID: "a", Port: 80}},
		{Node: &api.Node{Address: "10.0.0.1"}, Service: nil},
		{Node: &api.Node{Address: "10.0.0.1"}, Service: &api.AgentService{ID: "ok", Port: 80}},
	}
	got, skipped := Instances(entries)
	if diff := cmp.Diff(addrs("10.0.0.1:80"), got, cmpAddr); diff != "" {
		t.Errorf("instances (-want +got):\n%s", diff)
	}
	if len(skipped) != 3 {
		t.Errorf("skipped %q, want the 3 null entries", skipped)
	}
}

func TestNextIndex(t *testing.T) {
	tests := []struct{ prev, got, want uint64 }{
		{0, 5, 5}, {5, 7, 7}, {5, 5, 5},
		{7, 3, 0},  // went backwards: start over
		{0, 0, 1},  // missing or zero: never wait on 0
		{10, 0, 0}, // backwards to zero: start over
	}
	for _, tt := range tests {
		if got := nextIndex(tt.prev, tt.got); got != tt.want {
			t.Errorf("nextIndex(%d, %d) = %d, want %d", tt.prev, tt.got, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n := range 40 {
		hi := maxBackoff
		if n < 10 {
			hi = min(minBackoff<<n, maxBackoff)
		}
		for range 50 {
			if d := backoff(n); d < hi/2 || d > hi || d < minBackoff/2 {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, hi/2, hi)
			}
		}
	}
}

// hostileConsul is a fake Consul HTTP API that answers every health query
// at once, with the index header that index returns for query n ("" for
// none), or with status when it is not 200. A real Consul cannot be made
// to do this.
type hostileConsul struct {
	queries atomic.Int64
	status  int
	body    string
	index   func(n int64) string
}

func (h *hostileConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := h.queries.Add(1)
	if h.index != nil {
		if idx := h.index(n); idx != "" {
			w.Header().Set("X-Consul-Index", idx)
		}
	}
	if h.status != 0 && h.status != 200 {
		http.Error(w, "boom", h.status)
		return
	}
	body := h.body
	if body == "" {
		body = `[{"Node": {"Address": "10.0.0.1"}, "Service": {"ID": "web-1", "Port": 80}}]`
	}
	io.WriteString(w, body)
}

// follow against a Consul that answers at once sends at most one query
// per minQueryGap on average, whatever the index does, and backs off on
// errors.
func TestFollowHostileConsul(t *testing.T) {
	const run = 2 * time.Second
	tests := []struct {
		name string
		h    *hostileConsul
		max  int64
	}{
		{name: "no index header", h: &hostileConsul{}, max: int64(run/minQueryGap) + queryBurst},
		{name: "same index every time", h: &hostileConsul{index: func(int64) string { return "42" }}, max: int64(run/minQueryGap) + queryBurst},
		{name: "index going backwards", h: &hostileConsul{index: func(n int64) string { return strconv.FormatInt(1000-n, 10) }}, max: int64(run/minQueryGap) + queryBurst},
		{name: "index zero", h: &hostileConsul{index: func(int64) string { return "0" }}, max: int64(run/minQueryGap) + queryBurst},
		{name: "not a number", h: &hostileConsul{index: func(int64) string { return "x" }}, max: int64(run/minQueryGap) + queryBurst},
		// Backoff: 0.25-0.5 s, 0.5-1 s, 1-2 s: at most 4 queries in 2 s.
		{name: "server errors", h: &hostileConsul{status: 500}, max: 4},
		{name: "garbage answers", h: &hostileConsul{body: "<html>"}, max: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.h)
			defer srv.Close()
			w := newWatcher(&Config{Wait: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			ctx, cancel := context.WithTimeout(context.Background(), run)
			defer cancel()
			var answers, errs int
			done := make(chan struct{})
			go func() {
				defer close(done)
				w.follow(ctx, newHealthClient(srv.URL, "", "", 5*time.Second), "web", "")
			}()
			for loop := true; loop; {
				select {
				case u := <-w.updates:
					if u.err != nil {
						errs++
					} else {
						answers++
					}
				case <-done:
					loop = false
				}
			}
			n := tt.h.queries.Load()
			t.Logf("%d queries in %v (%d answers, %d errors)", n, run, answers, errs)
			if n > tt.max {
				t.Errorf("%d queries in %v, want at most %d", n, run, tt.max)
			}
			if n < 2 {
				t.Errorf("%d queries in %v: the watcher stopped asking", n, run)
			}
			if tt.h.status == 0 && tt.h.body == "" && answers == 0 {
				t.Errorf("no answer reached the main loop")
			}
		})
	}
}

// An answer beyond MaxAnswer is refused, not read into memory whole.
func TestHealthAnswerTooLarge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(`{"Node": {"Address": "10.0.0.1"}, "Service": {"Port": 80}},` + strings.Repeat(" ", 4000))
		io.WriteString(w, "[")
		for written := 0; written <= MaxAnswer; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		io.WriteString(w, "{}]")
	}))
	defer srv.Close()
	h := newHealthClient(srv.URL, "", "", 30*time.Second)
	_, _, _, err := h.service(context.Background(), "web", "", 0, time.Second)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a refusal of the answer's size", err)
	}
}

// The token travels in a header, and the query carries Consul's
// blocking-query parameters.
func TestHealthQuery(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("X-Consul-Index", "17")
		io.WriteString(w, "[]")
	}))
	defer srv.Close()
	h := newHealthClient(strings.TrimPrefix(srv.URL, "http://"), "s3cret", "dc2", 5*time.Second)
	_, _, idx, err := h.service(context.Background(), "web", "v2", 12, 30*time.Second)
	if err != nil || idx != 17 {
		t.Fatalf("service = %d, %v; want index 17", idx, err)
	}
	q := got.URL.Query()
	for k, v := range map[string]string{"passing": "1", "tag": "v2", "dc": "dc2", "index": "12", "wait": "30000ms"} {
		if q.Get(k) != v {
			t.Errorf("query %s = %q, want %q (%s)", k, q.Get(k), v, got.URL)
		}
	}
	if !q.Has("stale") || got.URL.Path != "/v1/health/service/web" {
		t.Errorf("query %s, want a stale read of /v1/health/service/web", got.URL)
	}
	if got.Header.Get("X-Consul-Token") != "s3cret" || strings.Contains(got.URL.String(), "s3cret") {
		t.Errorf("token: header %q, URL %s; want it in the header only", got.Header.Get("X-Consul-Token"), got.URL)
	}
}

// Passing leaves out what the watcher never routes, and survives null
// entries.
func TestPassing(t *testing.T) {
	srv := httptest.NewServer(&hostileConsul{body: `[null, {"Node": {"Address": "10.0.0.1"}, "Service": {"Port": 80}},
		{"Node": {}, "Service": {"Address": "127.0.0.1", "Port": 8081}}, {"Node": null, "Service": null}]`})
	defer srv.Close()
	c := &Config{ConsulAddress: srv.URL}
	c.Routes = []routes.Route{{Service: "web", Listen: netip.MustParseAddrPort("127.0.0.1:8081")}}
	got, err := Passing(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]netip.AddrPort{"web": addrs("10.0.0.1:80")}, got, cmpAddr); diff != "" {
		t.Errorf("Passing (-want +got):\n%s", diff)
	}
	srv.Close()
	if _, err := Passing(context.Background(), c); err == nil {
		t.Error("Passing with Consul gone = nil error")
	}
}

// BenchmarkParseHealth10000 parses an answer of ten thousand instances,
// each the captured entry of a real Consul, as the watcher reads it
// (streaming) and as a whole-answer decode would.
func BenchmarkParseHealth10000(b *testing.B) {
	data, err := os.ReadFile("testdata/health-service.json")
	if err != nil {
		b.Fatal(err)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(data, &entries); err != nil || len(entries) == 0 {
		b.Fatalf("testdata/health-service.json: %v", err)
	}
	answer := []byte("[")
	for i := range 10_000 {
		if i > 0 {
			answer = append(answer, ',')
		}
		answer = append(answer, entries[0]...)
	}
	answer = append(answer, ']')
	for _, p := range []struct {
		name  string
		parse func([]byte) ([]Entry, []string, error)
	}{{"streaming", ParseHealth}, {"whole", parseHealthWhole}} {
		b.Run(p.name, func(b *testing.B) {
			b.SetBytes(int64(len(answer)))
			b.ReportAllocs()
			for b.Loop() {
				if got, _, err := p.parse(answer); err != nil || len(got) != 10_000 {
					b.Fatalf("%d entries, %v", len(got), err)
				}
			}
		})
	}
}

// The pacer lets a burst of queries start at once (two changes that
// follow each other closely), then holds back a tight loop to one query
// per minQueryGap.
func TestQueryPacer(t *testing.T) {
	var p queryPacer
	t0 := time.Unix(1000, 0)
	// An instance that turns critical and passes again 1 ms later: the
	// second query must not wait.
	if p.started(t0); p.wait(t0.Add(time.Millisecond)) != 0 {
		t.Fatalf("a query right after another waits %v, want 0", p.wait(t0.Add(time.Millisecond)))
	}
	p = queryPacer{}
	for i := range queryBurst {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		if d := p.wait(now); d != 0 {
			t.Fatalf("query %d of a burst waits %v, want 0", i+1, d)
		}
		p.started(now)
	}
	now := t0.Add(queryBurst * time.Millisecond)
	want := t0.Add(queryBurst * minQueryGap).Sub(now)
	if d := p.wait(now); d != want {
		t.Fatalf("query %d right after a burst waits %v, want %v", queryBurst+1, d, want)
	}
	// Then, however long a tight loop runs, no more than queryBurst
	// queries in any queryBurst × minQueryGap.
	starts := slices.Clone(p.starts)
	for range 100 {
		now = now.Add(p.wait(now))
		p.started(now)
		starts = append(starts, now)
	}
	for i := queryBurst; i < len(starts); i++ {
		if span := starts[i].Sub(starts[i-queryBurst]); span < queryBurst*minQueryGap {
			t.Fatalf("queries %d to %d start within %v, want at least %v", i-queryBurst+1, i+1, span, queryBurst*minQueryGap)
		}
	}
}

// An answer whose headers exceed maxHeaders is refused before they are
// read into memory whole, as net/http's transport refused them.
func TestHealthAnswerHeadersTooLarge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 8 {
			w.Header().Set("X-Padding-"+strconv.Itoa(i), strings.Repeat("a", 16<<10))
		}
		io.WriteString(w, "[]")
	}))
	defer srv.Close()
	h := newHealthClient(srv.URL, "", "", 5*time.Second)
	defer h.close()
	_, _, _, err := h.service(context.Background(), "web", "", 0, 0)
	if err == nil || !strings.Contains(err.Error(), "headers are larger") {
		t.Fatalf("err = %v, want a refusal of the headers' size", err)
	}
}

// Answers come over one connection per route: a query reuses the
// connection of the previous one, and a connection that Consul closed
// meanwhile is replaced without an error.
func TestHealthConnectionReused(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Consul-Index", "3")
		io.WriteString(w, `[{"Node": {"Address": "10.0.0.1"}, "Service": {"ID": "web-1", "Port": 80}}]`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	h := newHealthClient(srv.URL, "", "", 5*time.Second)
	defer h.close()
	for i := range 3 {
		if _, _, idx, err := h.service(context.Background(), "web", "", 0, 0); err != nil || idx != 3 {
			t.Fatalf("query %d = index %d, %v", i+1, idx, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 queries took %d connections, want 1", n)
	}
	srv.CloseClientConnections()
	if _, _, _, err := h.service(context.Background(), "web", "", 0, 0); err != nil {
		t.Fatalf("query after Consul closed the connection: %v", err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections after one was closed, want 2", n)
	}
}

// An answer compressed although the query did not ask for it is refused
// with a reason, not handed to the JSON parser.
func TestHealthAnswerEncodingRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "" {
			t.Errorf("query asks for Accept-Encoding %q", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Encoding", "gzip")
		io.WriteString(w, "\x1f\x8b")
	}))
	defer srv.Close()
	h := newHealthClient(srv.URL, "", "", 5*time.Second)
	defer h.close()
	if _, _, _, err := h.service(context.Background(), "web", "", 0, 0); err == nil || !strings.Contains(err.Error(), `encoded as "gzip"`) {
		t.Fatalf("err = %v, want a refusal of the encoding", err)
	}
}
