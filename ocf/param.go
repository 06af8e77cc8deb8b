package ocf

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Param declares one instance parameter. The same declaration drives
// decoding of OCF_RESKEY_<name>, validation, and the meta-data XML. Build
// one with String, Int, Bool, Select, Port, Duration, List or Words, and refine it
// with Options.
type Param struct {
	name        string
	content     string // OCF content type: string, integer, boolean or select
	format      string // what validation enforces beyond the content type, for the docs
	short, long string
	def         string
	hasDefault  bool
	required    bool
	uniqueGroup string
	reloadable  bool
	private     bool
	replacedBy  string // set when deprecated
	deprecation string
	deprecated  bool
	options     []string
	decode      func(string) error
	zero        func()
	checks      []func(string) error
	dst         any      // the bound field, for options that fit one kind only
	misuse      []string // options that do not fit the kind, for Agent.CheckDeclaration
}

// fits records, for Agent.CheckDeclaration, an option that does not fit the
// parameter's kind: it would be ignored or mean nothing.
func (p *Param) fits(option string, ok bool, want string) {
	if !ok {
		p.misuse = append(p.misuse, option+" applies to "+want+" parameters only")
	}
}

// textual reports whether the parameter holds text (String, List), for
// options about the characters of its value.
func (p *Param) textual() bool {
	switch p.dst.(type) {
	case *string, *[]string:
		return p.content == "string"
	}
	return false
}

// Name returns the parameter's name.
func (p Param) Name() string { return p.name }

// Option refines a Param declaration.
type Option func(*Param)

// Default sets the value used when the parameter is unset or empty. It is
// decoded exactly like a configured value, so it must be valid.
func Default(value string) Option { return func(p *Param) { p.def, p.hasDefault = value, true } }

// Required makes the parameter mandatory: unset means OCF_ERR_CONFIGURED.
func Required() Option { return func(p *Param) { p.required = true } }

// UniqueGroup declares that no two resources of this agent may share the
// values of all parameters in group; pcs enforces it.
func UniqueGroup(group string) Option { return func(p *Param) { p.uniqueGroup = group } }

// Reloadable declares that a change of this parameter is applied by
// reload-agent, without restarting the resource.
func Reloadable() Option { return func(p *Param) { p.reloadable = true } }

// Private keeps the value out of the agent's logs and traces (shown as
// "(hidden)"). Pacemaker still stores it in the CIB and passes it in the
// environment: secrets belong in files read with ReadSecretFile.
func Private() Option { return func(p *Param) { p.private = true } }

// Long sets the long description shown by pcs resource describe.
func Long(text string) Option { return func(p *Param) { p.long = text } }

// Deprecated marks the parameter as an old name kept for compatibility.
// When replacedWith names another parameter bound to the same field, the
// old name is honoured only while the new one is unset.
func Deprecated(replacedWith, why string) Option {
	return func(p *Param) { p.deprecated, p.replacedBy, p.deprecation = true, replacedWith, why }
}

// Check adds a validation of the raw value, run after decoding succeeded.
// Its error becomes the exit reason, prefixed with the parameter's name.
func Check(check func(value string) error) Option {
	return func(p *Param) { p.checks = append(p.checks, check) }
}

// AbsolutePath requires the value to be an absolute path: a relative one
// would depend on the directory Pacemaker runs the agent in. Like
// Printable, it also refuses control characters and white space other
// than plain spaces: a path ends up in configuration files and command
// lines, where a line break or a vertical tab changes their meaning.
func AbsolutePath() Option {
	return func(p *Param) {
		_, isString := p.dst.(*string)
		p.fits("AbsolutePath", isString && p.content == "string", "String")
		if p.format == "" {
			p.format = "an absolute path"
		}
		p.checks = append(p.checks, func(v string) error {
			if !filepath.IsAbs(v) {
				return fmt.Errorf("must be an absolute path")
			}
			return checkText(v, true)
		})
	}
}

// NoSpace requires the value to be one word: no white space at all
// (ASCII or Unicode: tab, vertical tab, form feed, carriage return, NEL,
// no-break space, line and paragraph separators...), no control
// characters, no invisible formatting characters (zero-width spaces,
// bidirectional overrides), and valid UTF-8. Use it for every value that
// reaches a configuration file or a command line as a single token: an
// address, a name, a path that the file's syntax does not quote.
func NoSpace() Option {
	return func(p *Param) {
		p.fits("NoSpace", p.textual(), "String and List")
		p.checks = append(p.checks, func(v string) error { return checkText(v, false) })
	}
}

// Printable is NoSpace that allows plain spaces (U+0020), for values
// made of several words, such as a list or a template: the space is the
// only separator the reader of a configuration file sees.
func Printable() Option {
	return func(p *Param) {
		p.fits("Printable", p.textual(), "String and List")
		p.checks = append(p.checks, func(v string) error { return checkText(v, true) })
	}
}

// checkText refuses what NoSpace and Printable refuse, naming the first
// offending character by its code point (the character itself may be
// invisible, or break the exit reason).
func checkText(v string, spaces bool) error {
	if !utf8.ValidString(v) {
		return errors.New("is not valid UTF-8")
	}
	for i, r := range v {
		var what string
		switch {
		case r == ' ' && spaces:
		case r == ' ':
			return fmt.Errorf("must not contain spaces (byte %d)", i)
		case unicode.IsControl(r):
			what = "control character"
		case unicode.IsSpace(r):
			// NEL, no-break space, U+2028 and the other Unicode spaces.
			what = "white space"
		case unicode.Is(unicode.Cf, r):
			// Zero-width and bidirectional marks.
			what = "invisible character"
		}
		if what != "" {
			return fmt.Errorf("must not contain %s %U (byte %d)", what, r, i)
		}
	}
	return nil
}

// MinDuration requires a Duration parameter to be at least floor.
func MinDuration(floor time.Duration) Option {
	return func(p *Param) {
		_, isDuration := p.dst.(*time.Duration)
		p.fits("MinDuration", isDuration, "Duration")
		p.checks = append(p.checks, func(v string) error {
			if d, _ := ParseDuration(v); d < floor {
				return fmt.Errorf("must be at least %v", floor)
			}
			return nil
		})
	}
}

// Range restricts an integer parameter to [min, max].
func Range(min, max int) Option {
	return func(p *Param) {
		_, isInt := p.dst.(*int)
		p.fits("Range", isInt && p.format == "an integer", "Int")
		p.format = fmt.Sprintf("an integer from %d to %d", min, max)
		p.checks = append(p.checks, func(v string) error {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			if n < min || n > max {
				return saysAllowed{fmt.Errorf("must be from %d to %d", min, max)}
			}
			return nil
		})
	}
}

func newParam(dst any, name, content, format, short string, decode func(string) error, opts []Option) Param {
	// zero resets the field after an invalid value, which must not reach
	// the agent (a stop runs despite it).
	zero := func() { reflect.ValueOf(dst).Elem().SetZero() }
	p := Param{name: name, content: content, format: format, short: short, decode: decode, zero: zero, dst: dst}
	for _, o := range opts {
		o(&p)
	}
	return p
}

// String declares a string parameter decoded into dst.
func String(dst *string, name, short string, opts ...Option) Param {
	return newParam(dst, name, "string", "", short, func(v string) error { *dst = v; return nil }, opts)
}

// Int declares an integer parameter decoded into dst.
func Int(dst *int, name, short string, opts ...Option) Param {
	return newParam(dst, name, "integer", "an integer", short, func(v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		*dst = n
		return nil
	}, opts)
}

// Bool declares a boolean parameter with Pacemaker's truth rules (see
// ParseBool).
func Bool(dst *bool, name, short string, opts ...Option) Param {
	return newParam(dst, name, "boolean", "", short, func(v string) error {
		b, err := ParseBool(v)
		if err != nil {
			return fmt.Errorf("not a boolean; use true or false")
		}
		*dst = b
		return nil
	}, opts)
}

// Select declares a parameter whose value must be one of options.
func Select(dst *string, name, short string, options []string, opts ...Option) Param {
	p := newParam(dst, name, "select", "", short, func(v string) error {
		for _, o := range options {
			if v == o {
				*dst = v
				return nil
			}
		}
		return fmt.Errorf("not one of %s", strings.Join(options, ", "))
	}, opts)
	p.options = options
	return p
}

// Port declares a TCP or UDP port (1 to 65535). It is an integer in the
// meta-data; the range is enforced by validation.
func Port(dst *int, name, short string, opts ...Option) Param {
	return newParam(dst, name, "integer", "a port from 1 to 65535", short, func(v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 65535 {
			return saysAllowed{errors.New("not a port; use a number from 1 to 65535")}
		}
		*dst = n
		return nil
	}, opts)
}

// Duration declares a duration: a bare number of seconds, or a Go
// duration such as "1m30s" or "500ms". It is a string in the meta-data.
func Duration(dst *time.Duration, name, short string, opts ...Option) Param {
	return newParam(dst, name, "string", `a duration: seconds ("30") or with a unit ("500ms", "1m30s")`, short,
		func(v string) error {
			d, err := ParseDuration(v)
			if err != nil {
				return err
			}
			*dst = d
			return nil
		}, opts)
}

// List declares a list of words separated by commas or white space.
func List(dst *[]string, name, short string, opts ...Option) Param {
	return newParam(dst, name, "string", "a list separated by commas or spaces", short, func(v string) error {
		*dst = SplitList(v)
		return nil
	}, opts)
}

// SplitList splits a List parameter's raw value into its words, as List
// decodes it; for Check functions, which see the raw value.
func SplitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// ParseDuration reads a non-negative duration written as bare seconds
// ("30", "1.5") or as a Go duration ("500ms", "1m30s").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || math.IsNaN(f) || f > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("not a duration; use seconds or a value like 1m30s")
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("not a duration; use seconds or a value like 1m30s")
	}
	return d, nil
}

// decodeParams sets every declared parameter from env. A deprecated name
// stands in for the parameter that replaced it only while the new name is
// unset. It decodes every parameter even after a bad one, which keeps its
// default (if any), so that a stop can still do its best; the error, an
// *Error with Misconfigured, names the first bad parameter. It also
// returns the deprecated names in use.
func decodeParams(params []Param, env Env, instance string) (deprecatedInUse []string, first error) {
	fail := func(err error) {
		if first == nil {
			first = err
		}
	}
	for _, p := range params {
		if p.deprecated && p.replacedBy != "" {
			continue // decoded through the parameter that replaced it
		}
		name := p.name
		v, ok := env.Param(name)
		for _, old := range params {
			if ov, set := env.Param(old.name); set && old.deprecated && old.replacedBy == p.name {
				deprecatedInUse = append(deprecatedInUse, old.name)
				if !ok {
					name, v, ok = old.name, ov, true
				}
			}
		}
		if ok && p.deprecated {
			deprecatedInUse = append(deprecatedInUse, p.name)
		}
		if !ok {
			if p.required {
				fail(&Error{Code: Misconfigured, Reason: fmt.Sprintf(
					"parameter %s is required but not set; set it with: pcs resource update %s %s=VALUE",
					p.name, resourceID(instance), p.name)})
				continue
			}
			if !p.hasDefault {
				continue
			}
			v = p.def
		}
		if err := p.apply(v); err != nil {
			p.name = name
			fail(&Error{Code: Misconfigured, Reason: invalidReason(p, v, err), Err: err})
			// The invalid value never reaches the agent: the default,
			// or the zero value.
			if !p.hasDefault || p.apply(p.def) != nil {
				p.zero()
			}
		}
	}
	return deprecatedInUse, first
}

func (p Param) apply(v string) error {
	if err := p.decode(v); err != nil {
		return err
	}
	for _, c := range p.checks {
		if err := c(v); err != nil {
			return err
		}
	}
	return nil
}

func invalidReason(p Param, v string, err error) string {
	shown := strconv.Quote(v)
	if p.private {
		shown = "(hidden)"
	}
	reason := fmt.Sprintf("parameter %s=%s is invalid: %v", p.name, shown, err)
	if p.format != "" && !strings.Contains(err.Error(), p.format) && !errors.As(err, new(saysAllowed)) {
		reason += "; expected " + p.format
	}
	return reason
}

// saysAllowed marks a validation error whose text already says which
// values are allowed, so that the exit reason, at most MaxReason bytes,
// does not say it twice in other words.
type saysAllowed struct{ error }

// resourceID strips a clone instance suffix, giving the id an
// administrator types in pcs.
func resourceID(instance string) string {
	if i := strings.IndexByte(instance, ':'); i >= 0 {
		instance = instance[:i]
	}
	if instance == "" {
		return "RESOURCE"
	}
	return instance
}
