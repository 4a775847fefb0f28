package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api"
)

// `ark job adapter list ID`: what each serving replica of a builtin
// service says of its adapters (GET /v1/jobs/ID/adapters, asked of the
// replicas at the time of the call): where each is held (active in
// compute memory, host memory, the store), loading, or failed and why.
// vLLM answers GET /v1/models per server; a service's replicas may
// differ for seconds after an add, and this shows them side by side.

func newJobAdapterListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list ID",
		Aliases: []string{"ls"},
		Short:   "List each serving replica's adapters: active, host or store tier, loading, or failed and why",
		Args:    exactArgs(1, "a job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, j, err := clientAndJob(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			st, err := c.ServiceAdapterStates(cmd.Context(), j.ID, "")
			if err != nil {
				return fmt.Errorf("list adapters of %s: %w", j.ID, err)
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), st)
			}
			writeAdapterStates(cmd.OutOrStdout(), st)
			return nil
		},
	}
}

// writeAdapterStates is the table of list: one row per replica and
// adapter; a replica that did not answer gets one row saying why.
func writeAdapterStates(w io.Writer, st *api.ServiceAdapterStates) {
	if len(st.Replicas) == 0 {
		fmt.Fprintf(w, "%s (version %d) has no serving replica\n", st.Job, st.Version)
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "RANK\tALLOC\tNODE\tVERSION\tADAPTER\tSTATE\tURI / ERROR")
	for _, r := range st.Replicas {
		if r.Error != "" {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t-\tunknown\t%s\n", r.Rank, r.Alloc, r.Node, r.JobVersion, r.Error)
			continue
		}
		if len(r.Adapters) == 0 {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t-\t-\t(base only)\n", r.Rank, r.Alloc, r.Node, r.JobVersion)
		}
		for _, a := range r.Adapters {
			detail := a.URI
			if a.Error != "" {
				detail = a.Error
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Rank, r.Alloc, r.Node, r.JobVersion, a.Name, a.Tier, detail)
		}
	}
	tw.Flush()
}
