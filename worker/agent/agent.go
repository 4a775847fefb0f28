package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/worker/driver"
	"github.com/ark-sched/ark/worker/inventory"
)

// Config configures an agent.
type Config struct {
	// Name is the node's name, unique in the cluster.
	Name string
	// Servers are the servers' HTTP addresses.
	Servers []string
	// DataDir holds the node ID and the allocations' directories and logs.
	DataDir string
	// FakeGPUs, when set, replaces GPU discovery ("4xH200:141Gi").
	FakeGPUs string
	// Fabric labels the node's network domain (rack, RDMA leaf switch);
	// multi-node gangs prefer nodes of one fabric.
	Fabric string
	// MockNVML, when set, discovers GPUs through go-nvml's mock of a
	// whole machine ("dgxh200") instead of the real NVML.
	MockNVML string
	// Address is what other nodes use to reach this one (MASTER_ADDR).
	// Empty picks 127.0.0.1 when the servers are on loopback, else the
	// first non-loopback IPv4 address.
	Address string
	// HTTPAddr is where the agent serves logs; empty is Address:0.
	HTTPAddr string
	// StopGrace is how long a stopped task gets between SIGTERM and SIGKILL.
	StopGrace time.Duration
	// Token is the agent's API token (role agent), when the servers
	// require tokens.
	Token string
	// TLS, when set, is the client config for the servers' HTTPS API
	// (pki.Identity.HTTPClient with the agent's certificate).
	TLS *tls.Config
	// TaskUser is the unprivileged user tasks run as (a name or uid). An
	// agent running as root defaults it to DefaultTaskUser: tasks never run
	// as root. An agent running as another user runs tasks as itself.
	TaskUser string
	// LogMaxBytes and LogKeep rotate task logs (defaults 64 MiB, 3 kept).
	LogMaxBytes int64
	LogKeep     int
	Logger      *zap.Logger
}

// DefaultTaskUser is whom tasks run as under an agent running as root.
const DefaultTaskUser = "nobody"

// Agent runs one node.
type Agent struct {
	// reportKey keys the task tokens of task reports (auth.go).
	reportKey []byte
	cfg       Config
	log       *zap.Logger
	client    *client.Client
	inv       *inventory.Inventory
	drivers   map[string]driver.Driver
	ln        net.Listener

	cgroups *driver.Cgroups

	nodeID string
	ttl    time.Duration

	mu     sync.Mutex
	tasks  map[string]*task // by allocation ID
	taskWG sync.WaitGroup
}

// New discovers the node's inventory and binds the log server.
func New(cfg Config) (*Agent, error) {
	if cfg.Name == "" || cfg.DataDir == "" || len(cfg.Servers) == 0 {
		return nil, errors.New("agent: name, data dir and servers are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.TaskUser == "" && os.Geteuid() == 0 {
		cfg.TaskUser = DefaultTaskUser
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 10 * time.Second
	}
	client, err := client.New(cfg.Servers...)
	if err != nil {
		return nil, err
	}
	client.Token = cfg.Token
	if cfg.TLS != nil {
		client.SetTLS(cfg.TLS)
	}
	if cfg.Address == "" {
		cfg.Address = defaultAddress(client.Addrs())
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = net.JoinHostPort(cfg.Address, "0")
	}
	// 0711: nobody but the agent lists or reads the data dir (the report
	// key, node ID and every allocation's files are the agent's, 0600);
	// search only, so that a task reaches its own work directory
	// (allocs/ID/work, 0700, its user's) by path.
	if err := os.MkdirAll(cfg.DataDir, 0o711); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(cfg.DataDir, 0o711); err != nil {
		return nil, fmt.Errorf("restrict data dir: %w", err)
	}
	reportKey, err := loadReportKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	opts := inventory.Options{FakeGPUs: cfg.FakeGPUs, NodeName: cfg.Name}
	if cfg.MockNVML != "" {
		if opts.NVML, err = inventory.MockMachine(cfg.MockNVML); err != nil {
			return nil, err
		}
	}
	inv, err := inventory.Discover(opts)
	if err != nil {
		return nil, fmt.Errorf("discover inventory: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for agent http on %s: %w", cfg.HTTPAddr, err)
	}
	log := cfg.Logger.With(zap.String("node", cfg.Name))
	if cfg.TaskUser != "" {
		log.Info("tasks run as an unprivileged user", zap.String("task_user", cfg.TaskUser))
	} else {
		log.Info("tasks run as the agent's own (unprivileged) user", zap.Int("uid", os.Geteuid()))
	}
	cg, why := driver.DetectCgroups(driver.DefaultCgroupRoot)
	if cg == nil {
		log.Warn("tasks run without CPU and memory limits", zap.String("why", why))
	} else {
		log.Info("tasks run in cgroups v2 with their CPU and memory limits")
	}
	return &Agent{
		reportKey: reportKey,
		cgroups:   cg,
		cfg:       cfg, log: log, client: client, inv: inv, ln: ln,
		drivers: map[string]driver.Driver{driver.Exec{}.Name(): driver.Exec{}, driver.Builtin{}.Name(): driver.Builtin{}},
		tasks:   map[string]*task{},
	}, nil
}

// NodeID is the node's ID once registered.
func (a *Agent) NodeID() string { return a.nodeID }

// Run registers the node, re-attaches to the tasks an earlier run of the
// agent left running (after a crash), and runs its loops until ctx ends. On
// a clean shutdown it stops every task it runs and reports them.
func (a *Agent) Run(ctx context.Context) error {
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(a.ln) }()
	defer srv.Close()

	if err := a.register(ctx); err != nil {
		return err
	}
	a.log.Info("node registered", zap.String("id", a.nodeID), zap.Int("gpus", len(a.inv.GPUs)),
		zap.String("gpu_source", a.inv.Source), zap.String("logs", a.ln.Addr().String()))

	a.reattach(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.heartbeatLoop(ctx) }()
	a.syncLoop(ctx)
	wg.Wait()
	a.stopAll()
	return nil
}

// nodeIDFile keeps the node's ID across agent restarts.
func (a *Agent) loadNodeID() (string, error) {
	path := filepath.Join(a.cfg.DataDir, "node-id")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	return "", nil
}

func (a *Agent) register(ctx context.Context) error {
	id, err := a.loadNodeID()
	if err != nil {
		return err
	}
	node := &api.Node{
		ID: id, Name: a.cfg.Name, Address: a.cfg.Address, AgentAddr: a.ln.Addr().String(),
		GPUs: a.inv.GPUs, RDMA: a.inv.RDMA, CPUMilli: a.inv.CPUMilli, MemoryBytes: a.inv.MemoryBytes, Fake: a.inv.Fake,
		Fabric: a.cfg.Fabric,
	}
	backoff := 200 * time.Millisecond
	for {
		resp, err := a.client.RegisterNode(ctx, node)
		if err == nil {
			a.nodeID = resp.ID
			a.ttl, _ = time.ParseDuration(resp.HeartbeatTTL)
			if a.ttl <= 0 {
				a.ttl = 10 * time.Second
			}
			if id != resp.ID {
				if err := driver.WriteFileAtomic(filepath.Join(a.cfg.DataDir, "node-id"), []byte(resp.ID+"\n")); err != nil {
					return fmt.Errorf("save node id: %w", err)
				}
			}
			return nil
		}
		var ae *client.APIError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest {
			return fmt.Errorf("register node: %w", err)
		}
		a.log.Warn("registering node failed; retrying", zap.Error(err), zap.Duration("in", backoff))
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (a *Agent) heartbeatLoop(ctx context.Context) {
	for {
		if !sleep(ctx, a.ttl/3) {
			return
		}
		_, err := a.client.Heartbeat(ctx, a.nodeID)
		switch {
		case err == nil:
		case client.IsNotFound(err):
			a.log.Warn("servers do not know this node; registering again")
			if err := a.register(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("re-registering failed", zap.Error(err))
			}
		case ctx.Err() == nil:
			a.log.Warn("heartbeat failed", zap.Error(err))
		}
	}
}

// defaultAddress picks the address peers reach this node at.
func defaultAddress(servers []string) string {
	loopback := true
	for _, s := range servers {
		host := strings.TrimPrefix(strings.TrimPrefix(s, "http://"), "https://")
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			loopback = false
		}
	}
	if !loopback {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, addr := range addrs {
				if ipn, ok := addr.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
					return ipn.IP.String()
				}
			}
		}
	}
	return "127.0.0.1"
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
