package cluster

import (
	"runtime"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zaptest"
)

// TestHasStateWhileBootstrapping: the HTTP API asks HasState while the
// server's formation goroutine bootstraps the cluster (ark server
// --bootstrap-expect); under -race the two must not race, and afterwards
// the node says it has state.
func TestHasStateWhileBootstrapping(t *testing.T) {
	n, err := Open(Config{Name: "s1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Logger: zaptest.NewLogger(t)}, &countFSM{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.HasState() {
		t.Fatal("a fresh node says it has state")
	}
	stop := make(chan struct{})
	polled := make(chan struct{})
	var polls atomic.Int64 // the poller's progress, and no more: it must not order the bootstrap before the polls
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			default:
				n.HasState()
				polls.Add(1)
			}
		}
	}()
	err = n.BootstrapCluster([]Peer{{ID: "s1", Address: n.Addr(), Voter: true}})
	// Let the poller ask again after the bootstrap, as a request can.
	for after := polls.Load() + 2; polls.Load() < after; {
		runtime.Gosched()
	}
	close(stop)
	<-polled
	if err != nil {
		t.Fatal(err)
	}
	if !n.HasState() {
		t.Error("no state after bootstrapping")
	}
}
