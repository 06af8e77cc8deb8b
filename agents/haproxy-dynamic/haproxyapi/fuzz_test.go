package haproxyapi

import (
	"slices"
	"strings"
	"testing"
)

// FuzzAppendFields checks the servers-state line splitter against
// strings.Fields, which it stands in for.
func FuzzAppendFields(f *testing.F) {
	for _, s := range []string{"", " ", "3 be_web 1 s1 127.0.0.1 2 0 1 1 9 1 0 0 0 0 0 0 - 8081 -",
		"a\tb  c\r\n", "\u00a0x\u0085y ", "x\v\fy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got := appendFields([]string{"kept"}, line)
		want := append([]string{"kept"}, strings.Fields(line)...)
		if !slices.Equal(got, want) {
			t.Errorf("appendFields(%q) = %q, want %q", line, got, want)
		}
	})
}
