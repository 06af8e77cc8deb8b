package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

const sample = `# Changelog

Preamble, not a change.

## [Unreleased]

### Added
- A new thing,
  described on two lines.

### Fixed
* A fix.

## [0.2.0] - 2026-11-02

### Changed
- Something changed.

[0.2.0]: https://example.org/compare
`

var built = time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	got, err := parse(sample, "0.3.0", built)
	if err != nil {
		t.Fatal(err)
	}
	want := []release{
		{Version: "0.3.0", Date: built, Changes: []string{"Added: A new thing, described on two lines.", "Fixed: A fix."}, unreleased: true},
		{Version: "0.2.0", Date: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), Changes: []string{"Changed: Something changed."}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(release{})); diff != "" {
		t.Errorf("parse (-want +got):\n%s", diff)
	}
}

// A version already released has its own section; an empty Unreleased
// section adds no entry.
func TestParseReleasedVersion(t *testing.T) {
	for _, tc := range []struct{ name, src, version string }{
		{"released", sample, "0.2.0"},
		{"empty unreleased", "## [Unreleased]\n\n## [0.2.0] - 2026-11-02\n- x\n", "0.3.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(tc.src, tc.version, built)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Version != "0.2.0" || got[0].unreleased {
				t.Errorf("got %+v, want only the 0.2.0 section", got)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	for _, tc := range []struct{ name, src, version, reason string }{
		{"bad version", sample, "v 1", `version "v 1" is not a package version`},
		{"no date", "## [0.1.0]\n- x\n", "0.2.0", "release 0.1.0 has no date"},
		{"bad date", "## [0.1.0] - 2026-13-01\n- x\n", "0.2.0", "release 0.1.0"},
		{"bad heading", "## 0.1.0\n- x\n", "0.2.0", "section heading"},
		{"bad section version", "## [one] - 2026-01-01\n- x\n", "0.2.0", `"one" is not a package version`},
		{"twice", "## [0.1.0] - 2026-01-01\n- x\n## [0.1.0] - 2026-01-02\n- y\n", "0.2.0", "version 0.1.0 has two sections"},
		{"two unreleased", "## [Unreleased]\n- x\n## [Unreleased]\n- y\n", "0.2.0", "second Unreleased"},
		{"nothing", "# Changelog\n", "0.2.0", "no release"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.src, tc.version, built)
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("err = %v, want one containing %q", err, tc.reason)
			}
		})
	}
}

func TestDeb(t *testing.T) {
	rs, err := parse(sample, "0.3.0", built)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	writeDeb(&b, "pkg", "Dev <dev@example.org>", rs)
	want := `pkg (0.3.0) unstable; urgency=medium

  * Added: A new thing, described on two lines.
  * Fixed: A fix.

 -- Dev <dev@example.org>  Thu, 03 Dec 2026 16:00:00 +0000

pkg (0.2.0) unstable; urgency=medium

  * Changed: Something changed.

 -- Dev <dev@example.org>  Mon, 02 Nov 2026 00:00:00 +0000
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("deb changelog (-want +got):\n%s", diff)
	}
}

// The project's own CHANGELOG.md converts, and every change line fits in
// the 80 columns Debian's tools expect (counted in characters: the file
// has en dashes and arrows).
func TestProjectChangelog(t *testing.T) {
	var out, errs bytes.Buffer
	code := run([]string{"-format", "deb", "-version", "9.9.9", "-epoch", "1764777600",
		"-maintainer", "Dev <dev@example.org>", "../../../CHANGELOG.md"}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	lines := strings.Split(out.String(), "\n")
	if !strings.HasPrefix(lines[0], "ha-framework (") {
		t.Errorf("first line %q", lines[0])
	}
	for i, l := range lines {
		if strings.HasPrefix(l, "  ") && utf8.RuneCountInString(l) > 80 {
			t.Errorf("line %d has %d columns: %q", i+1, utf8.RuneCountInString(l), l)
		}
	}
}

func TestRPM(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "changelog.yml")
	src := filepath.Join(t.TempDir(), "CHANGELOG.md")
	if err := os.WriteFile(src, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	code := run([]string{"-format", "rpm", "-version", "0.3.0", "-release", "1", "-epoch", "1796313600",
		"-maintainer", "Dev <dev@example.org>", "-o", dst, src}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	data, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	var got []rpmEntry
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("not JSON (YAML nfpm reads): %v\n%s", err, data)
	}
	want := []rpmEntry{
		{Semver: "0.3.0-1", Date: built, Packager: "Dev <dev@example.org>",
			Changes: []rpmChange{{Note: "Added: A new thing, described on two lines."}, {Note: "Fixed: A fix."}}},
		{Semver: "0.2.0-1", Date: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), Packager: "Dev <dev@example.org>",
			Changes: []rpmChange{{Note: "Changed: Something changed."}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rpm changelog (-want +got):\n%s", diff)
	}
	if !bytes.Contains(data, []byte("Dev <dev@example.org>")) {
		t.Errorf("packager escaped: %s", data)
	}
}

func TestFlags(t *testing.T) {
	ok := []string{"-format", "deb", "-version", "1.0", "-epoch", "0", "-maintainer", "A <a@b>", "x.md"}
	with := func(i int, v string) []string {
		a := append([]string(nil), ok...)
		a[i] = v
		return a
	}
	for _, tc := range []struct {
		name   string
		args   []string
		reason string
	}{
		{"format", with(1, "apk"), "want deb or rpm"},
		{"version", with(3, ""), "-version is required"},
		{"epoch", with(5, "yesterday"), "want seconds since 1970"},
		{"negative epoch", with(5, "-1"), "want seconds since 1970"},
		{"maintainer", with(7, "nobody"), "want 'Name <address>'"},
		{"no file", ok[:8], "want one CHANGELOG.md"},
		{"release with deb", append([]string{"-release", "1"}, ok...), "with -format rpm"},
		{"bad release", append([]string{"-release", "1 2", "-format", "rpm"}, ok[2:]...), "want digits and letters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			if code := run(tc.args, &out, &errs); code != 2 || !strings.Contains(errs.String(), tc.reason) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errs.String(), tc.reason)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	got := wrap("aa bb cc "+strings.Repeat("x", 12)+" dd", 8)
	want := []string{"aa bb cc", strings.Repeat("x", 12), "dd"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wrap (-want +got):\n%s", diff)
	}
}
