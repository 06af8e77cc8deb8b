package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

func writeJSON(w io.Writer, res result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func writeTable(w io.Writer, res result) error {
	stop := "all rounds done"
	if res.StoppedByMax {
		stop = fmt.Sprintf("stopped by -max after %d of %d rounds", res.Rounds, res.WantRounds)
	}
	fmt.Fprintf(w, "%d rounds (+%d warm-up) in %.1fs, %s; seed %d, %d CPUs, %s\n",
		res.Rounds, res.Warmup, res.ElapsedSec, stop, res.Seed, res.CPUs, res.GoVersion)
	for _, c := range res.Candidates {
		fmt.Fprintf(w, "  %-16s %s\n", c.Name, c.Path)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "  %-16s skipped: %s\n", s.Name, s.Reason)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "candidate\taction\tcalls\tmedian ms\tp90 ms\tpeak RSS KiB\tru_maxrss KiB\t")
	for _, s := range res.Stats {
		peak := "-"
		if s.PeakRSSKiB != nil {
			peak = strconv.FormatInt(*s.PeakRSSKiB, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%.3f\t%s\t%d\t\n",
			s.Candidate, s.Action, s.Calls, s.MedianMs, s.P90Ms, peak, s.RuMaxRSSKiB)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.RSSNote != "" {
		fmt.Fprintln(w, res.RSSNote)
	}
	fmt.Fprintf(w, "peak RSS: VmHWM of the agent's own process just before exit (untimed, %d calls each).\n", rssCalls)
	fmt.Fprintf(w, "ru_maxrss: never below ocfbench's own RSS (%d KiB), since exec keeps the forking\nprocess's high-water mark; shown for comparison only.\n\n", res.SelfRSSKiB)

	met, judged := 0, 0
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ratio of medians\taction\tvalue\tgoal\tmet")
	for _, r := range res.Ratios {
		value, verdict := "-", "skipped"
		if r.Value != nil {
			value = fmt.Sprintf("%.2fx", *r.Value)
			verdict = "no"
			if *r.Met {
				verdict = "yes"
				met++
			}
			judged++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Action, value, r.Goal, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\ngoals met: %d of %d\n", met, judged)
	return err
}
