package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

func newNodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Inspect nodes"}
	cmd.AddCommand(newNodeListCmd(g), newNodeStatusCmd(g), newNodeDrainCmd(g), newNodeEligibilityCmd(g))
	return cmd
}

func newNodeDrainCmd(g *globals) *cobra.Command {
	var (
		deadline time.Duration
		disable  bool
		wait     bool
	)
	cmd := &cobra.Command{
		Use:   "drain NAME",
		Short: "Move work off a node: no new placements; jobs still on it at the deadline restart elsewhere",
		Args:  exactArgs(1, "a node name or ID"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if deadline < 0 {
				return usagef("--deadline must not be negative")
			}
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			n, err := c.DrainNode(cmd.Context(), args[0], !disable, deadline)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if g.json() {
				// Text says where the drain stands at each step; JSON
				// prints the node once, at the end (after --wait).
				w = io.Discard
				defer func() {
					if err == nil {
						err = printJSON(cmd.OutOrStdout(), n)
					}
				}()
			}
			if disable {
				fmt.Fprintf(w, "drain of %s cancelled; it stays ineligible until ark node eligibility %s --enable\n", n.Name, n.Name)
				return nil
			}
			fmt.Fprintf(w, "draining %s: no new placements; jobs still there at %s move elsewhere\n", n.Name, n.Drain.Deadline.Local().Format(time.DateTime))
			for wait && n.Drain != nil {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(500 * time.Millisecond):
				}
				if n, err = c.Node(cmd.Context(), n.ID); err != nil {
					return err
				}
			}
			if wait {
				fmt.Fprintf(w, "%s is drained\n", n.Name)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&deadline, "deadline", time.Hour, "how long jobs may run on before they are moved (0s: now)")
	cmd.Flags().BoolVar(&disable, "disable", false, "cancel the drain")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until nothing runs on the node")
	return cmd
}

func newNodeEligibilityCmd(g *globals) *cobra.Command {
	var enable, disable bool
	cmd := &cobra.Command{
		Use:   "eligibility NAME --enable|--disable",
		Short: "Open or close a node to new placements (running work stays)",
		Args:  exactArgs(1, "a node name or ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if enable == disable {
				return usagef("give exactly one of --enable and --disable")
			}
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			n, err := c.SetNodeEligibility(cmd.Context(), args[0], enable)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), n)
			}
			state := "eligible"
			if n.Ineligible {
				state = "ineligible"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is %s\n", n.Name, state)
			return nil
		},
	}
	cmd.Flags().BoolVar(&enable, "enable", false, "take new placements")
	cmd.Flags().BoolVar(&disable, "disable", false, "take no new placements")
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
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", n.Name, n.ID, nodeState(n), gpuSummary(n), n.CPUMilli/1000, spec.FormatBytes(n.MemoryBytes), n.Address)
			}
			return tw.Flush()
		},
	}
}

// nodeState is a node's status with its scheduling state.
func nodeState(n *api.Node) string {
	switch {
	case n.Drain != nil:
		return n.Status + ",draining"
	case n.Ineligible:
		return n.Status + ",ineligible"
	}
	return n.Status
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
				n.Name, n.ID, nodeState(n), n.StatusInfo, n.Address, n.AgentAddr, n.CPUMilli/1000, spec.FormatBytes(n.MemoryBytes))
			if n.Fabric != "" {
				fmt.Fprintf(w, "Fabric   %s\n", n.Fabric)
			}
			// Each GPU's holders: one allocation, or the shares on it
			// ("a-0-1f (500m), b-0-2e (250m)").
			used := map[int][]string{}
			for _, a := range allocs {
				if !a.Terminal() {
					for _, gi := range a.GPUs {
						h := a.ID
						if a.GPUMilli > 0 {
							h = fmt.Sprintf("%s (%dm)", a.ID, a.GPUMilli)
						}
						used[gi] = append(used[gi], h)
					}
				}
			}
			fmt.Fprintln(w, "\nGPUs")
			tw := newTable(w)
			fmt.Fprintln(tw, "INDEX\tMODEL\tMEMORY\tNUMA\tNVLINK\tUUID\tPCI\tALLOCATION")
			for _, gp := range n.GPUs {
				holder := strings.Join(used[gp.Index], ", ")
				if holder == "" {
					holder = "-"
				}
				nvlink := "-"
				if len(gp.NVLinkPeers) > 0 {
					nvlink = fmt.Sprintf("domain %d (%d peers)", gp.NVLinkDomain, len(gp.NVLinkPeers))
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", gp.Index, gp.Model, spec.FormatBytes(gp.MemoryBytes), gp.NUMANode, nvlink, gp.UUID, orDash(gp.PCIBusID), holder)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(n.RDMA) == 0 {
				fmt.Fprintln(w, "\nRDMA     none")
				return nil
			}
			fmt.Fprintln(w, "\nRDMA")
			tw = newTable(w)
			fmt.Fprintln(tw, "DEVICE\tPORTS\tNETDEVS\tPCI\tNUMA")
			for _, d := range n.RDMA {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", d.Name, ints(d.Ports), strings.Join(d.Netdevs, ","), d.PCIBusID, d.NUMANode)
			}
			return tw.Flush()
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
