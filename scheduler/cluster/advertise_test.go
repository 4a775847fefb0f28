package cluster

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func TestParseAdvertise(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // the advertised address, or "error: ..." a part of the error
	}{
		{"ark-server-0.ark-server.ark.svc.cluster.local:4681", "ark-server-0.ark-server.ark.svc.cluster.local:4681"},
		{"localhost:1", "localhost:1"},
		{"10.0.3.7:4681", "10.0.3.7:4681"},
		{"[fd00::7]:4681", "[fd00::7]:4681"},
		{"0.0.0.0:4681", "error: not an address a peer can dial"},
		{"[::]:4681", "error: not an address a peer can dial"},
		{"ark-server-0:0", "error: port must be 1 to 65535"},
		{"ark-server-0:70000", "error: port must be 1 to 65535"},
		{"ark-server-0:raft", "error: port must be 1 to 65535"},
		{"ark-server-0", "error: missing port"},
		{":4681", "error: is not a DNS name"},
		{"-bad.example:4681", "error: is not a DNS name"},
		{"bad-.example:4681", "error: is not a DNS name"},
		{"a..b:4681", "error: is not a DNS name"},
		{"under_score.example:4681", "error: is not a DNS name"},
		{strings.Repeat("a", 64) + ".example:4681", "error: is not a DNS name"},
	} {
		a, err := ParseAdvertise(tc.in)
		if want, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ParseAdvertise(%q) = %v, %v; want an error saying %q", tc.in, a, err, want)
			}
			continue
		}
		if err != nil || a.String() != tc.want || advertisable(a) != nil {
			t.Errorf("ParseAdvertise(%q) = %v, %v; want %s, advertisable", tc.in, a, err, tc.want)
		}
	}
}

// TestOpenAdvertisesName: a node bound to an IP that advertises a name
// records the name in its Raft configuration, as it is, and still starts
// when the name does not resolve (yet).
func TestOpenAdvertisesName(t *testing.T) {
	for _, name := range []string{"localhost:4999", "ark-server-0.ark-server.invalid:4681"} {
		n, err := Open(Config{Name: "s1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", RaftAdvertise: name, Bootstrap: true, Logger: zaptest.NewLogger(t)}, &countFSM{})
		if err != nil {
			t.Fatalf("open advertising %s: %v", name, err)
		}
		if got := n.Addr(); got != name {
			t.Errorf("advertises %s, want %s", got, name)
		}
		waitLeader(t, n)
		peers, err := n.Peers()
		if err != nil || len(peers) != 1 || peers[0].Address != name {
			t.Errorf("configuration %+v (%v), want s1 at %s", peers, err, name)
		}
		n.Close()
	}
	if _, err := Open(Config{Name: "s1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", RaftAdvertise: "0.0.0.0:4681", Logger: zaptest.NewLogger(t)}, &countFSM{}); err == nil {
		t.Error("advertising 0.0.0.0 was taken")
	}
}

func waitLeader(t *testing.T, n *Node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("single voter did not become leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
