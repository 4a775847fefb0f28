package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// What a server's metrics read of its Raft node. These are cheap reads
// (atomics under hashicorp/raft's hood), safe at every scrape.

// State is the node's Raft state: Follower, Candidate, Leader or Shutdown.
func (n *Node) State() string { return n.raft.State().String() }

// Term is the node's current Raft term.
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// WatchLeader calls f with the new leader's ID each time this node sees
// the cluster's leader change (to another server, or to none: ""), until
// stop is called. f runs on one goroutine of its own, never concurrently;
// the observer does not block Raft (a burst that overflows its buffer
// loses observations, which only a counter of changes reads).
func (n *Node) WatchLeader(f func(leader string)) (stop func()) {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case o := <-ch:
				f(string(o.Data.(raft.LeaderObservation).LeaderID))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			n.raft.DeregisterObserver(obs)
			close(done)
			wg.Wait()
		})
	}
}
