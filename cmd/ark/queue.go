package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() {
	extraCommands = append(extraCommands, func(g *globals) *cobra.Command {
		cmd := &cobra.Command{Use: "queue", Short: "Inspect queues (quotas, fair-share weights, usage)"}
		cmd.AddCommand(&cobra.Command{
			Use:   "list",
			Short: "List queues: GPU quota, weight, GPUs in use, running and pending jobs",
			Args:  exactArgs(0, "no arguments"),
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := g.client()
				if err != nil {
					return usageError{err}
				}
				qs, err := c.Queues(cmd.Context())
				if err != nil {
					return err
				}
				if g.json() {
					return printJSON(cmd.OutOrStdout(), qs)
				}
				tw := newTable(cmd.OutOrStdout())
				fmt.Fprintln(tw, "QUEUE\tQUOTA GPUS\tWEIGHT\tBORROW\tUSED GPUS\tBORROWED\tRUNNING\tPENDING")
				for _, q := range qs {
					quota := "-"
					if v, _ := q["quotaGPUs"].(float64); v > 0 {
						quota = fmt.Sprint(v)
					}
					fmt.Fprintf(tw, "%v\t%s\t%v\t%v\t%v\t%v\t%v\t%v\n", q["name"], quota, q["weight"], q["borrow"] == true, q["usedGPUs"], q["borrowedGPUs"], q["runningJobs"], q["pendingJobs"])
				}
				return tw.Flush()
			},
		})
		return cmd
	})
}
