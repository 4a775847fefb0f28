package server

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/cluster"
)

// How a new cluster forms (--bootstrap-expect K, K > 1):
//
//   - Every server without Raft state asks each server it has heard of
//     (its --join addresses, the servers that asked it, and whom those
//     know) about itself, naming its own HTTP address, so that a server
//     started with no --join learns of the servers that join it. Servers
//     may start in any order: one that is not up yet is asked again.
//   - If one of them is already part of a cluster with a leader, the server
//     asks to be added to that cluster instead.
//   - Once a server's view has stopped growing (a round taught it no new
//     address) and holds at least K servers without state, the one with the
//     lowest name among those started with --bootstrap-expect bootstraps a
//     configuration of all of them. The others do not bootstrap: they
//     receive that configuration when the new leader replicates to them.
//     With one bootstrapper per connected group there is one cluster, never
//     two whose first configurations differ.
//   - Servers that disagree on K do not bootstrap, and say so.
//
// A server started with --join and the default --bootstrap-expect 1 never
// bootstraps: it only joins (or is counted by a server that forms one).

// heardFrom records the HTTP address of a server that asked about this one
// while this one forms a cluster: a server started without --join learns
// its peers this way. An address that is not host:port is ignored.
func (s *Server) heardFrom(addr string) {
	if addr == "" || addr == s.advertisedHTTP() || s.raft.HasState() {
		return
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return
	}
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	if !s.peers[addr] {
		s.log.Info("heard from a server forming the cluster", zap.String("peer", addr))
	}
	s.peers[addr] = true
}

// addPeers records addresses heard of and reports whether any was new.
func (s *Server) addPeers(addrs []string) bool {
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	grew := false
	for _, a := range addrs {
		if a != s.advertisedHTTP() && !s.peers[a] {
			s.peers[a] = true
			grew = true
		}
	}
	return grew
}

// form brings a server without Raft state into a cluster (see above). It
// returns when this server is part of a cluster or ctx ends.
func (s *Server) form(ctx context.Context) {
	s.addPeers(s.cfg.Join)
	log := s.log.With(zap.Int("bootstrap_expect", s.cfg.BootstrapExpect))
	log.Info("forming a cluster", zap.Strings("join", s.cfg.Join))
	selfPath := "/v1/operator/raft/self?from=" + url.QueryEscape(s.advertisedHTTP())
	var lastWait string
	for ctx.Err() == nil && !s.raft.HasState() {
		found := map[string]api.ServerSelf{s.cfg.Name: {Server: s.self(), BootstrapExpect: s.cfg.BootstrapExpect}}
		grew, joined := false, false
		for _, addr := range s.knownPeers() {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			var other api.ServerSelf
			err := s.getJSON(rctx, addr, selfPath, &other)
			cancel()
			if err != nil {
				log.Debug("peer not answering yet", zap.String("peer", addr), zap.Error(err))
				continue
			}
			grew = s.addPeers(other.Peers) || grew
			if other.HasState && other.Leader != "" {
				jctx, cancel := context.WithTimeout(ctx, 35*time.Second)
				err := s.postJSON(jctx, addr, "/v1/operator/raft/join", s.self(), nil)
				cancel()
				if err != nil {
					log.Warn("asking to join the cluster failed; retrying", zap.String("via", addr), zap.Error(err))
					continue
				}
				log.Info("joined an existing cluster", zap.String("via", addr))
				joined = true
				break
			}
			if !other.HasState && other.Name != "" {
				found[other.Name] = other
			}
		}
		if joined {
			return
		}
		if s.cfg.BootstrapExpect > 1 && !grew {
			if clash := s.expectClash(found); clash != "" {
				if clash != lastWait {
					log.Warn(clash)
					lastWait = clash
				}
			} else if len(found) >= s.cfg.BootstrapExpect {
				wait := s.maybeBootstrap(found, log)
				if wait == "" {
					return
				}
				if wait != lastWait {
					log.Info(wait)
					lastWait = wait
				}
			}
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// expectClash says why servers that would form a cluster together must
// not: one of them expects another number of servers. Empty when none does.
func (s *Server) expectClash(found map[string]api.ServerSelf) string {
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if k := found[n].BootstrapExpect; k > 1 && k != s.cfg.BootstrapExpect {
			return fmt.Sprintf("not bootstrapping: server %s expects %d servers and this one %d; start every server with the same --bootstrap-expect", n, k, s.cfg.BootstrapExpect)
		}
	}
	return ""
}

// maybeBootstrap bootstraps the cluster of found (servers without state,
// this one included) when this server is the one to do it. It returns ""
// once this server has bootstrapped, or why it waits.
func (s *Server) maybeBootstrap(found map[string]api.ServerSelf, log *zap.Logger) string {
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	first := ""
	for _, n := range names {
		if found[n].BootstrapExpect > 1 {
			first = n
			break
		}
	}
	servers := map[string]api.Server{}
	for n, f := range found {
		servers[n] = f.Server
	}
	// Whoever leads first publishes every member's HTTP address.
	s.servers.Store(servers)
	if first != s.cfg.Name {
		return fmt.Sprintf("found %d servers %v; waiting for %s to bootstrap the cluster", len(names), names, first)
	}
	var peers []cluster.Peer
	for _, n := range names {
		peers = append(peers, cluster.Peer{ID: n, Address: found[n].RaftAddr, Voter: true})
	}
	if err := s.raft.BootstrapCluster(peers); err != nil {
		return fmt.Sprintf("bootstrap failed, retrying: %v", err)
	}
	log.Info("bootstrapped the cluster", zap.Strings("servers", names))
	return ""
}
