// Package charclass checks names built from ASCII character classes (a
// first character, then more from a class, up to a length), the shape of
// most identifiers the agents accept, without regular expressions. Agents
// check these names on every monitor, in a process that lives for that one
// call: compiling even a small expression costs more than every check the
// process makes with it, and one compiled at package initialization is
// paid by every run of the binary, whichever action it runs.
package charclass

// Set is a set of ASCII bytes; the zero Set is empty.
type Set [2]uint64

// Of returns the set of the bytes in spec, in which "a-z" stands for the
// range from a to z (a '-' first or last stands for itself, as in a
// regular expression's class). Bytes above 127 are never members.
func Of(spec string) Set {
	var s Set
	for i := 0; i < len(spec); i++ {
		lo, hi := spec[i], spec[i]
		if i+2 < len(spec) && spec[i+1] == '-' {
			hi = spec[i+2]
			i += 2
		}
		for b := int(lo); b <= int(hi) && b < 128; b++ {
			s[b/64] |= 1 << (b % 64)
		}
	}
	return s
}

// Has reports whether b is in s.
func (s Set) Has(b byte) bool { return b < 128 && s[b/64]&(1<<(b%64)) != 0 }

// All reports whether every byte of name is in s (true when name is
// empty).
func (s Set) All(name string) bool {
	for i := 0; i < len(name); i++ {
		if !s.Has(name[i]) {
			return false
		}
	}
	return true
}

// Word reports whether name is one byte of first followed by bytes of
// rest, and at most max bytes long in all (no bound when max < 0): the
// regular expression ^[first][rest]{0,max-1}$ over ASCII.
func Word(name string, first, rest Set, max int) bool {
	return name != "" && (max < 0 || len(name) <= max) && first.Has(name[0]) && rest.All(name[1:])
}
