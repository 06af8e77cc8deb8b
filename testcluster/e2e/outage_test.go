package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ha-framework/ha-framework/testcluster/stackclient"
)

const clientMax = "90" // seconds a client loop runs at most

type sample struct {
	start, end int64 // unix ms
	res        string
}

// logSamples logs, in verbose runs, each request of a client: its start
// and end in ms relative to the fault at unix ms fault, and its result.
func logSamples(t *testing.T, ss []sample, fault int64) {
	t.Helper()
	if !testing.Verbose() {
		return
	}
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "%+7dms %+7dms %s\n", s.start-fault, s.end-fault, s.res)
	}
	t.Logf("client log (start, end; ms relative to the kill):\n%s", b.String())
}

// outage is what one client saw around one fault.
type outage struct {
	fault     int64  // unix ms just before the fault was injected
	before    string // who answered the last request that ended before the fault
	recovered int64  // end of the first success of a request started after the fault, not by avoid; 0: never
	after     string // who answered it
	failed    int
	requests  int
	gap       time.Duration // longest time without an answer, around the fault
	slowest   time.Duration // longest request
	// calm is the longest request that ended before the fault: what the
	// client waits on this machine with nothing failing (set by
	// waitsAfter's callers).
	calm time.Duration
}

func (o outage) sinceFault() time.Duration {
	return time.Duration(o.recovered-o.fault) * time.Millisecond
}

func (o outage) String() string {
	if o.recovered == 0 {
		return fmt.Sprintf("served by %s before; %d/%d requests failed; NEVER served again within the client's %ss",
			o.before, o.failed, o.requests, clientMax)
	}
	return fmt.Sprintf("served by %s before; %d/%d requests failed; fault → served again %s, by %s; longest time without an answer %s; slowest request %s",
		o.before, o.failed, o.requests, o.sinceFault(), o.after, o.gap, o.slowest)
}

// measure reads a client's samples around the fault at fault (unix ms),
// by stackclient.Measure (the demo's measure too).
func measure(ss []sample, fault int64, avoid string) outage {
	ms := func(v int64) time.Time { return time.UnixMilli(v) }
	var cs []stackclient.Sample
	for _, s := range ss {
		c := stackclient.Sample{Start: ms(s.start), End: ms(s.end), Status: 200, Who: s.res}
		if s.res == "FAIL" {
			c.Status, c.Who = 0, ""
		}
		cs = append(cs, c)
	}
	m := stackclient.Measure(cs, ms(fault), avoid)
	o := outage{fault: fault, before: m.Before, after: m.After, failed: m.Failed, requests: m.Requests, gap: m.Gap, slowest: m.Slowest}
	if !m.Recovered.IsZero() {
		o.recovered = m.Recovered.UnixMilli()
	}
	return o
}

// waitsAfter returns, of the requests in flight at or started after the
// fault (unix ms), the longest, and the longest time between two answers
// (from the fault for the first), failures not being answers; and the
// longest request that ended before the fault.
func waitsAfter(ss []sample, fault int64) (slowest, gap, calm time.Duration) {
	prev := fault
	for _, s := range ss {
		if s.end < fault {
			calm = max(calm, time.Duration(s.end-s.start)*time.Millisecond)
			continue
		}
		slowest = max(slowest, time.Duration(s.end-s.start)*time.Millisecond)
		if s.res == "FAIL" {
			continue
		}
		gap = max(gap, time.Duration(s.end-prev)*time.Millisecond)
		prev = s.end
	}
	return slowest, gap, calm
}

// slowRequest is what slowRequests lists: a request that went to the lost
// instance first costs timeout_connect (aaConnect) before its retry on
// another one; longer ones waited for something else.
const slowRequest = 300 * time.Millisecond

// slowRequests lists the requests in flight at or started after the
// fault that took slowRequest or more, or failed, as "start+duration=result" in ms relative to the fault: where
// in the failover (corosync's membership, fencing, Consul's detection)
// the client waited.
func slowRequests(ss []sample, fault int64) string {
	var out []string
	for _, s := range ss {
		if s.end < fault {
			continue
		}
		if d := time.Duration(s.end-s.start) * time.Millisecond; d >= slowRequest || s.res == "FAIL" {
			out = append(out, fmt.Sprintf("%+d+%d=%s", s.start-fault, s.end-s.start, s.res))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}

func TestMeasure(t *testing.T) {
	const fault = 10_000
	tests := []struct {
		name  string
		ss    []sample
		avoid string
		want  outage
	}{{
		name: "held requests, answered by the new node",
		ss: []sample{
			{9_800, 9_810, "n2"}, {9_920, 9_930, "n2"},
			{10_040, 16_040, "n3"}, // held by the proxy's retries
			{16_150, 16_160, "n3"},
		},
		avoid: "n2",
		want: outage{fault: fault, before: "n2", recovered: 16_040, after: "n3", requests: 4,
			gap: 6_040 * time.Millisecond, slowest: 6_000 * time.Millisecond},
	}, {
		name: "failures, then an answer from the lost node's replacement",
		ss: []sample{
			{9_900, 9_910, "n2"}, {10_020, 11_020, "FAIL"}, {11_120, 12_120, "FAIL"},
			{12_220, 12_230, "n2"}, // started after the fault, but from the avoided node
			{12_340, 12_350, "n1"},
		},
		avoid: "n2",
		want: outage{fault: fault, before: "n2", recovered: 12_350, after: "n1", failed: 2, requests: 5,
			gap: 2_230 * time.Millisecond, slowest: time.Second},
	}, {
		name: "a crash: the same node answers again",
		ss:   []sample{{9_950, 9_960, "n1"}, {10_070, 11_500, "n1"}, {11_600, 11_610, "n1"}},
		want: outage{fault: fault, before: "n1", recovered: 11_500, after: "n1", requests: 3,
			gap: 1_500 * time.Millisecond, slowest: 1_430 * time.Millisecond},
	}, {
		name: "never served again",
		ss:   []sample{{9_950, 9_960, "n1"}, {10_070, 11_070, "FAIL"}},
		want: outage{fault: fault, before: "n1", failed: 1, requests: 2, slowest: time.Second},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := measure(tt.ss, fault, tt.avoid)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(outage{})); diff != "" {
				t.Errorf("measure (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWaitsAfter(t *testing.T) {
	const fault = 10_000
	ss := []sample{
		{8_000, 9_500, "n1"},  // before the fault: neither the slowest nor a wait
		{9_900, 10_250, "n1"}, // in flight at the fault
		{10_150, 10_400, "n2"},
		{10_500, 10_700, "FAIL"},
		{10_800, 11_900, "n3"}, // the first answer 1.5 s after the last
		{12_000, 12_010, "n2"},
	}
	slowest, gap, calm := waitsAfter(ss, fault)
	if slowest != 1_100*time.Millisecond || gap != 1_500*time.Millisecond || calm != 1_500*time.Millisecond {
		t.Errorf("waitsAfter = %s, %s, %s; want 1.1s, 1.5s, 1.5s", slowest, gap, calm)
	}
	if got, want := slowRequests(ss, fault), "-100+350=n1 +500+200=FAIL +800+1100=n3"; got != want {
		t.Errorf("slowRequests:\n got %s\nwant %s", got, want)
	}
	if got := slowRequests(ss[5:], fault); got != "none" {
		t.Errorf("slowRequests of fast requests = %q, want none", got)
	}
}
