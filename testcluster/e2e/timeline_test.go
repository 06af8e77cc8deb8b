package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// A node-loss failover, step by step, from the survivors' corosync and
// pacemaker logs (both with millisecond time stamps): what the client's
// outage is made of, and which parts are the cluster's and which ours.
//
// Between node-lost and scheduled the DC runs no scheduler while any CIB
// update of its own is in flight: it asks for the CIB again a second later,
// and its own updates for the lost node (transient attributes deleted,
// node_state offline) are always in flight then: they go to every node
// through corosync, about 0.2 s while the new membership settles. Up to
// Pacemaker 3.0.1 (Debian 12 has 2.1.5) the controller sleeps that second
// blocked, so corosync's membership event, queued behind the sleep, makes
// updates of its own and a second re-ask when the DC survives: 2 s. From
// 3.0.2 the wait is a timer, and 1 s. With PCMK_debug on the controller
// (HAFW_PCMK_DEBUG=pacemaker-controld), its "Re-asking for the CIB" lines
// are counted as retries.
type steps struct {
	tokenLost  time.Time // corosync: the token was lost ("A processor failed")
	membership time.Time // corosync: the new membership without the victim
	lost       time.Time // controller: the victim's state is now lost
	dc         time.Time // controller: a new DC took over (only when the DC was lost)
	joined     time.Time // the new DC's join round is over (only when the DC was lost)
	scheduled  time.Time // the DC's scheduler calculated a transition, after lost
	fenceAsked time.Time // controller: fencing of the victim requested
	fenced     time.Time // fencing of the victim confirmed
	started    time.Time // the service's start succeeded on its new node
	registered time.Time // its registration's start succeeded
	retries    int       // the DC's CIB re-asks between lost and scheduled (debug logs only)
}

var (
	logStamp      = regexp.MustCompile(`^([A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d(?:\.\d{1,6})?) `)
	tokenLostRe   = regexp.MustCompile(`A processor failed, forming new configuration`)
	membershipRe  = regexp.MustCompile(`A new membership \(.*\) was formed\. Members left:`)
	electedRe     = regexp.MustCompile(`State transition S_ELECTION -> S_INTEGRATION`)
	joinedRe      = regexp.MustCompile(`State transition S_FINALIZE_JOIN -> S_POLICY_ENGINE`)
	scheduledRe   = regexp.MustCompile(`pacemaker-schedulerd.*Calculated transition \d+`)
	reaskRe       = regexp.MustCompile(`Re-asking for the CIB`)
	fenceAskedFmt = `(?:Requesting fencing \([a-z]+\) (?:of|targeting) (?:node )?%[1]s\b|Client .* wants to fence \([a-z]+\) '?%[1]s'?)`
	fencedFmt     = `(?:Peer %[1]s was terminated \([a-z]+\) by .*: OK|Operation '?[a-z]+'? targeting %[1]s (?:on|by) .*: OK)`
	lostFmt       = `Node %[1]s state is now lost`
	startedFmt    = `Result of start operation for %[1]s on \S+: ok`
	stoppedFmt    = `Result of stop operation for %[1]s on \S+: ok`
	failedFmt     = `Result of monitor operation for %[1]s on \S+: (?:error|not running)`
)

// logTime reads a log line's time stamp ("Dec 03 19:01:46.108", the
// milliseconds optional), in the year of ref and in UTC, as the nodes log.
func logTime(line string, ref time.Time) (time.Time, bool) {
	m := logStamp.FindStringSubmatch(line)
	if m == nil {
		return time.Time{}, false
	}
	layout := "Jan _2 15:04:05"
	if strings.Contains(m[1], ".") {
		layout += ".000000"[:len(m[1])-strings.LastIndexByte(m[1], '.')]
	}
	t, err := time.ParseInLocation(layout, m[1], time.UTC)
	if err != nil {
		return time.Time{}, false
	}
	return t.AddDate(ref.UTC().Year(), 0, 0), true
}

// readSteps finds, in logs (lines of any of the survivors' logs, in any
// order), the first time of each step at or after fault.
func readSteps(logs []string, fault time.Time, victim, service, registration string) steps {
	fenceAsked := regexp.MustCompile(fmt.Sprintf(fenceAskedFmt, regexp.QuoteMeta(victim)))
	fenced := regexp.MustCompile(fmt.Sprintf(fencedFmt, regexp.QuoteMeta(victim)))
	lost := regexp.MustCompile(fmt.Sprintf(lostFmt, regexp.QuoteMeta(victim)))
	started := regexp.MustCompile(fmt.Sprintf(startedFmt, regexp.QuoteMeta(service)))
	registered := regexp.MustCompile(fmt.Sprintf(startedFmt, regexp.QuoteMeta(registration)))
	var s steps
	first := func(at *time.Time, t time.Time) {
		if at.IsZero() || t.Before(*at) {
			*at = t
		}
	}
	// A log's time stamps have milliseconds at best: a line of the
	// fault's own millisecond counts.
	from := fault.Truncate(time.Millisecond)
	// The scheduler, a join round and the DC's re-asks count only once
	// the node is lost (the scheduler runs for other reasons before):
	// collected first, kept after the pass.
	var scheduled, joined, reasks []time.Time
	for _, line := range logs {
		t, ok := logTime(line, fault)
		if !ok || t.Before(from) {
			continue
		}
		switch {
		case tokenLostRe.MatchString(line):
			first(&s.tokenLost, t)
		case membershipRe.MatchString(line):
			first(&s.membership, t)
		case lost.MatchString(line):
			first(&s.lost, t)
		case electedRe.MatchString(line):
			first(&s.dc, t)
		case joinedRe.MatchString(line):
			joined = append(joined, t)
		case scheduledRe.MatchString(line):
			scheduled = append(scheduled, t)
		case reaskRe.MatchString(line):
			reasks = append(reasks, t)
		case fenceAsked.MatchString(line):
			first(&s.fenceAsked, t)
		case fenced.MatchString(line):
			first(&s.fenced, t)
		case started.MatchString(line):
			first(&s.started, t)
		case registered.MatchString(line):
			first(&s.registered, t)
		}
	}
	if s.lost.IsZero() {
		return s
	}
	for _, t := range joined {
		if !s.dc.IsZero() && !t.Before(s.dc) {
			first(&s.joined, t)
		}
	}
	for _, t := range scheduled {
		if !t.Before(s.lost) {
			first(&s.scheduled, t)
		}
	}
	for _, t := range reasks {
		if !t.Before(s.lost) && (s.scheduled.IsZero() || !t.After(s.scheduled)) {
			s.retries++
		}
	}
	return s
}

// breakdown names each step's share of the outage, from the fault to
// served (the client's first answer again); a step the logs did not show
// reads "?".
func (s steps) breakdown(fault, served time.Time) string {
	seq := []step{{"token-lost", s.tokenLost, ""}, {"membership", s.membership, ""}, {"node-lost", s.lost, ""}}
	if !s.dc.IsZero() {
		seq = append(seq, step{"dc-elected", s.dc, ""}, step{"joined", s.joined, ""})
	}
	retries := ""
	if s.retries > 0 {
		retries = fmt.Sprintf("dc-cib-retries %d", s.retries)
	}
	seq = append(seq, step{"scheduled", s.scheduled, retries}, step{"fence-asked", s.fenceAsked, ""},
		step{"fenced", s.fenced, ""}, step{"service-started", s.started, ""}, step{"registered", s.registered, ""})
	if !served.IsZero() {
		seq = append(seq, step{"served", served, ""})
	}
	return formatSteps(fault, seq)
}

// A step of a recovery: when the logs show it (zero: they do not), and a
// note printed after it.
type step struct {
	name string
	at   time.Time
	note string
}

// formatSteps prints each step's time after the one before it ("+120ms",
// "-10ms"),
// after the fault for a step following one the logs did not show
// ("@7750ms"), and "?" for a step they did not show.
func formatSteps(fault time.Time, seq []step) string {
	var b strings.Builder
	prev, prevOK := fault, true
	for _, st := range seq {
		switch {
		case st.at.IsZero():
			fmt.Fprintf(&b, " %s ?", st.name)
			prevOK = false
			continue
		case !prevOK:
			fmt.Fprintf(&b, " %s @%dms", st.name, st.at.Sub(fault).Milliseconds())
		default:
			// Signed: a step may come before the one listed ahead of
			// it (a held request served by the restarted service
			// before its registration's start returned).
			fmt.Fprintf(&b, " %s %+dms", st.name, st.at.Sub(prev).Milliseconds())
		}
		if st.note != "" {
			fmt.Fprintf(&b, " (%s)", st.note)
		}
		prev, prevOK = st.at, true
	}
	return strings.TrimSpace(b.String())
}

// readCrashSteps reads, in logs (lines of every node's logs, in any
// order), the recovery of service after its process was killed, as
// Pacemaker runs it when the registration is grouped after the service:
// each step is the first line of it at or after the step before. The
// service's monitor fails at its next run (up to one monitor interval
// after the fault), the DC schedules a recovery, the registration stops
// (its instance leaves the directory), the service stops and starts
// again, and the registration starts (the instance is back). served, when
// not zero, is added as the last step.
func readCrashSteps(logs []string, fault, served time.Time, service, registration string) string {
	result := func(format, rsc string) *regexp.Regexp {
		return regexp.MustCompile(fmt.Sprintf(format, regexp.QuoteMeta(rsc)))
	}
	order := []struct {
		name string
		re   *regexp.Regexp
	}{
		{"detected", result(failedFmt, service)},
		{"scheduled", scheduledRe},
		{"registration-stopped", result(stoppedFmt, registration)},
		{"service-stopped", result(stoppedFmt, service)},
		{"service-started", result(startedFmt, service)},
		{"registered", result(startedFmt, registration)},
	}
	type stamped struct {
		at   time.Time
		line string
	}
	var lines []stamped
	from := fault.Truncate(time.Millisecond)
	for _, line := range logs {
		if t, ok := logTime(line, fault); ok && !t.Before(from) {
			lines = append(lines, stamped{t, line})
		}
	}
	slices.SortStableFunc(lines, func(a, b stamped) int { return a.at.Compare(b.at) })
	var seq []step
	next := 0
	for _, o := range order {
		st := step{name: o.name}
		for i := next; i < len(lines); i++ {
			if o.re.MatchString(lines[i].line) {
				st.at, next = lines[i].at, i+1
				break
			}
		}
		seq = append(seq, st)
	}
	if !served.IsZero() {
		seq = append(seq, step{"served", served, ""})
	}
	return formatSteps(fault, seq)
}

func TestReadSteps(t *testing.T) {
	fault := time.Date(2026, 12, 3, 19, 30, 0, 0, time.UTC)
	logs := []string{
		// Before the fault: ignored.
		"Dec 03 19:29:59.900 n1 pacemaker-controld  [85] (log_executor_event) 	notice: Result of start operation for web on n2: ok | call=7",
		"Dec 03 19:30:03.012 [35] n1 corosync notice  [TOTEM ] A processor failed, forming new configuration: token timed out (3000ms), waiting 3600ms for consensus.",
		"Dec 03 19:30:06.650 [35] n1 corosync notice  [TOTEM ] A new membership (1.12) was formed. Members left: 2",
		"Dec 03 19:30:06.660 [35] n3 corosync notice  [TOTEM ] A new membership (1.12) was formed. Members left: 2",
		"Dec 03 19:30:06.700 n1 pacemaker-controld  [85] (peer_update_callback) 	notice: Node n2 state is now lost | nodeid=2",
		// Before the node is lost: neither a scheduler run nor a re-ask counts.
		"Dec 03 19:30:05.000 n1 pacemaker-schedulerd[84] (pcmk__log_transition_summary) 	notice: Calculated transition 2, saving inputs in /var/lib/pacemaker/pengine/pe-input-2.bz2",
		"Dec 03 19:30:05.100 n1 pacemaker-controld  [85] (do_pe_invoke_callback) 	debug: Re-asking for the CIB: 1 other peer updates still pending",
		"Dec 03 19:30:06.720 n1 pacemaker-controld  [85] (do_state_transition) 	notice: State transition S_ELECTION -> S_INTEGRATION | input=I_ELECTION_DC",
		"Dec 03 19:30:06.750 n1 pacemaker-controld  [85] (do_pe_invoke_callback) 	debug: Re-asking for the CIB: 2 other peer updates still pending",
		"Dec 03 19:30:06.800 n1 pacemaker-controld  [85] (do_state_transition) 	info: State transition S_FINALIZE_JOIN -> S_POLICY_ENGINE | input=I_FINALIZED",
		"Dec 03 19:30:06.880 n1 pacemaker-schedulerd[84] (pcmk__log_transition_summary) 	warning: Calculated transition 3 (with warnings), saving inputs in /var/lib/pacemaker/pengine/pe-warn-0.bz2",
		// After the scheduler ran: not a re-ask before it.
		"Dec 03 19:30:07.900 n1 pacemaker-controld  [85] (do_pe_invoke_callback) 	debug: Re-asking for the CIB: 1 other peer updates still pending",
		"Dec 03 19:30:06.900 n1 pacemaker-controld  [85] (controld_execute_fence_action) 	notice: Requesting fencing (off) of node n2 | action=3 timeout=60000",
		"Dec 03 19:30:07.800 n3 pacemaker-controld  [61] (handle_fence_notification) 	notice: Peer n2 was terminated (off) by n1 on behalf of pacemaker-controld.85@n1: OK | event=1",
		"Dec 03 19:30:07.750 n1 pacemaker-controld  [85] (handle_fence_notification) 	notice: Peer n2 was terminated (off) by n1 on behalf of pacemaker-controld.85@n1: OK | event=1",
		// Another node's fencing and another resource do not count.
		"Dec 03 19:30:07.000 n1 pacemaker-controld  [85] (controld_execute_fence_action) 	notice: Requesting fencing (off) of node n22 | action=3",
		"Dec 03 19:30:08.000 n3 pacemaker-controld  [61] (log_executor_event) 	notice: Result of start operation for web-other on n3: ok | call=9",
		"Dec 03 19:30:08.100 n3 pacemaker-controld  [61] (log_executor_event) 	notice: Result of start operation for web on n3: ok | call=9",
		"Dec 03 19:30:08.400 n3 pacemaker-controld  [61] (log_executor_event) 	notice: Result of start operation for web-reg on n3: ok | call=10",
		"garbage",
		"",
	}
	s := readSteps(logs, fault, "n2", "web", "web-reg")
	at := func(sec, ms int) time.Time { return time.Date(2026, 12, 3, 19, 30, sec, ms*1e6, time.UTC) }
	want := steps{tokenLost: at(3, 12), membership: at(6, 650), lost: at(6, 700), dc: at(6, 720), joined: at(6, 800),
		scheduled: at(6, 880), fenceAsked: at(6, 900), fenced: at(7, 750), started: at(8, 100), registered: at(8, 400), retries: 1}
	if s != want {
		t.Errorf("readSteps:\n got %+v\nwant %+v", s, want)
	}
	got := s.breakdown(fault, at(8, 600))
	const line = "token-lost +3012ms membership +3638ms node-lost +50ms dc-elected +20ms joined +80ms scheduled +80ms (dc-cib-retries 1) fence-asked +20ms fenced +850ms service-started +350ms registered +300ms served +200ms"
	if got != line {
		t.Errorf("breakdown:\n got %s\nwant %s", got, line)
	}
	// A step missing from the logs: the next one is measured from the fault.
	s.fenceAsked = time.Time{}
	s.dc = time.Time{}
	s.retries = 0
	if got, want := s.breakdown(fault, time.Time{}), "token-lost +3012ms membership +3638ms node-lost +50ms scheduled +180ms fence-asked ? fenced @7750ms service-started +350ms registered +300ms"; got != want {
		t.Errorf("breakdown with a gap:\n got %s\nwant %s", got, want)
	}
}

func TestReadCrashSteps(t *testing.T) {
	fault := time.Date(2026, 12, 3, 19, 30, 0, 0, time.UTC)
	logs := []string{
		// Before the fault: ignored.
		"Dec 03 19:29:59.900 n2 pacemaker-controld  [58] (log_executor_event) 	notice: Result of monitor operation for web on n2: error | call=27",
		// Not the service's failure; a scheduler run before the failure.
		"Dec 03 19:30:00.100 n2 pacemaker-controld  [58] (log_executor_event) 	notice: Result of monitor operation for web-reg on n2: error | call=29",
		"Dec 03 19:30:00.200 n3 pacemaker-schedulerd[58] (pcmk__log_transition_summary) 	notice: Calculated transition 11, saving inputs in /var/lib/pacemaker/pengine/pe-input-11.bz2",
		// From another node's log, out of order.
		"Dec 03 19:30:00.820 n3 pacemaker-schedulerd[58] (pcmk__log_transition_summary) 	notice: Calculated transition 12, saving inputs in /var/lib/pacemaker/pengine/pe-input-12.bz2",
		"Dec 03 19:30:00.788 n2 pacemaker-controld  [58] (log_executor_event) 	notice: Result of monitor operation for web on n2: not running | call=27",
		"Dec 03 19:30:00.830 n3 pacemaker-schedulerd[58] (pcmk__log_transition_summary) 	notice: Calculated transition 13, saving inputs in /var/lib/pacemaker/pengine/pe-input-13.bz2",
		"Dec 03 19:30:00.872 n2 pacemaker-controld  [58] (log_executor_event) 	notice: Result of stop operation for web-reg on n2: ok | call=37",
		"Dec 03 19:30:00.912 n2 pacemaker-controld  [58] (log_executor_event) 	notice: Result of stop operation for web on n2: ok | call=39",
		// A start of the registration before the service's is not the step.
		"Dec 03 19:30:00.950 n2 pacemaker-controld  [58] (log_executor_event) 	notice: Result of start operation for web-reg on n2: ok | call=38",
		"Dec 03 19:30:01.056 n2 pacemaker-controld  [58] (log_executor_event) 	notice: Result of start operation for web on n2: ok | call=40",
		"Dec 03 19:30:01.164 n2 pacemaker-controld  [58] (log_executor_event) 	notice: Result of start operation for web-reg on n2: ok | call=42",
		"garbage",
		"",
	}
	served := time.Date(2026, 12, 3, 19, 30, 1, 290e6, time.UTC)
	got := readCrashSteps(logs, fault, served, "web", "web-reg")
	const want = "detected +788ms scheduled +32ms registration-stopped +52ms service-stopped +40ms service-started +144ms registered +108ms served +126ms"
	if got != want {
		t.Errorf("readCrashSteps:\n got %s\nwant %s", got, want)
	}
	// Served before the registration's start returned: the held
	// request reached the restarted service at its old address.
	if got, want := readCrashSteps(logs, fault, served.Add(-200*time.Millisecond), "web", "web-reg"),
		"detected +788ms scheduled +32ms registration-stopped +52ms service-stopped +40ms service-started +144ms registered +108ms served -74ms"; got != want {
		t.Errorf("readCrashSteps served early:\n got %s\nwant %s", got, want)
	}
	// The service never failed in the logs: every later step is still
	// looked for, and measured from the fault.
	got = readCrashSteps(logs[5:], fault, time.Time{}, "web", "web-reg")
	const gap = "detected ? scheduled @830ms registration-stopped +42ms service-stopped +40ms service-started +144ms registered +108ms"
	if got != gap {
		t.Errorf("readCrashSteps without the failure:\n got %s\nwant %s", got, gap)
	}
}
