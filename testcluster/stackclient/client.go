package stackclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxWho bounds what is kept of an answer.
const maxWho = 256

// Sample is one request a client made.
type Sample struct {
	Start, End time.Time
	Status     int    // HTTP status; 0 when no answer came
	Who        string // a 200 answer's body, trimmed: the web service answers with its node's name
	Err        string // why no answer came
}

// OK reports whether the request was served (200).
func (s Sample) OK() bool { return s.Status == http.StatusOK }

// Call makes one GET of url with token as bearer (none when empty).
func Call(ctx context.Context, c *http.Client, url, token string) Sample {
	s := Sample{Start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		s.Err, s.End = err.Error(), time.Now()
		return s
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		s.Err, s.End = err.Error(), time.Now()
		return s
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxWho))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	s.Status, s.End = resp.StatusCode, time.Now()
	switch {
	case err != nil:
		s.Status, s.Err = 0, "reading the answer: "+err.Error()
	case s.OK():
		s.Who = strings.TrimSpace(string(body))
	}
	return s
}

// Loop calls url one request at a time, pause apart, and sends every
// sample to seen until ctx ends, max requests were made, or done returns
// true for the samples so far. It returns them all.
func Loop(ctx context.Context, c *http.Client, url, token string, pause time.Duration, max int, done func([]Sample) bool, seen func(Sample)) []Sample {
	var ss []Sample
	for len(ss) < max && ctx.Err() == nil {
		s := Call(ctx, c, url, token)
		if ctx.Err() != nil && !s.OK() {
			break // cut short by the caller, not a failure of the stack
		}
		ss = append(ss, s)
		if seen != nil {
			seen(s)
		}
		if done != nil && done(ss) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	return ss
}

// Outage is what one client saw around one fault.
type Outage struct {
	Fault     time.Time     // just before the fault was injected
	Before    string        // who answered the last request that ended before the fault
	Recovered time.Time     // end of the first success started after the fault, not by avoid; zero: never
	After     string        // who answered it
	Served    int           // requests answered 200
	Failed    int           // requests not answered 200
	Requests  int           // all requests
	Gap       time.Duration // longest time without an answer, from the fault to the recovery
	Slowest   time.Duration // longest request
}

// SinceFault is how long after the fault the service was served again.
func (o Outage) SinceFault() time.Duration { return o.Recovered.Sub(o.Fault) }

func (o Outage) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	if o.Recovered.IsZero() {
		return fmt.Sprintf("%d requests: %d served, %d failed; served by %s before, NOT served again", o.Requests, o.Served, o.Failed, o.Before)
	}
	return fmt.Sprintf("%d requests: %d served, %d failed; served by %s before, by %s again %s after the fault; longest wait for an answer %s, slowest request %s",
		o.Requests, o.Served, o.Failed, o.Before, o.After, r(o.SinceFault()), r(o.Gap), r(o.Slowest))
}

// Measure reads a client's samples around a fault injected at fault; a
// success from avoid (the lost node) does not count as the recovery.
func Measure(ss []Sample, fault time.Time, avoid string) Outage {
	o := Outage{Fault: fault, Requests: len(ss)}
	var prev time.Time // end of the previous answer
	for _, s := range ss {
		o.Slowest = max(o.Slowest, s.End.Sub(s.Start))
		if !s.OK() {
			o.Failed++
			continue
		}
		o.Served++
		if s.End.Before(fault) {
			o.Before = s.Who
		}
		if !prev.IsZero() && !s.End.Before(fault) && o.Recovered.IsZero() {
			from := prev
			if from.Before(fault) {
				from = fault
			}
			o.Gap = max(o.Gap, s.End.Sub(from))
		}
		if o.Recovered.IsZero() && !s.Start.Before(fault) && (avoid == "" || s.Who != avoid) {
			o.Recovered, o.After = s.End, s.Who
		}
		prev = s.End
	}
	return o
}
