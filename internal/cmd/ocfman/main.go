// Command ocfman writes the manual page of an OCF resource agent, in
// section 7 as resource-agents ships ocf_heartbeat_*.7, from the agent's
// meta-data XML: name, descriptions, every parameter with its type,
// default and whether it is required, and the actions with their advised
// timeouts. The package build runs it once per agent on the output of
// `<agent> meta-data`, so the page can never disagree with the agent.
//
// Usage:
//
//	ocfman -provider ha-framework -date 2026-12-03 [-o page.7] [metadata.xml]
//
// The XML comes from the named file, or from standard input without one.
// The date is a flag, not the clock, so the same input gives the same page.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ocfman", flag.ContinueOnError)
	fs.SetOutput(stderr)
	provider := fs.String("provider", "ha-framework", "OCF provider the agent is installed under")
	date := fs.String("date", "", "date printed in the page footer, YYYY-MM-DD (required)")
	out := fs.String("o", "", "write the page to this file instead of standard output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := time.Parse(time.DateOnly, *date); err != nil {
		fmt.Fprintf(stderr, "ocfman: -date %q: want YYYY-MM-DD\n", *date)
		return 2
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "ocfman: at most one meta-data file")
		return 2
	}
	in := stdin
	if fs.NArg() == 1 {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "ocfman: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	md, err := parse(in)
	if err != nil {
		fmt.Fprintf(stderr, "ocfman: %v\n", err)
		return 1
	}
	var page bytes.Buffer
	render(&page, md, *provider, *date)
	if *out == "" {
		if _, err := stdout.Write(page.Bytes()); err != nil {
			fmt.Fprintf(stderr, "ocfman: %v\n", err)
			return 1
		}
		return 0
	}
	if err := os.WriteFile(*out, page.Bytes(), 0o644); err != nil {
		fmt.Fprintf(stderr, "ocfman: %v\n", err)
		return 1
	}
	return 0
}
