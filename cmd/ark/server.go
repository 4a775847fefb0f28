package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/server"
)

func newServerCmd(g *globals) *cobra.Command {
	host, _ := os.Hostname()
	var (
		cfg             server.Config
		bootstrapExpect int
		join            []string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run an Ark server (Raft-replicated state, scheduler, HTTP API)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.DataDir == "" {
				return usagef("--data-dir is required")
			}
			if bootstrapExpect != 1 || len(join) > 0 {
				return usagef("this build forms single-server clusters only (--bootstrap-expect 1, no --join); multi-server formation is not implemented yet")
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			cfg.Bootstrap = true
			cfg.Logger = log
			s, err := server.New(cfg)
			if err != nil {
				return err
			}
			return s.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", host, "server name, unique in the cluster")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the Raft log, snapshots and state")
	f.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:4680", "address of the HTTP API")
	f.StringVar(&cfg.RaftAddr, "raft", "127.0.0.1:4681", "address for Raft traffic between servers")
	f.IntVar(&bootstrapExpect, "bootstrap-expect", 1, "number of servers to wait for before forming the cluster")
	f.StringSliceVar(&join, "join", nil, "HTTP addresses of servers to join")
	f.DurationVar(&cfg.HeartbeatTTL, "heartbeat-ttl", server.DefaultHeartbeatTTL, "how long a node may miss heartbeats before it is marked down")
	f.StringVar(&cfg.CheckpointStore, "checkpoint-store", "", "URI under which jobs checkpoint (default file://DATA-DIR/checkpoints)")
	return cmd
}
