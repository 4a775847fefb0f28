package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api"
)

// `ark job adapter add|rm`: add a LoRA adapter to a builtin service's
// spec or remove one (POST|DELETE /v1/jobs/ID/adapters), with the update
// capability: a job update the servers check as any (the location against
// the namespace's storage) and the running replicas take in place.

func newJobAdapterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "adapter",
		Short: "Add or remove a LoRA adapter of a builtin service, without a restart",
		Long: `Add (add) or remove (rm) a LoRA adapter of a builtin inference service: a new version of
its spec with task.builtin.adapters changed, checked as any update (the job's namespace must
be allowed to read the location, as at submission) and listed in ark job history. No replica
is replaced: each running replica loads the new adapter in the background (or drops the
removed one) within a few seconds, while it goes on answering; replicas started later (a
restart, a scale-out, a rollout) serve the spec's adapters. Needs the update capability.`,
	}
	var pinned bool
	add := &cobra.Command{
		Use:   "add ID NAME URI",
		Short: "Add a LoRA adapter (a checkpoint, or model://NAME[@V]) to a service",
		Args:  exactArgs(3, "a job ID, an adapter name and its checkpoint"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, j, err := clientAndJob(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			ans, err := c.AddServiceAdapter(cmd.Context(), j.ID, api.ServiceAdapterRequest{Name: args[1], URI: args[2], Pinned: pinned})
			if err != nil {
				return fmt.Errorf("add adapter %s to %s: %w", args[1], j.ID, err)
			}
			return printAdapterAnswer(cmd, g, ans, "added")
		},
	}
	add.Flags().BoolVar(&pinned, "pinned", false, "never evict it from the replicas' host memory (add it again to change this)")
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
	cmd.AddCommand(add, rm)
	return cmd
}

func printAdapterAnswer(cmd *cobra.Command, g *globals, ans *api.ServiceAdapterAnswer, did string) error {
	if g.json() {
		return printJSON(cmd.OutOrStdout(), ans)
	}
	from := ""
	if ans.URI != "" {
		from = " from " + ans.URI
	}
	if !ans.Changed {
		fmt.Fprintf(cmd.OutOrStdout(), "adapter %s%s: already in version %d, nothing to change\n", ans.Name, from, ans.Version)
		return nil
	}
	fmt.Fprintf(cmd.OutOrStdout(), "adapter %s %s%s: version %d, applied in place on %d replicas (they take it within seconds)\n", ans.Name, did, from, ans.Version, ans.InPlace)
	return nil
}
