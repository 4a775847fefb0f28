package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/cluster"
	"github.com/ark-sched/ark/scheduler/state"
)

// newRaftRecoverCmd is `ark operator raft recover`: the offline way out for
// a cluster that lost its quorum for good (Consul's peers.json).
func newRaftRecoverCmd(g *globals) *cobra.Command {
	var dataDir, peersFile string
	cmd := &cobra.Command{
		Use:   "recover --data-dir DIR --peers-file FILE",
		Short: "Offline: rewrite a stopped server's Raft configuration to the servers in FILE (a cluster that lost its quorum for good)",
		Long: `Rewrite the Raft configuration of a STOPPED server so that the servers listed in
the peers file form the cluster, for a cluster that lost its quorum for good
(two of three servers destroyed). Run it on every surviving server with the
same file, then start them: they elect a leader among themselves, with the
state the surviving servers had. Add new servers afterwards with --join.

The peers file is Consul's peers.json format:
  [{"id": "s1", "address": "10.0.0.1:4681", "non_voter": false}]
id is the server's --name, address its --raft address.

Entries the surviving servers had but the old cluster never committed are
kept: use this only when the lost servers cannot come back.`,
		Example: `  echo '[{"id": "s1", "address": "10.0.0.1:4681"}]' > peers.json
  systemctl stop ark-server
  ark operator raft recover --data-dir /var/lib/ark/server --peers-file peers.json
  systemctl start ark-server`,
		Args: exactArgs(0, "no arguments (use --data-dir and --peers-file)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" || peersFile == "" {
				return usagef("recover needs --data-dir (the stopped server's) and --peers-file")
			}
			peers, err := cluster.ReadPeersFile(peersFile)
			if err != nil {
				return usageError{err}
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			// The server keeps Raft under DATA-DIR/raft (server.New).
			if err := cluster.Recover(filepath.Join(dataDir, "raft"), state.NewFSM(log), peers, log); err != nil {
				return err
			}
			var names []string
			for _, p := range peers {
				names = append(names, p.ID+"="+p.Address)
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"dataDir": dataDir, "peers": names})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "recovered %s: the Raft configuration is now %s; start the server(s) on it\n", dataDir, strings.Join(names, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the stopped server's --data-dir")
	cmd.Flags().StringVar(&peersFile, "peers-file", "", "JSON list of the servers of the recovered cluster: [{\"id\", \"address\", \"non_voter\"}]")
	return cmd
}
