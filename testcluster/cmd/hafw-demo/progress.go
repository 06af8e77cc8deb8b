package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress shows what the demo waits for and for how long: on a terminal
// one line rewritten in place, elsewhere (make's output in a log) a line
// every few seconds.
type progress struct {
	mu    sync.Mutex
	out   io.Writer
	tty   bool
	every time.Duration // between lines when not a terminal
	shown time.Time
	what  string
	open  bool // a rewritable line is on the terminal
}

// Waiting is harness.Options.Waiting.
func (p *progress) Waiting(what string, since time.Duration, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := waitLine(what, since, why, 110)
	switch {
	case p.tty:
		fmt.Fprintf(p.out, "\r\033[K%s", line)
		p.open = true
	case what != p.what || time.Since(p.shown) >= p.every:
		fmt.Fprintln(p.out, line)
		p.shown = time.Now()
	}
	p.what = what
}

// Printf prints a line, ending a rewritable line first.
func (p *progress) Printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		fmt.Fprint(p.out, "\r\033[K")
		p.open = false
	}
	p.what = ""
	fmt.Fprintf(p.out, format+"\n", args...)
}

// waitLine is "  waiting for WHAT ... 12s (WHY)" on one line of at most
// width bytes (WHY cut first; a cut ends in "…").
func waitLine(what string, since time.Duration, why string, width int) string {
	head := fmt.Sprintf("  waiting for %s ... %s", what, seconds(since))
	why = strings.Join(strings.Fields(why), " ")
	// A command that failed: its status says enough, its output (crm_mon's
	// XML while Pacemaker starts) does not fit.
	if i := strings.Index(why, ": exit status "); i >= 0 {
		end := i + len(": exit status ")
		for end < len(why) && why[end] >= '0' && why[end] <= '9' {
			end++
		}
		why = why[:end]
	}
	if why == "" {
		return cut(head, width)
	}
	room := width - len(head) - len(" ()")
	if room < 10 {
		return cut(head, width)
	}
	return head + " (" + cut(why, room) + ")"
}

// seconds is d in whole seconds ("12s"), minutes beyond ("2m05s").
func seconds(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s < 60 {
		return fmt.Sprintf("%ds", s)
	}
	return fmt.Sprintf("%dm%02ds", s/60, s%60)
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	i := n - len(mark)
	for i > 0 && !utf8RuneStart(s[i]) {
		i--
	}
	return s[:max(i, 0)] + mark
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
