package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

func newNodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Inspect nodes"}
	cmd.AddCommand(newNodeListCmd(g), newNodeStatusCmd(g))
	return cmd
}

func newNodeListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List nodes",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			nodes, err := c.Nodes(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), nodes)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tID\tSTATUS\tGPUS\tCPU\tMEMORY\tADDRESS")
			for _, n := range nodes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", n.Name, n.ID, n.Status, gpuSummary(n), n.CPUMilli/1000, spec.FormatBytes(n.MemoryBytes), n.Address)
			}
			return tw.Flush()
		},
	}
}

// gpuSummary renders "4x NVIDIA H200 (141Gi)".
func gpuSummary(n *api.Node) string {
	if len(n.GPUs) == 0 {
		return "0"
	}
	count := map[string]int{}
	for _, g := range n.GPUs {
		count[fmt.Sprintf("%s (%s)", g.Model, spec.FormatBytes(g.MemoryBytes))]++
	}
	var parts []string
	for k, v := range count {
		parts = append(parts, fmt.Sprintf("%dx %s", v, k))
	}
	sort.Strings(parts)
	s := strings.Join(parts, ", ")
	if n.Fake {
		s += " [fake]"
	}
	return s
}

func newNodeStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Show a node's inventory and allocations",
		Args:  exactArgs(1, "a node name or ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			n, err := c.Node(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			allocs, _, err := c.NodeAllocations(cmd.Context(), n.ID, 0, 0)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"node": n, "allocations": allocs})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Name     %s\nID       %s\nStatus   %s %s\nAddress  %s (agent %s)\nCPU      %d cores\nMemory   %s\n",
				n.Name, n.ID, n.Status, n.StatusInfo, n.Address, n.AgentAddr, n.CPUMilli/1000, spec.FormatBytes(n.MemoryBytes))
			used := map[int]string{}
			for _, a := range allocs {
				if !a.Terminal() {
					for _, gi := range a.GPUs {
						used[gi] = a.ID
					}
				}
			}
			fmt.Fprintln(w, "\nGPUs")
			tw := newTable(w)
			fmt.Fprintln(tw, "INDEX\tMODEL\tMEMORY\tUUID\tPCI\tALLOCATION")
			for _, gp := range n.GPUs {
				holder := used[gp.Index]
				if holder == "" {
					holder = "-"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", gp.Index, gp.Model, spec.FormatBytes(gp.MemoryBytes), gp.UUID, gp.PCIBusID, holder)
			}
			return tw.Flush()
		},
	}
}
