package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
)

// printPending renders why a pending job waits from the scheduler's
// structured reasons, one rule a line, in plain words: "3 nodes lack 8
// free GPUs", "queue research is at its quota". The verdict comes first:
// a job that cannot fit even on the idle cluster waits for nodes to join,
// not for others to finish.
func printPending(w io.Writer, j *api.Job) {
	if j.Status != api.JobPending || len(j.Reasons) == 0 {
		return
	}
	if j.CannotFit {
		fmt.Fprintln(w, "Waiting    for nodes that fit: no ready node could take it even if the cluster were idle")
	} else {
		fmt.Fprintln(w, "Waiting    for resources held by other work, because:")
	}
	for _, r := range j.Reasons {
		fmt.Fprintf(w, "  - %s\n", reasonWords(r))
	}
}

// reasonWords is one reason as a sentence: a per-node reason's Detail
// reads after its node count, in the plural ("lack 8 free GPUs"), as
// scheduler/placement writes it; a job-level one is a whole clause.
func reasonWords(r api.Reason) string {
	switch {
	case r.Nodes == 1:
		return "1 node " + singularVerb(r.Detail) + heldBy(r.Holders, r.MoreHolders)
	case r.Nodes > 1:
		return fmt.Sprintf("%d nodes %s", r.Nodes, r.Detail) + heldBy(r.Holders, r.MoreHolders)
	}
	return r.Detail
}

// maxHolders is how many jobs holding contested GPUs a reason names
// before it counts the rest.
const maxHolders = 3

// heldBy names the jobs that hold the GPUs a reason is about (", held by
// job a, b and 2 more"), or nothing when it names none.
func heldBy(holders []string, moreHolders int) string {
	if len(holders) == 0 {
		return ""
	}
	word := "job"
	if len(holders)+moreHolders > 1 {
		word = "jobs"
	}
	shown := holders[:min(len(holders), maxHolders)]
	s := ", held by " + word + " " + strings.Join(shown, ", ")
	if more := len(holders) - len(shown) + moreHolders; more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// singularVerb turns a plural detail's leading verb singular ("lack" ->
// "lacks", "are" -> "is", "have" -> "has"), as placement's own text does.
func singularVerb(detail string) string {
	verb, rest, _ := strings.Cut(detail, " ")
	switch verb {
	case "":
		return detail
	case "are":
		verb = "is"
	case "have":
		verb = "has"
	default:
		verb += "s"
	}
	if rest == "" {
		return verb
	}
	return verb + " " + rest
}
