package main

import (
	"context"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/internal/gctune"
	"github.com/ark-sched/ark/scheduler/cluster"
	"github.com/ark-sched/ark/scheduler/sched"
	"github.com/ark-sched/ark/scheduler/server"
)

func newServerCmd(g *globals) *cobra.Command {
	host, _ := os.Hostname()
	var (
		cfg             server.Config
		bootstrapExpect int
		gcHeadroomMiB   int
		join            []string
		tokenFile       string
		clusterKeyFile  string
		queuesFile      string
		preemption      = true
		backfill        = true
		limits          = server.DefaultLimits
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run an Ark server (Raft-replicated state, scheduler, HTTP API)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.DataDir == "" {
				return usagef("--data-dir is required")
			}
			if bootstrapExpect < 0 || bootstrapExpect > 9 {
				return usagef("--bootstrap-expect must be 0..9 (1, 3 or 5 servers; 0 waits to be added with ark server join), got %d", bootstrapExpect)
			}
			if !slices.Contains(sched.Orders, cfg.QueueOrder) {
				return usagef("--queue-order must be one of %s, got %q", strings.Join(sched.Orders, ", "), cfg.QueueOrder)
			}
			if cluster.CheckMultiplier(cfg.RaftMultiplier) != nil {
				return usagef("--raft-multiplier must be 1..%d (1: fastest failover), got %d", cluster.MaxMultiplier, cfg.RaftMultiplier)
			}
			if cfg.QueueAgeAfter < 0 {
				return usagef("--queue-age-after must be positive (or 0: the order's default), got %s", cfg.QueueAgeAfter)
			}
			if gcHeadroomMiB < 0 {
				return usagef("--gc-headroom-mib must not be negative (0: Go's GOGC alone), got %d", gcHeadroomMiB)
			}
			if cfg.RPCHoldTimeout < 0 {
				return usagef("--rpc-hold-timeout must not be negative (0: answer at once), got %s", cfg.RPCHoldTimeout)
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			// One server alone bootstraps itself. With --bootstrap-expect
			// K > 1 it forms a cluster with the servers it joins or that
			// join it (none need be up yet); with --join alone it joins.
			cfg.Bootstrap = bootstrapExpect == 1 && len(join) == 0
			cfg.BootstrapExpect = bootstrapExpect
			for _, j := range join {
				cfg.Join = append(cfg.Join, strings.TrimPrefix(strings.TrimPrefix(j, "http://"), "https://"))
			}
			if queuesFile != "" {
				if cfg.Queues, err = server.LoadQueues(queuesFile); err != nil {
					return usageError{err}
				}
			}
			if tokenFile != "" {
				if cfg.ACL, err = server.LoadTokens(tokenFile); err != nil {
					return usageError{err}
				}
			}
			if clusterKeyFile != "" {
				if cfg.ClusterKey, err = server.LoadClusterKey(clusterKeyFile); err != nil {
					return usageError{err}
				}
			}
			cfg.NoPreemption, cfg.NoBackfill = !preemption, !backfill
			if cfg.TLS, err = g.identity(true); err != nil {
				return err
			}
			cfg.Logger = log
			cfg.Limits = &limits
			s, err := server.New(cfg)
			if err != nil {
				return err
			}
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			go gctune.Run(ctx, uint64(gcHeadroomMiB)<<20)
			return s.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", host, "server name, unique in the cluster")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the Raft log, snapshots and state")
	f.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:4680", "address of the HTTP API")
	f.StringVar(&cfg.RaftAddr, "raft", "127.0.0.1:4681", "address for Raft traffic between servers (a host name is resolved once, at start: the server binds and advertises that IP)")
	f.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "address other servers dial for Raft, host:port, when not --raft: a stable DNS name (a StatefulSet pod's) keeps the server's Raft identity when it comes back on another IP; looked up at each dial")
	f.StringVar(&cfg.HTTPAdvertise, "http-advertise", "", "address other servers are told for this server's API (leader forwarding, cluster formation), when not --http: a stable DNS name")
	f.IntVar(&bootstrapExpect, "bootstrap-expect", 1, "number of servers that form a new cluster together (1: this server alone; 0: wait to be added by ark server join); with K > 1 the first server needs no --join, the others --join it")
	f.StringSliceVar(&join, "join", nil, "HTTP addresses of the other servers (to form a cluster with, or to join a running one)")
	f.DurationVar(&cfg.HeartbeatTTL, "heartbeat-ttl", server.DefaultHeartbeatTTL, "how long a node may miss heartbeats before it is marked down (the least: see --max-heartbeats-per-second)")
	f.Float64Var(&cfg.MaxHeartbeatsPerSecond, "max-heartbeats-per-second", server.DefaultMaxHeartbeatsPerSecond, "heartbeats a second the leader takes at most: nodes are told a TTL of max(--heartbeat-ttl, 3 x nodes / this), so a large cluster heartbeats less often instead of overwhelming the leader (-1: always --heartbeat-ttl)")
	f.IntVar(&cfg.RaftMultiplier, "raft-multiplier", 1, "scale Raft's timeouts (heartbeat and election 500 ms, leader lease 250 ms) by this, 1..10: 1 fails over fastest; raise it where servers share starved cores and the leader loses its lease under load (docs/operations.md)")
	f.IntVar(&gcHeadroomMiB, "gc-headroom-mib", 256, "let the heap grow at least this many MiB past the live state before Go collects (GOGC's 100% of it when that is more; a GOGC variable sets that share, GOGC=off turns this off; 0: GOGC alone): a small state no longer collects every few MB (docs/operations.md)")
	f.DurationVar(&cfg.RPCHoldTimeout, "rpc-hold-timeout", server.DefaultRPCHoldTimeout, "how long a follower holds a write while no leader is known (an election) before answering 503: clients see a slower answer instead of an error to back off from (0: answer at once)")
	f.Uint64Var(&cfg.SnapshotThreshold, "raft-snapshot-threshold", 0, "log entries between automatic Raft snapshots (default 8192)")
	f.DurationVar(&cfg.SnapshotInterval, "raft-snapshot-interval", 0, "how often Raft checks whether to snapshot (default 2m)")
	f.StringVar(&queuesFile, "queues-file", "", "queues with GPU quotas and fair-share weights: a YAML list of {name, quotaGPUs, weight, borrow}")
	f.BoolVar(&preemption, "preemption", true, "let a pending job evict lower-priority gangs (and a queue reclaim GPUs others borrowed past their quota) when it fits nowhere else")
	f.StringVar(&cfg.QueueOrder, "queue-order", sched.DefaultOrder, "order of a queue's pending jobs: shortest-all (the shortest declared maxRuntime first whatever the priority, which acts through preemption; none declared last), shortest (by priority, then shortest first) or submission (by priority, then FIFO); with the first two a job waiting --queue-age-after goes ahead of all that have not")
	f.DurationVar(&cfg.QueueAgeAfter, "queue-age-after", 0, "with --queue-order shortest-all or shortest: how long a job waits before it goes ahead of those that have not waited as long (0: 5m for shortest-all, 30m for shortest)")
	f.BoolVar(&cfg.QueueAgeTiers, "queue-age-tiers", false, "with --queue-order shortest: a waiting job climbs the pending priorities one at a time on its way to --queue-age-after (a third of it each with three priorities pending), instead of all at once")
	f.DurationVar(&cfg.PreemptMinRuntime, "preemption-min-runtime", server.DefaultPreemptMinRuntime, "how long an allocation runs before it may be preempted (0: at once); keeps the same low-priority work from being evicted again and again")
	f.DurationVar(&cfg.JobGCThreshold, "job-gc-threshold", server.DefaultJobGCThreshold, "how long finished jobs (and their allocations) are kept before they are forgotten; 0 keeps them")
	f.BoolVar(&backfill, "backfill", true, "hold nodes for the first job that fits nowhere; later jobs use them only if their maxRuntime ends before it can start")
	f.StringVar(&tokenFile, "token-file", "", "require tokens: a file of lines TOKEN ROLE (management, agent, namespace:NAME)")
	f.StringVar(&clusterKeyFile, "cluster-key-file", "", "encrypt checkpoints per namespace: a file (mode 0600) holding the 32-byte key (base64) that wraps the namespaces' keys; every server of the cluster needs the same file")
	f.StringVar(&cfg.MetricsAddr, "metrics-listen", "", "also serve GET /metrics, without a token, on this address (for a Prometheus on a private network; /metrics on --http needs a token when tokens are on)")
	f.BoolVar(&cfg.EnableDebug, "enable-debug", false, "serve Go's profiler under /debug/pprof/ on the HTTP address")
	f.BoolVar(&cfg.RaftDefaults, "raft-untuned", false, "use hashicorp/raft's own batching defaults (MaxAppendEntries 64, no BatchApplyCh): the baseline of ark bench raft")
	_ = f.MarkHidden("raft-untuned")
	f.BoolVar(&cfg.InsecureRaft, "insecure-raft", false, "allow Raft without TLS on a non-loopback --raft address (only on a network no one but the servers can reach: anyone who reaches the port can commit any command)")
	f.StringVar(&cfg.CheckpointStore, "checkpoint-store", "", "URI under which jobs checkpoint (default file://DATA-DIR/checkpoints)")
	f.IntVar(&limits.MaxConnsPerClient, "max-conns-per-client", limits.MaxConnsPerClient, "open connections one IP address may hold (0: no cap)")
	f.Float64Var(&limits.TenantRate, "tenant-rate", limits.TenantRate, "requests per second a namespace token may make (429 past it; agents and management are not limited; 0: no limit)")
	f.IntVar(&limits.TenantBurst, "tenant-burst", limits.TenantBurst, "requests a namespace token may make at once above --tenant-rate")
	f.Float64Var(&limits.ServiceRate, "service-rate", limits.ServiceRate, "requests per second to one namespace's services (/v1/services/...) at this server, every caller together; 429 with Retry-After past it; such calls then leave --tenant-rate alone (0: none, and they count against --tenant-rate)")
	f.IntVar(&limits.ServiceBurst, "service-burst", limits.ServiceBurst, "requests to one namespace's services at once above --service-rate")
	f.IntVar(&limits.NamespaceMaxJobs, "namespace-max-jobs", limits.NamespaceMaxJobs, "unfinished (pending or running) jobs one namespace may have; submissions past it get 403 (0: no cap)")
	f.DurationVar(&limits.BodyTimeout, "body-timeout", limits.BodyTimeout, "how long a request's body may take to arrive")
	f.Int64Var(&limits.SnapshotMaxBytes, "snapshot-max-bytes", limits.SnapshotMaxBytes, "largest snapshot ark operator snapshot restore may upload (a follower streams it to the leader)")
	f.DurationVar(&limits.SnapshotTimeout, "snapshot-timeout", limits.SnapshotTimeout, "how long a snapshot save or restore may take to transfer (instead of --body-timeout)")
	cmd.AddCommand(newServerJoinCmd(g))
	return cmd
}
