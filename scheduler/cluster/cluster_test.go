package cluster

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap/zaptest"
)

// countFSM records the commands applied to it.
type countFSM struct {
	mu      sync.Mutex
	applied []string
}

func (f *countFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if string(l.Data) == "reject" {
		return errors.New("rejected by the fsm")
	}
	f.applied = append(f.applied, string(l.Data))
	return len(f.applied)
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &countSnap{data: strings.Join(f.applied, "\n")}, nil
}

func (f *countFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = nil
	if len(b) > 0 {
		f.applied = strings.Split(string(b), "\n")
	}
	return nil
}

func (f *countFSM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applied)
}

type countSnap struct{ data string }

func (s *countSnap) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write([]byte(s.data)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
func (s *countSnap) Release() {}

func open(t *testing.T, dir string, fsm raft.FSM) *Node {
	t.Helper()
	n, err := Open(Config{Name: "s1", DataDir: dir, RaftAddr: "127.0.0.1:0", Bootstrap: true, SnapshotThreshold: 16, Logger: zaptest.NewLogger(t)}, fsm)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("single voter did not become leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// TestApplyRestartReplays: committed entries survive a restart (replayed
// from the fsync'd log and snapshots) and business rejections come back as
// errors without stopping the node.
func TestApplyRestartReplays(t *testing.T) {
	dir := t.TempDir()
	fsm := &countFSM{}
	n := open(t, dir, fsm)
	ctx := context.Background()
	for i := 0; i < 40; i++ {
		resp, idx, err := n.Apply(ctx, []byte("cmd"))
		if err != nil || idx == 0 || resp.(int) != i+1 {
			t.Fatalf("apply %d: resp %v idx %d err %v", i, resp, idx, err)
		}
	}
	if _, _, err := n.Apply(ctx, []byte("reject")); err == nil || !strings.Contains(err.Error(), "rejected by the fsm") {
		t.Fatalf("rejection: %v", err)
	}
	if id, addr := n.Leader(); id != "s1" || addr == "" {
		t.Errorf("leader %q at %q", id, addr)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, _, err := n.Apply(ctx, []byte("late")); !errors.Is(err, ErrShutdown) {
		t.Errorf("apply after close: %v, want ErrShutdown", err)
	}

	fsm2 := &countFSM{}
	n2 := open(t, dir, fsm2)
	defer n2.Close()
	if err := n2.Barrier(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := fsm2.count(); got != 40 {
		t.Errorf("after restart the FSM has %d entries, want 40", got)
	}
}

func TestOpenRefusesCorruptLog(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "raft.db"), []byte("this is not a bolt database, just garbage bytes............"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{Name: "s1", DataDir: dir, RaftAddr: "127.0.0.1:0", Bootstrap: true, Logger: zaptest.NewLogger(t)}, &countFSM{})
	if err == nil || !strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("open on a corrupt log: %v", err)
	}
}

func TestOpenValidatesConfig(t *testing.T) {
	for _, cfg := range []Config{
		{DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0"},
		{Name: "s1", RaftAddr: "127.0.0.1:0"},
		{Name: "s1", DataDir: t.TempDir()},
		{Name: "s1", DataDir: t.TempDir(), RaftAddr: "not an address"},
	} {
		if n, err := Open(cfg, &countFSM{}); err == nil {
			n.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

// TestOpenRefusesCorruptSnapshot: a server whose only snapshot is damaged
// refuses to start instead of serving a state it cannot trust.
func TestOpenRefusesCorruptSnapshot(t *testing.T) {
	dir := t.TempDir()
	n, err := Open(Config{Name: "s1", DataDir: dir, RaftAddr: "127.0.0.1:0", Bootstrap: true,
		SnapshotThreshold: 8, SnapshotInterval: 20 * time.Millisecond, Logger: zaptest.NewLogger(t)}, &countFSM{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 30; i++ {
		if _, _, err := n.Apply(context.Background(), []byte("cmd")); err != nil {
			t.Fatal(err)
		}
	}
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin")); len(m) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	states, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if len(states) == 0 {
		t.Fatal("no snapshot was taken")
	}
	for _, state := range states { // damage every retained snapshot
		b, err := os.ReadFile(state)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(state, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n2, err := Open(Config{Name: "s1", DataDir: dir, RaftAddr: "127.0.0.1:0", Bootstrap: true, Logger: zaptest.NewLogger(t)}, &countFSM{})
	if err == nil {
		n2.Close()
		t.Fatal("opened on a corrupt snapshot")
	}
	t.Logf("refused: %v", err)
}
