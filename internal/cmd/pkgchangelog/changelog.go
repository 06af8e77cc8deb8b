package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// release is one version's section of CHANGELOG.md.
type release struct {
	Version string
	Date    time.Time
	Changes []string // "Added: text", in the order of the file

	unreleased bool // the Unreleased section, given the version being built
}

var (
	// "## [Unreleased]" or "## [1.2.0] - 2026-12-03".
	sectionRE  = regexp.MustCompile(`^## \[([^\]]+)\](?:\s+-\s+(\d{4}-\d{2}-\d{2}))?\s*$`)
	categoryRE = regexp.MustCompile(`^### (.+?)\s*$`)
	// A Debian or RPM version: what may follow "ha-framework (" in a
	// Debian changelog header.
	versionRE    = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)
	releaseRE    = regexp.MustCompile(`^[A-Za-z0-9.]+$`)
	maintainerRE = regexp.MustCompile(`^[^<>\n]+ <[^<>@\s]+@[^<>@\s]+>$`)
)

func validMaintainer(s string) bool { return maintainerRE.MatchString(s) }

// parse reads the sections of a Keep a Changelog file, newest first as the
// file keeps them. The Unreleased section becomes version, dated unreleased;
// it is left out when empty, or when version already has a section of its
// own. A section without a date, a version twice, or a version that cannot
// be a package version is an error: the package would carry a changelog
// that dpkg or rpm rejects.
func parse(src, version string, unreleased time.Time) ([]release, error) {
	if !versionRE.MatchString(version) {
		return nil, fmt.Errorf("version %q is not a package version", version)
	}
	var (
		all      []release
		cur      *release
		category string
		bullet   []string
	)
	flush := func() {
		if cur != nil && len(bullet) > 0 {
			text := strings.Join(bullet, " ")
			if category != "" {
				text = category + ": " + text
			}
			cur.Changes = append(cur.Changes, text)
		}
		bullet = nil
	}
	seenUnreleased := false
	for i, line := range strings.Split(src, "\n") {
		line = strings.TrimRight(line, " \t\r")
		switch {
		case strings.HasPrefix(line, "## "):
			flush()
			m := sectionRE.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("line %d: section heading %q: want ## [VERSION] - YYYY-MM-DD or ## [Unreleased]", i+1, line)
			}
			r := release{Version: m[1]}
			if strings.EqualFold(m[1], "unreleased") {
				if seenUnreleased {
					return nil, fmt.Errorf("line %d: a second Unreleased section", i+1)
				}
				seenUnreleased = true
				r.Version, r.Date, r.unreleased = version, unreleased, true
			} else {
				if !versionRE.MatchString(m[1]) {
					return nil, fmt.Errorf("line %d: %q is not a package version", i+1, m[1])
				}
				if m[2] == "" {
					return nil, fmt.Errorf("line %d: release %s has no date", i+1, m[1])
				}
				d, err := time.Parse(time.DateOnly, m[2])
				if err != nil {
					return nil, fmt.Errorf("line %d: release %s: %v", i+1, m[1], err)
				}
				r.Date = d
			}
			all = append(all, r)
			cur, category = &all[len(all)-1], ""
		case cur == nil:
			// The title and preamble.
		case categoryRE.MatchString(line):
			flush()
			category = categoryRE.FindStringSubmatch(line)[1]
		case strings.HasPrefix(line, "- ") || strings.HasPrefix(line, "* "):
			flush()
			bullet = []string{strings.TrimSpace(line[2:])}
		case line == "" || strings.HasPrefix(line, "["): // a link reference ends a bullet too
			flush()
		case len(bullet) > 0:
			bullet = append(bullet, strings.TrimSpace(line))
		}
	}
	flush()

	released := map[string]bool{}
	for _, r := range all {
		if r.unreleased {
			continue
		}
		if released[r.Version] {
			return nil, fmt.Errorf("version %s has two sections", r.Version)
		}
		released[r.Version] = true
	}
	var releases []release
	for _, r := range all {
		// An empty Unreleased section says nothing; when version was
		// released already, its own section speaks for it.
		if r.unreleased && (len(r.Changes) == 0 || released[r.Version]) {
			continue
		}
		releases = append(releases, r)
	}
	if len(releases) == 0 {
		return nil, errors.New("no release and no unreleased change")
	}
	return releases, nil
}

// writeDeb writes the Debian changelog format (deb-changelog(5)): lines of
// at most 80 columns, one "  * " item per change.
func writeDeb(w io.Writer, name, maintainer string, rs []release) {
	for i, r := range rs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s (%s) unstable; urgency=medium\n\n", name, r.Version)
		for _, c := range r.Changes {
			for j, line := range wrap(c, 80-4) {
				if j == 0 {
					fmt.Fprintf(w, "  * %s\n", line)
				} else {
					fmt.Fprintf(w, "    %s\n", line)
				}
			}
		}
		fmt.Fprintf(w, "\n -- %s  %s\n", maintainer, r.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
}

// rpmEntry is one entry of the changelog file nfpm reads (goreleaser's
// chglog format); JSON is YAML, and encoding/json needs no new module.
type rpmEntry struct {
	Semver   string      `json:"semver"`
	Date     time.Time   `json:"date"`
	Packager string      `json:"packager"`
	Changes  []rpmChange `json:"changes"`
}

type rpmChange struct {
	Note string `json:"note"`
}

// writeRPM writes nfpm's changelog entries; with a release, every version
// is VERSION-RELEASE.
func writeRPM(w io.Writer, maintainer, rel string, rs []release) error {
	entries := make([]rpmEntry, 0, len(rs))
	for _, r := range rs {
		v := r.Version
		if rel != "" {
			v += "-" + rel
		}
		e := rpmEntry{Semver: v, Date: r.Date, Packager: maintainer}
		for _, c := range r.Changes {
			e.Changes = append(e.Changes, rpmChange{Note: strings.Join(wrap(c, 78), "\n  ")})
		}
		entries = append(entries, e)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(entries)
}

// wrap breaks s into lines of at most width columns at spaces; a word
// longer than width stands alone on its line.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
