package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ark-sched/ark/internal/editdist"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// resolveJob finds the job the user means by ref: its full ID, a unique
// prefix of its ID, or its name, as Nomad resolves them. Several matches
// are a usage error (exit 2) that lists them; none is a failure (exit 1)
// that suggests a close ID or name. The full ID is asked for first, so the
// common case costs one request and no job list.
func resolveJob(ctx context.Context, c *client.Client, ref string) (*api.Job, error) {
	job, _, err := c.Job(ctx, ref, 0, 0)
	if err == nil {
		return job, nil
	}
	if !client.IsNotFound(err) {
		return nil, err
	}
	jobs, err := c.Jobs(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("look up job %q: %w", ref, err)
	}
	var byName, byPrefix []*api.Job
	for _, j := range jobs {
		switch {
		case j.ID == ref:
			return j, nil // submitted since the first look
		case j.Name == ref:
			byName = append(byName, j)
		case strings.HasPrefix(j.ID, ref):
			byPrefix = append(byPrefix, j)
		}
	}
	// A name is what the user wrote in the spec: it wins over a prefix
	// that happens to match other jobs' IDs too.
	what, matches := "name", byName
	if len(matches) == 0 {
		what, matches = "ID prefix", byPrefix
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		msg := fmt.Sprintf("no job %q", ref)
		if s := closestJob(ref, jobs); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		return nil, fmt.Errorf("%s (ark job list shows them all)", msg)
	}
	sort.Slice(matches, func(a, b int) bool { return matches[a].ID < matches[b].ID })
	list := make([]string, len(matches))
	for i, j := range matches {
		list[i] = fmt.Sprintf("%s (%s)", j.ID, j.Status)
	}
	return nil, usagef("%s %q matches %d jobs: %s; give more of the ID", what, ref, len(matches), strings.Join(list, ", "))
}

// closestJob returns the job ID or name nearest to ref, or "" when none is
// close enough to be what the user meant (a third of ref's length, at
// least 1, in edits; IDs are compared on their first len(ref) characters
// too, since a prefix is what the user may have mistyped).
func closestJob(ref string, jobs []*api.Job) string {
	best, bestD := "", len(ref)/3+1
	consider := func(cand, shown string) {
		if d := editdist.Levenshtein(ref, cand); d < bestD || (d == bestD && best != "" && shown < best) {
			best, bestD = shown, d
		}
	}
	for _, j := range jobs {
		consider(j.Name, j.Name)
		consider(j.ID, j.ID)
		if len(j.ID) > len(ref) {
			consider(j.ID[:len(ref)], j.ID)
		}
	}
	return best
}
