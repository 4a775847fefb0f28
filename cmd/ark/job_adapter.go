package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api"
)

// `ark job adapter add|rm`: load or remove a LoRA adapter in the running
// replicas of a builtin service (POST|DELETE /v1/jobs/ID/adapters), with
// the update capability; the servers check the location against the
// namespace's storage and present the replicas their admin token.

func newJobAdapterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "adapter",
		Short: "Load or remove a LoRA adapter in a running builtin service's replicas",
		Long: `Load (add) or remove (rm) a LoRA adapter in every ready replica of a running builtin
inference service, without a restart: the servers check that the job's namespace may read
the location (as at submission) and call each replica. The change is the running replicas'
alone: a replica started later serves task.builtin.adapters, so change the spec with
ark job update for adapters that must stay. Needs the update capability, and servers with
a cluster key (checkpoint keys), whose namespace key the replicas' token is derived from.`,
	}
	var pinned bool
	add := &cobra.Command{
		Use:   "add ID NAME URI",
		Short: "Load a LoRA adapter (a checkpoint, or model://NAME[@V]) into a running service's replicas",
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
			return printAdapterAnswer(cmd, g, ans, "loaded")
		},
	}
	add.Flags().BoolVar(&pinned, "pinned", false, "never evict it from the replicas' host memory")
	rm := &cobra.Command{
		Use:   "rm ID NAME",
		Short: "Remove a LoRA adapter from a running service's replicas",
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
	fmt.Fprintf(cmd.OutOrStdout(), "adapter %s %s%s on %d replicas\n", ans.Name, did, from, len(ans.Replicas))
	return nil
}
