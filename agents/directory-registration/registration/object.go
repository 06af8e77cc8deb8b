package registration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// object is a JSON object read key by key, so that every key is either
// understood or reported, under the name the file gives it.
type object struct {
	path    string
	members map[string]member // by normalised key
	order   []string          // normalised keys, sorted by original key
	taken   map[string]bool
	aliases map[string]string
}

type member struct {
	key string // as written
	raw json.RawMessage
}

// normalise lets "check_id", "CheckID" and "checkid" name the same key,
// as Consul's own decoders do.
func normalise(key string) string {
	return strings.ToLower(strings.ReplaceAll(key, "_", ""))
}

func parseObject(path string, raw json.RawMessage, aliases map[string]string) (*object, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		where := path
		if where == "" {
			where = "the definition"
		}
		return nil, &fieldError{"", where + " must be a JSON object"}
	}
	o := &object{path: path, members: map[string]member{}, taken: map[string]bool{}, aliases: aliases}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		n := o.canonical(k)
		if prev, dup := o.members[n]; dup {
			return nil, &fieldError{o.join(k), fmt.Sprintf("given twice (also as %q)", prev.key)}
		}
		o.members[n] = member{key: k, raw: m[k]}
		o.order = append(o.order, n)
	}
	return o, nil
}

func (o *object) canonical(key string) string {
	n := normalise(key)
	if a, ok := o.aliases[n]; ok {
		return a
	}
	return n
}

func (o *object) join(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

// field names key as the file spells it, or in snake_case when absent.
func (o *object) field(key string) string {
	if m, ok := o.members[o.canonical(key)]; ok {
		return o.join(m.key)
	}
	return o.join(key)
}

// child is the path of a member's value.
func (o *object) child(m member) string { return o.join(m.key) }

// peek finds key, null or not, without marking it understood.
func (o *object) peek(key string) (member, bool) {
	m, ok := o.members[o.canonical(key)]
	return m, ok
}

// has reports whether key is present with a value other than null.
func (o *object) has(key string) bool {
	m, ok := o.peek(key)
	return ok && string(bytes.TrimSpace(m.raw)) != "null"
}

// take marks key as understood and returns it; a JSON null counts as
// absent.
func (o *object) take(key string) (member, bool) {
	n := o.canonical(key)
	m, ok := o.members[n]
	if !ok {
		return m, false
	}
	o.taken[n] = true
	return m, o.has(key)
}

// unknown lists the keys not taken, as written.
func (o *object) unknown() []string {
	var out []string
	for _, n := range o.order {
		if !o.taken[n] {
			out = append(out, o.join(o.members[n].key))
		}
	}
	return out
}

// rest reports the first key nobody took.
func (o *object) rest() error {
	if u := o.unknown(); len(u) > 0 {
		return &fieldError{u[0], "unknown field"}
	}
	return nil
}

func (o *object) decode(key, want string, dst any) error {
	m, ok := o.take(key)
	if !ok {
		return nil
	}
	if err := json.Unmarshal(m.raw, dst); err != nil {
		return &fieldError{o.join(m.key), "must be " + want}
	}
	return nil
}

func (o *object) str(key string, dst *string) error { return o.decode(key, "a string", dst) }
func (o *object) boolean(key string, dst *bool) error {
	return o.decode(key, "true or false", dst)
}
func (o *object) integer(key string, dst *int64) error { return o.decode(key, "an integer", dst) }
func (o *object) strs(key string, dst *[]string) error {
	return o.decode(key, "a list of strings", dst)
}
func (o *object) strMap(key string, dst *map[string]string) error {
	return o.decode(key, "an object of strings", dst)
}
func (o *object) headers(key string, dst *map[string][]string) error {
	return o.decode(key, "an object of string lists, such as {\"Accept\": [\"text/plain\"]}", dst)
}

// firstOf picks the first error of a joined list, so that an exit
// reason names one field.
func firstOf(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := j.Unwrap(); len(errs) > 0 {
			return errs[0]
		}
	}
	return err
}
