package ocf

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// logSetup is what decides where an invocation's log records go. It
// follows what Pacemaker's executor and resource-agents' ocf_log do:
// syslog when HA_LOGFACILITY names a facility, HA_LOGFILE and HA_DEBUGLOG
// when set, stderr when nothing else is configured; debug records only
// with HA_debug set to a true value or when tracing.
type logSetup struct {
	tag       string // TYPE(instance), as ocf_log tags records
	stderr    io.Writer
	facility  string
	logFile   string
	debugLog  string
	debug     bool
	traceFile string // "" when tracing is off
}

func newLogSetup(env Env, agent, action string, stderr io.Writer, traceRA bool, traceFile string) logSetup {
	s := logSetup{
		tag:      fmt.Sprintf("%s(%s)", agent, env.Instance()),
		stderr:   stderr,
		facility: env.Get("HA_LOGFACILITY"),
		logFile:  env.Get("HA_LOGFILE"),
		debugLog: env.Get("HA_DEBUGLOG"),
	}
	if d, err := ParseBool(env.Get("HA_debug")); err == nil && d {
		s.debug = true
	}
	if s.facility == "none" || s.facility == "/dev/null" {
		s.facility = ""
	}
	if on, err := ParseBool(env.Get("OCF_TRACE_RA")); (err == nil && on) || traceRA {
		s.traceFile = traceFile
		if s.traceFile == "" {
			s.traceFile = env.Get("OCF_TRACE_FILE")
		}
		if s.traceFile == "" {
			varlib := env.Get("HA_VARLIB")
			if varlib == "" {
				varlib = "/var/lib/heartbeat"
			}
			s.traceFile = filepath.Join(varlib, "trace_ra", agent,
				fmt.Sprintf("%s.%s.%s", safeName(env.Instance()), action, time.Now().Format("2006-01-02.15:04:05")))
		}
	}
	return s
}

// logger builds the invocation's logger. Sinks open lazily, on the first
// record: a monitor that logs nothing opens nothing.
func (s logSetup) logger() (*slog.Logger, func()) {
	var hs []slog.Handler
	var closers []func()
	add := func(w *lazyWriter, level slog.Level, withTime bool) {
		hs = append(hs, newLineHandler(w, level, withTime))
		closers = append(closers, w.close)
	}
	base := slog.LevelInfo
	if s.debug {
		base = slog.LevelDebug
	}
	if s.facility != "" {
		hs = append(hs, &syslogHandler{tag: s.tag, facility: s.facility, level: base, mu: new(sync.Mutex)})
		closers = append(closers, hs[len(hs)-1].(*syslogHandler).close)
	}
	if s.logFile != "" {
		add(fileWriter(s.logFile), base, true)
	}
	if s.debugLog != "" && s.debug {
		add(fileWriter(s.debugLog), slog.LevelDebug, true)
	}
	if len(hs) == 0 {
		add(&lazyWriter{w: s.stderr}, base, false)
	}
	if s.traceFile != "" {
		add(fileWriter(s.traceFile), slog.LevelDebug, true)
	}
	l := slog.New(fanout(hs)).With("rsc", s.tag)
	return l, func() {
		for _, c := range closers {
			c()
		}
	}
}

// lazyWriter opens its file on first write, so that logging that never
// happens costs no system call.
type lazyWriter struct {
	mu   sync.Mutex
	open func() (io.Writer, error)
	w    io.Writer
	err  error
}

func fileWriter(path string) *lazyWriter {
	return &lazyWriter{open: func() (io.Writer, error) {
		if path == "/dev/stderr" {
			return os.Stderr, nil
		}
		_ = os.MkdirAll(filepath.Dir(path), 0o755)
		return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	}}
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil && l.err == nil {
		l.w, l.err = l.open()
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.w.Write(p)
}

func (l *lazyWriter) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f, ok := l.w.(*os.File); ok && f != os.Stderr && f != os.Stdout {
		_ = f.Close()
	}
}

// newLineHandler writes one text line per record. Time is left out where
// the reader (Pacemaker capturing stderr, syslog) adds its own.
func newLineHandler(w io.Writer, level slog.Level, withTime bool) slog.Handler {
	return slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if !withTime && len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
}

// syslogHandler sends records to the local syslog with the priority of
// their level.
type syslogHandler struct {
	tag, facility string
	level         slog.Level
	attrs         []slog.Attr
	groups        []string
	mu            *sync.Mutex
	w             *syslog.Writer
	failed        bool
}

func (h *syslogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	var buf bytes.Buffer
	th := slog.Handler(newLineHandler(&buf, h.level, false))
	if len(h.attrs) > 0 {
		th = th.WithAttrs(h.attrs)
	}
	for _, g := range h.groups {
		th = th.WithGroup(g)
	}
	if err := th.Handle(ctx, r); err != nil {
		return err
	}
	line := strings.TrimSuffix(buf.String(), "\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w == nil && !h.failed {
		w, err := syslog.New(syslogFacility(h.facility)|syslog.LOG_INFO, h.tag)
		if err != nil {
			h.failed = true
			return err
		}
		h.w = w
	}
	if h.w == nil {
		return nil
	}
	switch {
	case r.Level >= slog.LevelError:
		return h.w.Err(line)
	case r.Level >= slog.LevelWarn:
		return h.w.Warning(line)
	case r.Level >= slog.LevelInfo:
		return h.w.Info(line)
	default:
		return h.w.Debug(line)
	}
}

func (h *syslogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *syslogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.groups = append(append([]string(nil), h.groups...), name)
	return &c
}

func (h *syslogHandler) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w != nil {
		_ = h.w.Close()
	}
}

func syslogFacility(name string) syslog.Priority {
	facilities := map[string]syslog.Priority{
		"kern": syslog.LOG_KERN, "user": syslog.LOG_USER, "mail": syslog.LOG_MAIL,
		"daemon": syslog.LOG_DAEMON, "auth": syslog.LOG_AUTH, "syslog": syslog.LOG_SYSLOG,
		"lpr": syslog.LOG_LPR, "news": syslog.LOG_NEWS, "uucp": syslog.LOG_UUCP,
		"cron": syslog.LOG_CRON, "authpriv": syslog.LOG_AUTHPRIV,
		"local0": syslog.LOG_LOCAL0, "local1": syslog.LOG_LOCAL1, "local2": syslog.LOG_LOCAL2,
		"local3": syslog.LOG_LOCAL3, "local4": syslog.LOG_LOCAL4, "local5": syslog.LOG_LOCAL5,
		"local6": syslog.LOG_LOCAL6, "local7": syslog.LOG_LOCAL7,
	}
	if f, ok := facilities[strings.ToLower(name)]; ok {
		return f
	}
	return syslog.LOG_DAEMON
}

// fanout sends each record to every handler that wants its level.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var first error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}

// safeName makes an instance id usable as a file name.
func safeName(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, s)
}
