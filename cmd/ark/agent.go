package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/internal/secretfile"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/worker/agent"
)

func newAgentCmd(g *globals) *cobra.Command {
	host, _ := os.Hostname()
	var (
		cfg       agent.Config
		logMax    string
		tokenFile string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: register GPUs, run tasks, report back",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.DataDir == "" {
				return usagef("--data-dir is required")
			}
			if len(cfg.Servers) == 0 {
				return usagef("--servers is required")
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if cfg.LogMaxBytes, err = spec.Quantity(logMax).Bytes(); err != nil || cfg.LogMaxBytes < 4096 {
				return usagef("--log-max-size must be a size of at least 4Ki, got %q", logMax)
			}
			if cfg.LogKeep < 0 {
				return usagef("--log-keep must be >= 0")
			}
			if cfg.Token = g.token; tokenFile != "" {
				if cfg.Token, err = readTokenFile(tokenFile); err != nil {
					return usageError{err}
				}
			}
			id, err := g.identity(true)
			if err != nil {
				return err
			}
			if id != nil {
				cfg.TLS = id.HTTPClient()
				if cfg.ServeTLS, err = id.AgentServer(); err != nil {
					return usageError{err}
				}
			}
			cfg.Logger = log
			a, err := agent.New(cfg)
			if err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", host, "node name, unique in the cluster")
	f.StringSliceVar(&cfg.Servers, "servers", nil, "servers' HTTP addresses, comma-separated")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the node ID, task directories and logs")
	f.StringVar(&cfg.FakeGPUs, "fake-gpus", "", "simulate GPUs instead of discovering them, e.g. 8xH200:141Gi")
	f.StringVar(&cfg.MockNVML, "mock-nvml", "", "discover GPUs through go-nvml's mock of a whole machine (dgxh100, dgxh200): the real NVML code path without a GPU")
	f.StringVar(&cfg.Address, "address", "", "address other nodes reach this one at (default: 127.0.0.1 with loopback servers, else the first non-loopback IPv4)")
	f.StringVar(&cfg.HTTPAddr, "http", "", "address the agent serves task logs on (default ADDRESS:0)")
	f.StringVar(&cfg.MetricsAddr, "metrics-listen", "", "also serve GET /metrics, every family included, without a token, on this address (for a Prometheus on a private network; on --http, with tokens on, the task families need the servers' credential)")
	f.StringVar(&cfg.TaskUser, "task-user", "", "run tasks as this unprivileged user, name or uid (the agent runs as root; root is refused); default: nobody when the agent runs as root, else the agent's own user")
	f.StringVar(&logMax, "log-max-size", "64Mi", "rotate a task's stdout or stderr log at this size")
	f.IntVar(&cfg.LogKeep, "log-keep", 3, "rotated task log files to keep per stream")
	f.StringVar(&cfg.Fabric, "fabric", "", "network domain of this node (rack or RDMA leaf switch): multi-node gangs prefer nodes of one fabric")
	f.StringVar(&tokenFile, "token-file", "", "file (mode 0600) holding the agent token: unlike --token, not visible in ps; needed only until the node has registered")
	f.DurationVar(&cfg.StopGrace, "stop-grace", 0, "time between SIGTERM and SIGKILL when a task is stopped (default 10s)")
	f.BoolVar(&cfg.KeepTasksOnExit, "keep-tasks-on-exit", false, "on SIGTERM, leave tasks running for the agent's next run on this data dir to re-attach to (a restart neither stops nor fails jobs); default: stop them")
	return cmd
}

// readTokenFile reads a token from a file only its owner may read.
func readTokenFile(path string) (string, error) {
	if err := secretfile.Check(path); err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--token-file %s is empty", path)
	}
	return tok, nil
}
