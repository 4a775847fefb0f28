package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api/client"
)

func newOperatorCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "operator", Short: "Administer the servers: Raft peers, snapshots and the audit log"}
	raftCmd := &cobra.Command{Use: "raft", Short: "Inspect and change the Raft peer set"}
	raftCmd.AddCommand(
		&cobra.Command{
			Use:   "list-peers",
			Short: "List the Raft peers: id, address, voter, leader, last index",
			Args:  exactArgs(0, "no arguments"),
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := g.client()
				if err != nil {
					return usageError{err}
				}
				peers, err := c.RaftPeers(cmd.Context())
				if err != nil {
					return err
				}
				if g.json() {
					return printJSON(cmd.OutOrStdout(), peers)
				}
				tw := newTable(cmd.OutOrStdout())
				fmt.Fprintln(tw, "ID\tADDRESS\tHTTP\tVOTER\tLEADER\tLAST INDEX")
				for _, p := range peers {
					last := fmt.Sprint(p.LastIndex)
					if p.Error != "" {
						last = "? (" + p.Error + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\t%s\n", p.ID, p.Address, p.HTTPAddr, p.Voter, p.Leader, last)
				}
				return tw.Flush()
			},
		},
		&cobra.Command{
			Use:   "remove-peer ID",
			Short: "Remove a server from the Raft peer set (a dead one, or before decommissioning)",
			Args:  exactArgs(1, "a peer ID"),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := g.client()
				if err != nil {
					return usageError{err}
				}
				if err := c.RemoveRaftPeer(cmd.Context(), args[0]); err != nil {
					return err
				}
				if g.json() {
					return printJSON(cmd.OutOrStdout(), map[string]string{"removed": args[0]})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
				return nil
			},
		},
		newRaftRecoverCmd(g),
	)
	snapCmd := &cobra.Command{Use: "snapshot", Short: "Save and restore the cluster state (backup and disaster recovery)"}
	snapCmd.AddCommand(
		&cobra.Command{
			Use:   "save FILE",
			Short: "Save a snapshot of the state (as the leader has it) to FILE",
			Args:  exactArgs(1, "a file"),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := g.client()
				if err != nil {
					return usageError{err}
				}
				rc, err := c.SnapshotSave(cmd.Context())
				if err != nil {
					return err
				}
				defer rc.Close()
				tmp := args[0] + ".partial"
				f, err := os.Create(tmp)
				if err != nil {
					return err
				}
				n, err := io.Copy(f, rc)
				if err == nil {
					err = f.Sync()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					os.Remove(tmp)
					return fmt.Errorf("save snapshot: %w", err)
				}
				if err := os.Rename(tmp, args[0]); err != nil {
					return err
				}
				if g.json() {
					return printJSON(cmd.OutOrStdout(), map[string]any{"file": args[0], "bytes": n})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "saved %d bytes to %s\n", n, args[0])
				return nil
			},
		},
		&cobra.Command{
			Use:   "restore FILE",
			Short: "Replace the whole cluster state with a saved snapshot",
			Args:  exactArgs(1, "a file"),
			RunE: func(cmd *cobra.Command, args []string) error {
				// Streamed from the file: a state of gigabytes is never
				// held in memory here.
				f, err := os.Open(args[0])
				if err != nil {
					return usagef("read snapshot: %v", err)
				}
				defer f.Close()
				st, err := f.Stat()
				if err != nil {
					return usagef("read snapshot: %v", err)
				}
				c, err := g.client()
				if err != nil {
					return usageError{err}
				}
				if err := c.SnapshotRestoreFrom(cmd.Context(), f, st.Size()); err != nil {
					return err
				}
				if g.json() {
					return printJSON(cmd.OutOrStdout(), map[string]any{"file": args[0], "bytes": st.Size()})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "restored the state from %s (%d bytes)\n", args[0], st.Size())
				return nil
			},
		},
	)
	cmd.AddCommand(raftCmd, snapCmd, newAuditCmd(), newNamespaceKeyCmd(g))
	return cmd
}

// newServerJoinCmd is `ark server join CLUSTER_ADDR`: ask a running cluster
// to add the server at --addr.
func newServerJoinCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "join CLUSTER_HTTP_ADDR",
		Short: "Add the server at --addr to the running cluster that CLUSTER_HTTP_ADDR belongs to",
		Args:  exactArgs(1, "the HTTP address of a server of the running cluster"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			self, err := c.ServerSelf(cmd.Context())
			if err != nil {
				return fmt.Errorf("ask the new server about itself: %w", err)
			}
			if self.HasState {
				return fmt.Errorf("server %s already belongs to a cluster (leader %q)", self.Name, self.Leader)
			}
			cl, err := clientFor(args[0])
			if err != nil {
				return usageError{err}
			}
			if err := cl.JoinServer(cmd.Context(), self.Server); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "server %s (raft %s) joined the cluster\n", self.Name, self.RaftAddr)
			return nil
		},
	}
}

func clientFor(addr string) (*client.Client, error) { return client.New(addr) }
