package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// Errors of the write path.
var (
	// ErrNotLeader means this server is not the leader; forward the write.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader means the cluster has no leader now; retry later.
	ErrNoLeader = errors.New("no leader elected")
	// ErrShutdown means the node is closed.
	ErrShutdown = errors.New("raft is shut down")
	// ErrBusy means the leader could not take a write in time (its apply
	// queue stayed full): nothing was written, and trying again is safe.
	ErrBusy = errors.New("the leader is too busy to take the write; retry shortly")
)

// Config configures one server's Raft node.
type Config struct {
	// Name is the server's unique ID in the cluster.
	Name string
	// DataDir holds raft.db (log and stable store) and snapshots/.
	DataDir string
	// RaftAddr is the address to bind and advertise ("127.0.0.1:4681").
	RaftAddr string
	// RaftAdvertise, when set, is the address peers dial instead
	// (ParseAdvertise; a DNS name is kept as a name: advertise.go).
	RaftAdvertise string
	// Bootstrap makes a server with no Raft state a single-voter cluster.
	Bootstrap bool
	// Timeouts; zero values take the LAN defaults below.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// Multiplier scales the three timeouts above (Consul's and Nomad's
	// raft_multiplier): 1 (or 0) fails over fastest; a larger value lets
	// a starved server (shared cores, long GC pauses) keep its lease and
	// its followers, at the price of a failover that many times slower.
	// See MaxMultiplier and docs/operations.md.
	Multiplier int
	// SnapshotThreshold is the number of log entries between snapshots;
	// SnapshotInterval how often Raft checks it. Zero takes the defaults.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// MaxAppendEntries bounds how many entries one append (one fsync, one
	// message to followers) carries; zero takes the default.
	MaxAppendEntries int
	// Untuned keeps hashicorp/raft's own batching defaults (the baseline
	// the benchmark compares against).
	Untuned bool
	// TLS, when set, runs the Raft transport over mutual TLS with this
	// config (pki.Identity.Raft): only servers of the cluster's CA connect.
	TLS *tls.Config
	// InsecureRaft allows plain TCP on a non-loopback address.
	InsecureRaft bool
	// APIAddr is the server's HTTP API address, named in the answer to an
	// HTTP request that reaches the Raft port by mistake; may be empty.
	APIAddr string
	Logger  *zap.Logger
}

// LAN defaults. hashicorp/raft's own defaults (1 s heartbeat and election
// timeouts) target WANs; a LAN cluster fails over faster with these.
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 250 * time.Millisecond
	DefaultSnapshotThreshold  = 8192
	DefaultMaxAppendEntries   = 512
	// MaxMultiplier bounds Config.Multiplier: at 10 a leader's death is
	// noticed after 5 s and a new one elected within about 10 s, the
	// longest a client's retries (client.DefaultRetryFor) ride out.
	MaxMultiplier = 10
)

// CheckMultiplier says what is wrong with a --raft-multiplier value.
func CheckMultiplier(m int) error {
	if m < 1 || m > MaxMultiplier {
		return fmt.Errorf("raft multiplier must be 1..%d (1: fastest failover), got %d", MaxMultiplier, m)
	}
	return nil
}

// raftTimeouts are the timeouts a Config gives hashicorp/raft.
type raftTimeouts struct{ heartbeat, election, lease time.Duration }

// timeouts are cfg's timeouts (or the LAN defaults) times its multiplier.
func (cfg Config) timeouts() (raftTimeouts, error) {
	m := cfg.Multiplier
	if m == 0 {
		m = 1
	}
	if err := CheckMultiplier(m); err != nil {
		return raftTimeouts{}, err
	}
	k := time.Duration(m)
	return raftTimeouts{
		heartbeat: k * orDefault(cfg.HeartbeatTimeout, DefaultHeartbeatTimeout),
		election:  k * orDefault(cfg.ElectionTimeout, DefaultElectionTimeout),
		lease:     k * orDefault(cfg.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout),
	}, nil
}

// Node is a server's Raft participant.
type Node struct {
	raft      *raft.Raft
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore
	leaderCh  chan bool
	name      string
	log       *zap.Logger
	// hasState is set by BootstrapCluster (the server's formation
	// goroutine) and read by HTTP handlers: atomic.
	hasState  atomic.Bool
	closeOnce sync.Once
	closeErr  error
	// closed is set before Raft shuts down. With BatchApplyCh the apply
	// channel is buffered, and an Apply enqueued after shutdown would wait
	// forever, so Apply checks it first.
	closed atomic.Bool
}

// Open starts Raft over the server's data dir. A data dir that another
// process holds, or whose log cannot be read, is an error that says so:
// a server never starts on state it cannot trust.
func Open(cfg Config, fsm raft.FSM) (*Node, error) {
	if cfg.Name == "" || cfg.DataDir == "" || cfg.RaftAddr == "" {
		return nil, errors.New("cluster: name, data dir and raft address are required")
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Name)
	t, err := cfg.timeouts()
	if err != nil {
		return nil, err
	}
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = t.heartbeat, t.election, t.lease
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	if rc.SnapshotThreshold == 0 {
		rc.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	if !cfg.Untuned {
		rc.MaxAppendEntries = DefaultMaxAppendEntries
		if cfg.MaxAppendEntries > 0 {
			rc.MaxAppendEntries = cfg.MaxAppendEntries
		}
		// Concurrent Applies are taken off the apply channel together and
		// written as one batch: one fsync for many commands (group commit).
		rc.BatchApplyCh = true
	}
	rc.Logger = NewHCLog(log, "raft", HCLogLevel(log.Level()))
	leaderCh := make(chan bool, 16)
	rc.NotifyCh = leaderCh

	dbPath := filepath.Join(cfg.DataDir, "raft.db")
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        dbPath,
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second},
		NoSync:      false, // every log append is fsync'd before it is acknowledged
	})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("raft log %s is locked: is another server using data dir %s?", dbPath, cfg.DataDir)
		}
		return nil, fmt.Errorf("open raft log %s (refusing to start on a log that cannot be read): %w", dbPath, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 3, rc.Logger.Named("snapshot"))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open snapshot store in %s: %w", cfg.DataDir, err)
	}
	addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("raft address %q: %w", cfg.RaftAddr, err)
	}
	var advertise net.Addr = addr
	if addr.Port == 0 {
		advertise = nil // a test's ephemeral port: advertise what was bound
	}
	if cfg.RaftAdvertise != "" {
		if advertise, err = ParseAdvertise(cfg.RaftAdvertise); err != nil {
			store.Close()
			return nil, err
		}
		warnUnresolved(advertise, log)
	}
	if err := checkRaftBind(addr, cfg.TLS != nil, cfg.InsecureRaft); err != nil {
		store.Close()
		return nil, err
	}
	var transport *raft.NetworkTransport
	sniff := newHTTPSniffer(cfg.APIAddr, log.Named("raft"))
	var stream raft.StreamLayer
	if cfg.TLS != nil {
		stream, err = newTLSStream(cfg.RaftAddr, advertise, cfg.TLS, log.Named("raft-tls"), sniff)
	} else {
		stream, err = newTCPStream(cfg.RaftAddr, advertise, sniff)
	}
	if err == nil {
		transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: rc.Logger.Named("transport"),
		})
	}
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("listen for raft on %s: %w", cfg.RaftAddr, err)
	}
	hasState, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		transport.Close()
		store.Close()
		return nil, fmt.Errorf("read raft state in %s: %w", cfg.DataDir, err)
	}
	r, err := raft.NewRaft(rc, fsm, store, store, snaps, transport)
	if err != nil {
		transport.Close()
		store.Close()
		return nil, fmt.Errorf("start raft on %s (refusing to serve state it cannot read; restore a backup with ark operator snapshot restore, or empty the data dir and join the cluster again): %w", cfg.DataDir, err)
	}
	n := &Node{raft: r, transport: transport, store: store, leaderCh: leaderCh, name: cfg.Name, log: log}
	n.hasState.Store(hasState)
	if cfg.Bootstrap && !hasState {
		f := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
			ID: rc.LocalID, Address: transport.LocalAddr(), Suffrage: raft.Voter,
		}}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.Close()
			return nil, fmt.Errorf("bootstrap single-server cluster: %w", err)
		}
		log.Info("bootstrapped a single-voter raft cluster", zap.String("name", cfg.Name))
	}
	return n, nil
}

func orDefault(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

// Apply commits data through Raft and returns the FSM's response and the
// entry's index once it is committed and applied here. A response that is
// an error is returned as the error.
func (n *Node) Apply(ctx context.Context, data []byte) (any, uint64, error) {
	if n.closed.Load() {
		return nil, 0, ErrShutdown
	}
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, 0, ctx.Err()
		}
	}
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return nil, 0, mapErr(err)
	}
	resp := f.Response()
	if err, ok := resp.(error); ok {
		return nil, f.Index(), err
	}
	return resp, f.Index(), nil
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return ErrBusy
	}
	return err
}

// Barrier waits until every entry committed before it is applied here.
func (n *Node) Barrier(timeout time.Duration) error {
	if n.closed.Load() {
		return ErrShutdown
	}
	return mapErr(n.raft.Barrier(timeout).Error())
}

// IsLeader reports whether this node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's server ID and Raft address, or empty strings.
func (n *Node) Leader() (id, raftAddr string) {
	addr, sid := n.raft.LeaderWithID()
	return string(sid), string(addr)
}

// HasState reports whether this node had Raft state when it opened, or has
// joined or bootstrapped a cluster since.
func (n *Node) HasState() bool {
	if n.hasState.Load() {
		return true
	}
	_, id := n.raft.LeaderWithID()
	return id != "" || n.raft.LastIndex() > 0
}

// Addr is the Raft address this node advertises.
func (n *Node) Addr() string { return string(n.transport.LocalAddr()) }

// LastIndex is the index of the last entry in this node's log.
func (n *Node) LastIndex() uint64 { return n.raft.LastIndex() }

// Peer is one member of a Raft configuration.
type Peer struct {
	ID      string
	Address string
	Voter   bool
}

// BootstrapCluster forms a new cluster of exactly these voters. Every
// server of the new cluster must call it with the same list.
func (n *Node) BootstrapCluster(peers []Peer) error {
	var cfg raft.Configuration
	for _, p := range peers {
		cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address), Suffrage: raft.Voter})
	}
	if err := n.raft.BootstrapCluster(cfg).Error(); err != nil {
		return fmt.Errorf("bootstrap cluster: %w", err)
	}
	n.hasState.Store(true)
	return nil
}

// AddVoter adds (or updates the address of) a voting server. Leader only.
func (n *Node) AddVoter(id, addr string, timeout time.Duration) error {
	return mapErr(n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout).Error())
}

// RemoveServer removes a server from the configuration. Leader only.
func (n *Node) RemoveServer(id string, timeout time.Duration) error {
	return mapErr(n.raft.RemoveServer(raft.ServerID(id), 0, timeout).Error())
}

// Peers returns the current Raft configuration.
func (n *Node) Peers() ([]Peer, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, mapErr(err)
	}
	var out []Peer
	for _, s := range f.Configuration().Servers {
		out = append(out, Peer{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// Restore replaces the cluster's state with a snapshot's, through Raft, so
// that every server ends up with it. Leader only.
func (n *Node) Restore(r io.Reader, size int64, timeout time.Duration) error {
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: size}
	return mapErr(n.raft.Restore(meta, r, timeout))
}

// Name is this server's ID.
func (n *Node) Name() string { return n.name }

// LeaderCh delivers true when this node gains leadership and false when it
// loses it. Exactly one consumer must read it.
func (n *Node) LeaderCh() <-chan bool { return n.leaderCh }

// CommitIndex is the highest index this node knows to be committed.
func (n *Node) CommitIndex() uint64 { return n.raft.CommitIndex() }

// AppliedIndex is the index of the last entry applied to the FSM here.
func (n *Node) AppliedIndex() uint64 { return n.raft.AppliedIndex() }

// Stats returns Raft's internal counters, for diagnostics.
func (n *Node) Stats() map[string]string { return n.raft.Stats() }

// Close shuts Raft down and closes its stores. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		err := n.raft.Shutdown().Error()
		if cerr := n.transport.Close(); err == nil {
			err = cerr
		}
		if cerr := n.store.Close(); err == nil {
			err = cerr
		}
		n.closeErr = err
	})
	return n.closeErr
}
