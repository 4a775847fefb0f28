package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// TestRecoverLostQuorum: a server whose cluster lost its quorum for good
// (its only peer is gone) leads again, with every entry it had, once its
// configuration is rewritten to list only itself.
func TestRecoverLostQuorum(t *testing.T) {
	dir := t.TempDir()
	n := open(t, dir, &countFSM{})
	ctx := context.Background()
	for i := 0; i < 40; i++ { // past SnapshotThreshold 16: a snapshot and a log tail
		if _, _, err := n.Apply(ctx, []byte("cmd")); err != nil {
			t.Fatal(err)
		}
	}
	// A second voter that never answers: the configuration now needs two
	// votes of two, and one of them is gone for good.
	_ = n.AddVoter("ghost", "127.0.0.1:1", time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("the leader kept leading without a quorum")
		}
		time.Sleep(10 * time.Millisecond)
	}
	addr := n.Addr()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Recover(dir, &countFSM{}, []Peer{{ID: "s1", Address: addr, Voter: true}}, zaptest.NewLogger(t)); err != nil {
		t.Fatal(err)
	}
	fsm := &countFSM{}
	n2 := open(t, dir, fsm) // waits for leadership
	defer n2.Close()
	if err := n2.Barrier(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := fsm.count(); got != 40 {
		t.Errorf("after recovery the FSM has %d entries, want 40", got)
	}
	peers, err := n2.Peers()
	if err != nil || len(peers) != 1 || peers[0].ID != "s1" {
		t.Errorf("peers after recovery: %+v %v", peers, err)
	}
}

func TestRecoverRefuses(t *testing.T) {
	empty := t.TempDir()
	if err := Recover(empty, &countFSM{}, []Peer{{ID: "s1", Address: "127.0.0.1:1", Voter: true}}, nil); err == nil || !strings.Contains(err.Error(), "no raft log") {
		t.Errorf("recover on an empty dir: %v", err)
	}
	dir := t.TempDir()
	n := open(t, dir, &countFSM{})
	defer n.Close()
	if err := Recover(dir, &countFSM{}, []Peer{{ID: "s1", Address: n.Addr(), Voter: true}}, nil); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("recover under a running server: %v", err)
	}
}

func TestReadPeersFile(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		peers            int
	}{
		{"one", `[{"id":"s1","address":"10.0.0.1:4681"}]`, "", 1},
		{"consul format", `[{"id":"s1","address":"10.0.0.1:4681","non_voter":false},{"id":"s2","address":"10.0.0.2:4681","non_voter":true}]`, "", 2},
		{"not a list", `{"id":"s1"}`, "want a JSON list", 0},
		{"unknown field", `[{"id":"s1","addr":"x:1"}]`, "unknown field", 0},
		{"no id", `[{"address":"10.0.0.1:4681"}]`, "entry 0: id is empty", 0},
		{"no address", `[{"id":"s1"}]`, "entry 0 (s1): address is empty", 0},
		{"same id", `[{"id":"s1","address":"a:1"},{"id":"s1","address":"b:1"}]`, `entry 1: id "s1" is listed twice`, 0},
		{"same address", `[{"id":"s1","address":"a:1"},{"id":"s2","address":"a:1"}]`, `entry 1: address "a:1" is listed twice`, 0},
		{"no voter", `[{"id":"s1","address":"a:1","non_voter":true}]`, "no voter", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "peers.json")
			if err := os.WriteFile(f, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			peers, err := ReadPeersFile(f)
			if tc.want == "" {
				if err != nil || len(peers) != tc.peers {
					t.Fatalf("got %+v, %v", peers, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), f) {
				t.Fatalf("error %v, want one naming %s and saying %q", err, f, tc.want)
			}
		})
	}
}
