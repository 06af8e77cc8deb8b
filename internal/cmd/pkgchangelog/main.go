// Command pkgchangelog turns the project's CHANGELOG.md (Keep a Changelog)
// into the changelog a package carries: the Debian format for
// /usr/share/doc/<name>/changelog.gz, or the entry list nfpm reads for an
// RPM's %changelog. Every released section becomes an entry with its own
// date; the Unreleased section becomes the entry of -version, dated by
// -epoch (the package build passes SOURCE_DATE_EPOCH, so the same commit
// gives the same bytes). Each bullet keeps its text, prefixed by its
// section ("Added: ...").
//
// Usage:
//
//	pkgchangelog -format deb|rpm -version 0.1.0 -epoch 1764777600 \
//	    -maintainer 'Name <address>' [-name ha-framework] [-release 1] [-o file] CHANGELOG.md
//
// -release (RPM only) makes each entry's version VERSION-RELEASE, as rpm
// compares it with the package's own.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pkgchangelog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "", "deb (Debian changelog) or rpm (nfpm's changelog entries)")
	version := fs.String("version", "", "version of the Unreleased section (required)")
	epoch := fs.String("epoch", "", "date of the Unreleased section, in seconds since 1970 (required)")
	maintainer := fs.String("maintainer", "", "who signs the entries, 'Name <address>' (required)")
	name := fs.String("name", "ha-framework", "package name")
	rel := fs.String("release", "", "RPM release appended to every version (rpm format only), e.g. 1")
	out := fs.String("o", "", "write to this file instead of standard output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	secs, err := strconv.ParseInt(*epoch, 10, 64)
	switch {
	case *format != "deb" && *format != "rpm":
		fmt.Fprintf(stderr, "pkgchangelog: -format %q: want deb or rpm\n", *format)
		return 2
	case *version == "":
		fmt.Fprintln(stderr, "pkgchangelog: -version is required")
		return 2
	case err != nil || secs < 0:
		fmt.Fprintf(stderr, "pkgchangelog: -epoch %q: want seconds since 1970\n", *epoch)
		return 2
	case !validMaintainer(*maintainer):
		fmt.Fprintf(stderr, "pkgchangelog: -maintainer %q: want 'Name <address>'\n", *maintainer)
		return 2
	case *rel != "" && (*format != "rpm" || !releaseRE.MatchString(*rel)):
		fmt.Fprintf(stderr, "pkgchangelog: -release %q: want digits and letters, with -format rpm\n", *rel)
		return 2
	case fs.NArg() != 1:
		fmt.Fprintln(stderr, "pkgchangelog: want one CHANGELOG.md")
		return 2
	}
	src, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "pkgchangelog: %v\n", err)
		return 1
	}
	releases, err := parse(string(src), *version, time.Unix(secs, 0).UTC())
	if err != nil {
		fmt.Fprintf(stderr, "pkgchangelog: %s: %v\n", fs.Arg(0), err)
		return 1
	}
	var buf bytes.Buffer
	if *format == "deb" {
		writeDeb(&buf, *name, *maintainer, releases)
	} else if err := writeRPM(&buf, *maintainer, *rel, releases); err != nil {
		fmt.Fprintf(stderr, "pkgchangelog: %v\n", err)
		return 1
	}
	if *out == "" {
		_, err = stdout.Write(buf.Bytes())
	} else {
		err = os.WriteFile(*out, buf.Bytes(), 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pkgchangelog: %v\n", err)
		return 1
	}
	return 0
}
