package main

import (
	"fmt"
	"io"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// statusEvents is how many of a job's events `ark job status` shows (the
// newest; `-o json` has them all).
const statusEvents = 8

// printEvents lists the newest of j's events, oldest first.
func printEvents(w io.Writer, j *api.Job, now time.Time) {
	evs := j.Events
	if len(evs) == 0 {
		return
	}
	head := "Events"
	if len(evs) > statusEvents {
		head = fmt.Sprintf("Events (last %d of %d; -o json for all)", statusEvents, len(evs))
		evs = evs[len(evs)-statusEvents:]
	}
	fmt.Fprintf(w, "\n%s\n", head)
	tw := newTable(w)
	fmt.Fprintln(tw, "AGE\tTYPE\tMESSAGE")
	for _, e := range evs {
		fmt.Fprintln(tw, eventLine(e, now))
	}
	tw.Flush()
}

// eventLine renders one event as a table row: its age, type and text.
func eventLine(e api.JobEvent, now time.Time) string {
	age := "-"
	if !e.Time.IsZero() {
		age = ageOf(max(now.Sub(e.Time), 0))
	}
	return age + "\t" + e.Type + "\t" + e.Message
}
