package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
)

// config is what the flags select.
type config struct {
	Agent          string
	True           string
	HeartbeatDummy string
	PacemakerDummy string
	Rounds         int
	Warmup         int
	Max            time.Duration
	Seed           uint64
	JSON           bool
}

// Candidate names; the ratios and goals refer to them.
const (
	nameTrue      = "true"
	nameAgent     = "agent"
	nameHeartbeat = "heartbeat-Dummy"
	namePacemaker = "pacemaker-Dummy"
)

// actions are the calls measured: meta-data is what crmd and the shells ask
// for on every probe of a resource type, monitor what Pacemaker runs every
// interval for every resource, hence the call that adds up.
var actions = []string{"meta-data", "monitor"}

// callTimeout bounds one call, as Pacemaker would with the timeout passed in
// OCF_RESKEY_CRM_meta_timeout, so that a hanging agent aborts the run.
const callTimeout = 20 * time.Second

// goals are the targets the numbers are judged against: the Go agent should
// cost little more than the bare fork+exec, and clearly less than a shell
// agent that sources ocf-shellfuncs.
var goals = []struct {
	Num, Den string
	Bound    bound
}{
	{nameAgent, nameTrue, bound{AtMost: true, Limit: 1.3}},
	{nameHeartbeat, nameAgent, bound{Limit: 3}},
	{namePacemaker, nameAgent, bound{Limit: 3}},
}

type candidate struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// floor: a candidate that is not an OCF agent and exits 0 for every
	// action.
	floor bool
}

// expect is the exit code a correct call returns: monitor of a resource
// that was never started is OCF_NOT_RUNNING, everything else succeeds.
func (c candidate) expect(action string) int {
	if action == "monitor" && !c.floor {
		return int(ocf.NotRunning)
	}
	return int(ocf.Success)
}

type skipped struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// result is everything the report shows; it is also the JSON document.
type result struct {
	Rounds       int         `json:"rounds"`
	WantRounds   int         `json:"want_rounds"`
	Warmup       int         `json:"warmup_rounds"`
	StoppedByMax bool        `json:"stopped_by_max"`
	ElapsedSec   float64     `json:"elapsed_s"`
	Seed         uint64      `json:"seed"`
	CPUs         int         `json:"cpus"`
	GoVersion    string      `json:"go_version"`
	Candidates   []candidate `json:"candidates"`
	Skipped      []skipped   `json:"skipped"`
	Stats        []stat      `json:"stats"`
	Ratios       []ratioRow  `json:"ratios"`
	// SelfRSSKiB is ocfbench's own VmRSS after the run: the floor of every
	// ru_maxrss.
	SelfRSSKiB int64 `json:"self_rss_kib"`
	// RSSNote says why PeakRSSKiB is missing, if it is.
	RSSNote string `json:"rss_note,omitempty"`
}

// stat summarises the calls of one candidate and action.
type stat struct {
	Candidate string  `json:"candidate"`
	Action    string  `json:"action"`
	Calls     int     `json:"calls"`
	MedianMs  float64 `json:"median_ms"`
	P90Ms     float64 `json:"p90_ms"`
	// PeakRSSKiB is the largest VmHWM of the agent's own process over
	// rssCalls untimed calls (see peakRSS); null when ptrace is not allowed.
	PeakRSSKiB *int64 `json:"peak_rss_kib"`
	// RuMaxRSSKiB is the largest ru_maxrss over the timed calls. It is
	// floored by ocfbench's own RSS (see rss.go), kept to show exactly that.
	RuMaxRSSKiB int64 `json:"ru_maxrss_kib"`
}

// ratioRow is one ratio of medians and the goal it is held to. Value and
// Met are null when a candidate was skipped.
type ratioRow struct {
	Name   string   `json:"name"`
	Action string   `json:"action"`
	Value  *float64 `json:"value"`
	Goal   string   `json:"goal"`
	Met    *bool    `json:"met"`
}

// job is one candidate and action; a round runs every job once.
type job struct {
	cand     candidate
	action   string
	millis   []float64
	ruMaxRSS int64
	peakRSS  *int64
}

// rssCalls is how many untimed calls per job the peak RSS is the maximum of.
const rssCalls = 3

// bench runs the warm-up and measured rounds and summarises them. Progress
// notes go to notes; a failing or mis-answering call aborts with an error.
func bench(ctx context.Context, cfg config, notes io.Writer) (result, error) {
	cands, skips, err := candidates(cfg)
	if err != nil {
		return result{}, err
	}
	for _, s := range skips {
		fmt.Fprintf(notes, "ocfbench: skipping %s: %s\n", s.Name, s.Reason)
	}
	tmp, err := os.MkdirTemp("", "ocfbench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(tmp)
	env := benchEnv(tmp)

	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, seed))

	var jobs []*job
	for _, c := range cands {
		for _, a := range actions {
			jobs = append(jobs, &job{cand: c, action: a})
		}
	}
	fmt.Fprintf(notes, "ocfbench: %d candidates x %d actions, %d warm-up + %d rounds, at most %s\n",
		len(cands), len(actions), cfg.Warmup, cfg.Rounds, cfg.Max)

	res := result{
		WantRounds: cfg.Rounds, Warmup: cfg.Warmup, Seed: seed,
		CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Candidates: cands, Skipped: skips,
	}
	start := time.Now()
	for round := 0; round < cfg.Warmup+cfg.Rounds; round++ {
		if time.Since(start) >= cfg.Max {
			res.StoppedByMax = true
			break
		}
		rng.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
		for _, j := range jobs {
			d, rss, err := call(ctx, j.cand, j.action, env)
			if err != nil {
				return result{}, err
			}
			if round >= cfg.Warmup {
				j.millis = append(j.millis, float64(d)/float64(time.Millisecond))
				j.ruMaxRSS = max(j.ruMaxRSS, rss)
			}
		}
		if round >= cfg.Warmup {
			res.Rounds++
		}
	}
	res.ElapsedSec = time.Since(start).Seconds()
	if res.Rounds == 0 {
		return result{}, fmt.Errorf("no measured round finished within -max %s; raise -max or lower -warmup", cfg.Max)
	}
	if res.RSSNote, err = measureRSS(ctx, jobs, env); err != nil {
		return result{}, err
	}
	res.SelfRSSKiB = selfRSS()

	// Report in candidate order, not in the last round's shuffled one.
	for _, c := range cands {
		for _, a := range actions {
			for _, j := range jobs {
				if j.cand.Name == c.Name && j.action == a {
					res.Stats = append(res.Stats, stat{
						Candidate: c.Name, Action: a, Calls: len(j.millis),
						MedianMs: median(j.millis), P90Ms: percentile(j.millis, 90),
						PeakRSSKiB: j.peakRSS, RuMaxRSSKiB: j.ruMaxRSS,
					})
				}
			}
		}
	}
	res.Ratios = ratios(res.Stats)
	return res, nil
}

// measureRSS fills each job's peakRSS from rssCalls untimed calls under
// ptrace. Where ptrace is refused (a container's seccomp profile, Yama) it
// returns a note instead, and the peaks stay unknown; a wrong exit code is
// an error, as in the timed calls.
func measureRSS(ctx context.Context, jobs []*job, env []string) (string, error) {
	for _, j := range jobs {
		for range rssCalls {
			if ctx.Err() != nil {
				return "", errors.New("interrupted while measuring peak RSS")
			}
			kib, code, err := peakRSS(j.cand.Path, j.action, env)
			if err != nil {
				for _, j := range jobs {
					j.peakRSS = nil
				}
				return fmt.Sprintf("peak RSS not measured: tracing %s %s: %v", j.cand.Name, j.action, err), nil
			}
			if want := j.cand.expect(j.action); code != want {
				return "", fmt.Errorf("%s %s (%s) under ptrace: exit code %d (%s), want %d (%s)",
					j.cand.Name, j.action, j.cand.Path, code, ocf.Code(code), want, ocf.Code(want))
			}
			if j.peakRSS == nil || kib > *j.peakRSS {
				j.peakRSS = &kib
			}
		}
	}
	return "", nil
}

// candidates resolves the flags' paths. The floor and the agent under test
// are required; a Dummy that is not installed is skipped.
func candidates(cfg config) ([]candidate, []skipped, error) {
	var cands []candidate
	var skips []skipped
	for _, c := range []struct {
		name, path string
		required   bool
	}{
		{nameTrue, cfg.True, true},
		{nameAgent, cfg.Agent, true},
		{nameHeartbeat, cfg.HeartbeatDummy, false},
		{namePacemaker, cfg.PacemakerDummy, false},
	} {
		path, err := executable(c.path)
		switch {
		case err == nil:
			cands = append(cands, candidate{Name: c.name, Path: path, floor: c.name == nameTrue})
		case c.required && c.name == nameAgent:
			return nil, nil, fmt.Errorf("agent: %v (run make build first)", err)
		case c.required:
			return nil, nil, fmt.Errorf("%s: %v", c.name, err)
		default:
			skips = append(skips, skipped{Name: c.name, Path: c.path, Reason: err.Error()})
		}
	}
	return cands, skips, nil
}

// executable returns path made absolute, or why it cannot be executed.
func executable(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("%s is not installed", abs)
	case err != nil:
		return "", err
	case fi.IsDir() || fi.Mode()&0o111 == 0:
		return "", fmt.Errorf("%s is not an executable file", abs)
	}
	return abs, nil
}

// benchEnv is the environment of every call, the same for all candidates:
// what the LRM would pass for a resource "bench", with every file the agents
// touch under tmp so that nothing needs /run or root.
func benchEnv(tmp string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/sbin:/usr/bin:/sbin:/bin"
	}
	return []string{
		"PATH=" + path,
		"LC_ALL=C",
		"OCF_ROOT=/usr/lib/ocf",
		"OCF_RESOURCE_INSTANCE=bench",
		"OCF_RESKEY_label=bench",
		"OCF_RESKEY_state=" + filepath.Join(tmp, "dummy.state"),
		"HA_RSCTMP=" + tmp,
		"OCF_RESKEY_CRM_meta_timeout=" + strconv.FormatInt(callTimeout.Milliseconds(), 10),
		"OCF_RESKEY_CRM_meta_interval=10000",
	}
}

// call runs one invocation and returns its wall-clock time and ru_maxrss
// (KiB). Stdin, stdout and stderr are /dev/null: no pipe and no copying
// goroutine inside the timed span. An exit code other than the expected one
// is an error, since a failing call is often a fast one.
func call(ctx context.Context, c candidate, action string, env []string) (time.Duration, int64, error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, c.Path, action)
	cmd.Env = env
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)

	var exitErr *exec.ExitError
	switch {
	case cctx.Err() != nil && ctx.Err() != nil:
		return 0, 0, fmt.Errorf("interrupted during %s %s", c.Name, action)
	case cctx.Err() != nil:
		return 0, 0, fmt.Errorf("%s %s (%s) did not finish within %s", c.Name, action, c.Path, callTimeout)
	case err != nil && !errors.As(err, &exitErr):
		return 0, 0, fmt.Errorf("%s %s: %w", c.Name, action, err)
	}
	ps := cmd.ProcessState
	if code, want := ps.ExitCode(), c.expect(action); code != want {
		got := ps.String()
		if code >= 0 {
			got = fmt.Sprintf("exit code %d (%s)", code, ocf.Code(code))
		}
		return 0, 0, fmt.Errorf("%s %s (%s): %s, want %d (%s); refusing to measure a failing call%s",
			c.Name, action, c.Path, got, want, ocf.Code(want), diagnose(ctx, c, action, env))
	}
	var rss int64
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		rss = int64(ru.Maxrss)
	}
	return d, rss, nil
}

// diagnose reruns a call that answered wrongly, capturing its stderr for
// the error message (the measured calls discard it).
func diagnose(ctx context.Context, c candidate, action string, env []string) string {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, c.Path, action)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	_ = cmd.Run() // the first run's status is the one reported
	out := strings.TrimSpace(stderr.String())
	if out == "" {
		return ""
	}
	const limit = 2000
	if len(out) > limit {
		out = "..." + out[len(out)-limit:]
	}
	return "; stderr of a rerun:\n" + out
}

// ratios computes each goal's ratio of medians for every action.
func ratios(stats []stat) []ratioRow {
	medians := make(map[[2]string]float64)
	for _, s := range stats {
		medians[[2]string{s.Candidate, s.Action}] = s.MedianMs
	}
	var rows []ratioRow
	for _, g := range goals {
		for _, a := range actions {
			row := ratioRow{Name: g.Num + "/" + g.Den, Action: a, Goal: g.Bound.String()}
			num, okNum := medians[[2]string{g.Num, a}]
			den, okDen := medians[[2]string{g.Den, a}]
			if okNum && okDen {
				if r, ok := ratio(num, den); ok {
					met := g.Bound.met(r)
					row.Value, row.Met = &r, &met
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}
