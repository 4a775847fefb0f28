package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api"
)

// `ark job adapter add|rm`: add a LoRA adapter to a builtin service's
// spec or remove one (POST|DELETE /v1/jobs/ID/adapters), with the update
// capability: a job update the servers check as any (the location against
// the namespace's storage) and the running replicas take in place, or, for
// a local checkpoint their sandboxes do not open, a rolling update.

func newJobAdapterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "adapter",
		Short: "Add, remove or list the LoRA adapters of a builtin service, without a restart",
		Long: `Add (add) or remove (rm) a LoRA adapter of a builtin inference service: a new version of
its spec with task.builtin.adapters changed, checked as any update (the job's namespace must
be allowed to read the location, as at submission) and listed in ark job history. No replica
is replaced: each running replica loads the new adapter in the background (or drops the
removed one) within a few seconds, while it goes on answering; replicas started later (a
restart, a scale-out, a rollout) serve the spec's adapters. A running replica reads only the
local paths its spec named when it started (its sandbox): an adapter in a local store none of
them opened rolls the replicas instead (a rolling update, as ark job update: new replicas
start with the adapter, then the old ones stop), and add says so. add waits for the
replicas' verdict and takes an adapter that failed to load out again (see ark job adapter
add --help). Needs the update capability. list shows what each serving replica holds.`,
	}
	var (
		pinned, noWait, keep bool
		timeout              time.Duration
	)
	add := &cobra.Command{
		Use:   "add ID NAME URI",
		Short: "Add a LoRA adapter (a checkpoint, or model://NAME[@V]) to a service, and wait until its replicas loaded it",
		Long: `Add a LoRA adapter to a builtin service's spec, then wait (--timeout) until every running
replica has loaded it or failed to. An adapter is only of use on the base it was trained on:
a catalog version (model://NAME[@V]) whose lineage names another base, or that is no adapter,
is refused at once; any other checkpoint is checked by each replica against its manifest. A
local checkpoint in a store the running replicas may not read rolls them: the wait then
lasts until the new replicas serve (default rollout: one replica at a time, 10s healthy
each). If a replica fails to load it, each replica's error is printed, the adapter is
removed again (a second update; --keep leaves it) and the command exits 1. --no-wait
returns once the update is committed.`,
		Args: exactArgs(3, "a job ID, an adapter name and its checkpoint"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return usagef("--timeout: must be > 0, got %s", timeout)
			}
			c, j, err := clientAndJob(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			ans, err := c.AddServiceAdapter(cmd.Context(), j.ID, api.ServiceAdapterRequest{Name: args[1], URI: args[2], Pinned: pinned})
			if err != nil {
				return fmt.Errorf("add adapter %s to %s: %w", args[1], j.ID, err)
			}
			if noWait {
				return printAdapterAnswer(cmd, g, ans, "added")
			}
			out := cmd.OutOrStdout()
			if !g.json() {
				if err := printAdapterAnswer(cmd, g, ans, "added"); err != nil {
					return err
				}
			}
			vs, timedOut, err := waitAdapter(cmd.Context(), c, j.ID, ans, timeout)
			if cmd.Context().Err() != nil { // Ctrl-C or SIGTERM
				fmt.Fprintf(cmd.ErrOrStderr(), "\nstopped waiting; adapter %s stays in the spec of %s (ark job adapter rm %s %s removes it)\n", ans.Name, j.ID, j.ID, ans.Name)
				return silentError{exitInterrupted}
			}
			if err != nil {
				return err
			}
			res := &adapterAddResult{ServiceAdapterAnswer: ans, Replicas: vs, Loaded: countState(vs, verdictLoaded), Failed: countState(vs, verdictFailed), TimedOut: timedOut}
			if res.Failed > 0 && ans.Changed && !keep {
				// Only what this command added is taken out: an adapter
				// the spec already had is the user's to remove.
				rm, err := c.RemoveServiceAdapter(cmd.Context(), j.ID, ans.Name)
				if err != nil {
					res.RemoveError = err.Error()
				} else {
					res.Removed = rm
				}
			}
			if g.json() {
				if err := printJSON(out, res); err != nil {
					return err
				}
			} else {
				reportAdapter(out, j.ID, res, timeout, keep)
			}
			if res.Failed > 0 || res.TimedOut {
				return silentError{exitFailure}
			}
			return nil
		},
	}
	add.Flags().BoolVar(&pinned, "pinned", false, "never evict it from the replicas' host memory (add it again to change this)")
	add.Flags().BoolVar(&noWait, "no-wait", false, "return once the update is committed, without waiting for the replicas to load the adapter")
	add.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for every running replica to load it or fail (exit 1 past it; the adapter stays)")
	add.Flags().BoolVar(&keep, "keep", false, "leave an adapter that failed to load in the spec instead of removing it again")
	rm := &cobra.Command{
		Use:   "rm ID NAME",
		Short: "Remove a LoRA adapter from a service",
		Args:  exactArgs(2, "a job ID and an adapter name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, j, err := clientAndJob(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			ans, err := c.RemoveServiceAdapter(cmd.Context(), j.ID, args[1])
			if err != nil {
				return fmt.Errorf("remove adapter %s from %s: %w", args[1], j.ID, err)
			}
			return printAdapterAnswer(cmd, g, ans, "removed")
		},
	}
	cmd.AddCommand(add, rm, newJobAdapterListCmd(g))
	return cmd
}

func printAdapterAnswer(cmd *cobra.Command, g *globals, ans *api.ServiceAdapterAnswer, did string) error {
	if g.json() {
		return printJSON(cmd.OutOrStdout(), ans)
	}
	fmt.Fprintln(cmd.OutOrStdout(), adapterAnswerLine(ans, did))
	return nil
}

// adapterAnswerLine says what an add or rm (did) committed and how the
// running replicas take it: in place, or by a rollout and why.
func adapterAnswerLine(ans *api.ServiceAdapterAnswer, did string) string {
	from := ""
	if ans.URI != "" {
		from = " from " + ans.URI
	}
	if !ans.Changed {
		return fmt.Sprintf("adapter %s%s: already in version %d, nothing to change", ans.Name, from, ans.Version)
	}
	how := fmt.Sprintf("applied in place on %d replicas (they take it within seconds)", ans.InPlace)
	if ans.Rollout {
		how = "rolling the replicas"
		if ans.InPlace > 0 {
			how = fmt.Sprintf("applied in place on %d replicas, rolling the others", ans.InPlace)
		}
		how += rollCause(ans.NewPaths, "the adapter's directory")
	}
	return fmt.Sprintf("adapter %s %s%s: version %d, %s", ans.Name, did, from, ans.Version, how)
}

// rollCause says why an update rolls the replicas when paths, new to
// their sandboxes, are the cause; what names those paths for the reader.
// A running replica reads only the local paths its spec named when it
// started (Landlock), so a new one must start with them.
func rollCause(paths []string, what string) string {
	switch len(paths) {
	case 0:
		return " (a rollout: ark job status shows it)"
	case 1:
		return fmt.Sprintf(": %s %s is new to them (a replica reads only the local paths its spec named when it started); new replicas start with it", what, paths[0])
	}
	return fmt.Sprintf(": %s %s are new to them (a replica reads only the local paths its spec named when it started); new replicas start with them", what, strings.Join(paths, ", "))
}
