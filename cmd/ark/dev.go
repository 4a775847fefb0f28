package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ark-sched/ark/internal/pki"
	"github.com/ark-sched/ark/scheduler/server"
	"github.com/ark-sched/ark/worker/agent"
)

func newDevCmd(g *globals) *cobra.Command {
	var (
		dataDir  string
		httpAddr string
		agents   int
		fakeGPUs string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a one-process dev cluster: one server and two agents with fake GPUs",
		Long: `Run a single-voter Raft server and agents with fake GPUs in one process,
on 127.0.0.1. State lives under --data-dir and survives a restart with the
same directory. It prints one banner (the API address, the agents, what
to run next); its logs go to DATA-DIR/dev.log, or to stderr when
--log-level is given.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if agents < 1 || agents > 16 {
				return usagef("--agents must be 1..16, got %d", agents)
			}
			_, portStr, err := net.SplitHostPort(httpAddr)
			if err != nil {
				return usagef("--http %q: %v", httpAddr, err)
			}
			port, err := strconv.Atoi(portStr)
			if err != nil || port <= 0 || port >= 65535 {
				return usagef("--http %q: want a fixed port (Raft uses the next one)", httpAddr)
			}
			if dataDir == "" {
				home, _ := os.UserHomeDir()
				dataDir = filepath.Join(home, ".ark", "dev")
			}
			// The logs are the cluster's, not the user's next step: they
			// go to a file unless --log-level asks for them here.
			logFile := ""
			if !cmd.Flags().Changed("log-level") {
				logFile = filepath.Join(dataDir, devLogName)
			}
			log, err := devLogger(g, logFile)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			out := cmd.OutOrStdout()
			id, err := g.identity(true)
			if err != nil {
				return err
			}
			// Raft stays on loopback whatever --http says: the dev server is
			// its only voter, and no one else has any business on its port.
			banner := func(api string, names []string) {
				printDevBanner(out, api, names, fakeGPUs, dataDir, logFile)
			}
			return runDev(cmd.Context(), log, dataDir, httpAddr, net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1)), agents, fakeGPUs, id, banner)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "directory for all state (default ~/.ark/dev)")
	f.StringVar(&httpAddr, "http", "127.0.0.1:4680", "address of the HTTP API (Raft uses the next port)")
	f.IntVar(&agents, "agents", 2, "number of agents")
	f.StringVar(&fakeGPUs, "fake-gpus", "4xH200:141Gi", "fake GPUs of each agent")
	return cmd
}

// runDev runs the dev cluster until ctx ends; banner is called once it
// serves, with the API's address and the agents' names.
func runDev(ctx context.Context, log *zap.Logger, dataDir, httpAddr, raftAddr string, agents int, fakeGPUs string, id *pki.Identity, banner func(api string, agents []string)) error {
	if err := checkDevPorts(httpAddr, raftAddr); err != nil {
		return err
	}
	store, err := devTaskStore(dataDir)
	if err != nil {
		return err
	}
	// Dev mode encrypts checkpoints too, with a cluster key of its own.
	clusterKey, err := devClusterKey(dataDir)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Name: "dev", DataDir: filepath.Join(dataDir, "server"), HTTPAddr: httpAddr, RaftAddr: raftAddr,
		Bootstrap: true, Logger: log, TLS: id, CheckpointStore: store, ClusterKey: clusterKey,
		PreemptMinRuntime: 0, // dev: preemption takes effect at once, to try it
		JobGCThreshold:    server.DefaultJobGCThreshold,
	})
	if err != nil {
		return err
	}
	// The server outlives the agents, so that the agents' last reports of
	// the tasks they stop on the way out are committed.
	srvCtx, stopSrv := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSrv()
	agentCtx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Run(srvCtx) }()

	// Agents start once the server leads, so they register at once.
	for deadline := time.Now().Add(30 * time.Second); !srv.IsLeader(); {
		if time.Now().After(deadline) || ctx.Err() != nil {
			stopSrv()
			<-srvErr
			return fmt.Errorf("dev server did not become leader within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// With TLS the in-process agents present the server's certificate,
	// which the agent routes accept (servers forward agents' requests).
	var agentTLS, agentServe *tls.Config
	if id != nil {
		agentTLS = id.HTTPClient()
		if agentServe, err = id.AgentServer(); err != nil {
			stopSrv()
			<-srvErr
			return err
		}
	}
	var wg sync.WaitGroup
	agentErr := make(chan error, agents)
	var names []string
	for i := 1; i <= agents; i++ {
		name := fmt.Sprintf("dev-%d", i)
		names = append(names, name)
		a, err := agent.New(agent.Config{
			Name: name, Servers: []string{srv.HTTPAddr()}, DataDir: filepath.Join(dataDir, "agents", name),
			FakeGPUs: fakeGPUs, Address: "127.0.0.1", Logger: log, TLS: agentTLS, ServeTLS: agentServe,
		})
		if err != nil {
			stopAgents()
			wg.Wait()
			stopSrv()
			<-srvErr
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); agentErr <- a.Run(agentCtx) }()
	}
	scheme := "http://"
	if id != nil {
		scheme = "https://"
	}
	log.Info("dev cluster running", zap.String("api", scheme+srv.HTTPAddr()), zap.String("data_dir", dataDir), zap.Int("agents", agents))
	waitDevNodes(ctx, srv, agents)
	banner(scheme+srv.HTTPAddr(), names)

	var first error
	select {
	case <-ctx.Done():
	case first = <-agentErr:
	case first = <-srvErr:
		stopAgents()
		wg.Wait()
		return first
	}
	stopAgents()
	wg.Wait()
	stopSrv()
	if err := <-srvErr; first == nil {
		first = err
	}
	return first
}

// checkDevPorts says which port of a dev cluster is taken, and which flag
// moves it, before anything else starts: a second ark dev otherwise fails
// on a data dir lock or a bare "address already in use" deep in the
// server's start. A port that frees up or fills between this check and
// the server's bind gets the server's own error.
func checkDevPorts(httpAddr, raftAddr string) error {
	for _, p := range []struct{ addr, what string }{
		{httpAddr, "the HTTP API port (--http)"},
		{raftAddr, "the Raft port (the --http port + 1)"},
	} {
		ln, err := net.Listen("tcp", p.addr)
		if err == nil {
			ln.Close()
			continue
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s %s is already in use: is another `ark dev` or `ark server` running there? "+
				"Stop it, or start this one elsewhere with --http HOST:PORT (and its own --data-dir)", p.what, p.addr)
		}
		return fmt.Errorf("%s %s: %w", p.what, p.addr, err)
	}
	return nil
}

// devTaskStore makes the dev cluster's checkpoint store reachable by its
// tasks, which run as an unprivileged user when ark dev runs as root
// (agent.DefaultTaskUser): the data dir becomes search-only for others
// (0711: nothing in it can be listed, the server's own files stay 0700) and
// the store lives beside the server's dir, not in it. The agents give each
// job its own directory in the store (worker/agent/ckptdir.go).
func devTaskStore(dataDir string) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", err
	}
	store := filepath.Join(abs, "checkpoints")
	if err := os.MkdirAll(store, 0o711); err != nil {
		return "", fmt.Errorf("create dev checkpoint store: %w", err)
	}
	if os.Geteuid() == 0 {
		for _, d := range []string{abs, store} {
			if err := os.Chmod(d, 0o711); err != nil {
				return "", fmt.Errorf("let dev tasks reach %s: %w", d, err)
			}
		}
	}
	return "file://" + store, nil
}
