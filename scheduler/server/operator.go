package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/cluster"
	"github.com/ark-sched/ark/scheduler/state"
)

// self describes this server.
func (s *Server) self() api.Server {
	return api.Server{Name: s.cfg.Name, RaftAddr: s.raft.Addr(), HTTPAddr: s.HTTPAddr()}
}

func (s *Server) handleSelf(w http.ResponseWriter, _ *http.Request) {
	leader, _ := s.raft.Leader()
	writeJSON(w, http.StatusOK, api.ServerSelf{
		Server: s.self(), HasState: s.raft.HasState(), Leader: leader, Peers: s.knownPeers(),
		LastIndex: s.raft.LastIndex(), AppliedIndex: s.raft.AppliedIndex(),
	})
}

// handleJoin adds a server to the cluster (on the leader).
func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
	var srv api.Server
	if err := decodeJSON(w, r, &srv); err != nil {
		s.fail(w, r, err)
		return
	}
	if srv.Name == "" || srv.RaftAddr == "" || srv.HTTPAddr == "" {
		s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("join needs name, raftAddr and httpAddr, got %+v", srv)})
		return
	}
	peers, err := s.raft.Peers()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, p := range peers {
		if p.ID == srv.Name && p.Address != srv.RaftAddr {
			s.fail(w, r, &httpError{http.StatusConflict, fmt.Errorf("a server named %s is already a peer at %s; remove it first (ark operator raft remove-peer %s)", srv.Name, p.Address, srv.Name)})
			return
		}
	}
	if err := s.raft.AddVoter(srv.Name, srv.RaftAddr, 30*time.Second); err != nil {
		s.fail(w, r, fmt.Errorf("add voter %s: %w", srv.Name, err))
		return
	}
	if _, _, err := s.apply(r.Context(), state.ServerType, &state.ServerRequest{Server: &srv}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("server joined the cluster", zap.String("name", srv.Name), zap.String("raft", srv.RaftAddr))
	writeJSON(w, http.StatusOK, srv)
}

// handlePeers lists the Raft configuration, asking each peer for its last
// log index.
func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	peers, err := s.raft.Peers()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	leader, _ := s.raft.Leader()
	snap := s.store.Snapshot()
	out := make([]api.Peer, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		out[i] = api.Peer{ID: p.ID, Address: p.Address, Voter: p.Voter, Leader: p.ID == leader}
		if p.ID == s.cfg.Name {
			out[i].HTTPAddr = s.HTTPAddr()
			out[i].LastIndex = s.raft.LastIndex()
			continue
		}
		srv := snap.Server(p.ID)
		if srv == nil {
			out[i].Error = "HTTP address not recorded yet"
			continue
		}
		out[i].HTTPAddr = srv.HTTPAddr
		wg.Add(1)
		go func(pe *api.Peer) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			var self api.ServerSelf
			if err := s.getJSON(ctx, pe.HTTPAddr, "/v1/operator/raft/self", &self); err != nil {
				pe.Error = err.Error()
				return
			}
			pe.LastIndex = self.LastIndex
		}(&out[i])
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleRemovePeer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	peers, err := s.raft.Peers()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	found := false
	for _, p := range peers {
		found = found || p.ID == id
	}
	if !found {
		s.fail(w, r, fmt.Errorf("raft peer %q: %w", id, state.ErrNotFound))
		return
	}
	if err := s.raft.RemoveServer(id, 30*time.Second); err != nil {
		s.fail(w, r, fmt.Errorf("remove peer %s: %w", id, err))
		return
	}
	if _, _, err := s.apply(r.Context(), state.ServerType, &state.ServerRequest{Server: &api.Server{Name: id}, Remove: true}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": id})
}

// handleSnapshotSave streams a snapshot of the state as the leader has
// applied it after a barrier.
func (s *Server) handleSnapshotSave(w http.ResponseWriter, r *http.Request) {
	if err := s.raft.Barrier(10 * time.Second); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(api.IndexHeader, fmt.Sprint(s.raft.AppliedIndex()))
	if err := state.WriteSnapshot(w, s.store.Snapshot()); err != nil {
		s.log.Warn("writing snapshot failed", zap.Error(err))
	}
}

// maxSnapshotBytes bounds a snapshot upload.
const maxSnapshotBytes = 1 << 30

// handleSnapshotRestore replaces the cluster's state with an uploaded
// snapshot, through Raft. The snapshot is checked whole first: a damaged
// file changes nothing.
func (s *Server) handleSnapshotRestore(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSnapshotBytes))
	if err != nil {
		s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("read snapshot: %w", err)})
		return
	}
	if err := state.CheckSnapshot(bytes.NewReader(data)); err != nil {
		s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("snapshot refused, state unchanged: %w", err)})
		return
	}
	if err := s.raft.Restore(bytes.NewReader(data), int64(len(data)), time.Minute); err != nil {
		s.fail(w, r, fmt.Errorf("restore snapshot: %w", err))
		return
	}
	s.log.Warn("state restored from an uploaded snapshot", zap.Int("bytes", len(data)))
	writeJSON(w, http.StatusOK, map[string]any{"restored": true, "bytes": len(data)})
}

// getJSON and postJSON call another server's API with the servers' token.
func (s *Server) getJSON(ctx context.Context, addr, path string, out any) error {
	return s.callJSON(ctx, http.MethodGet, addr, path, nil, out)
}

func (s *Server) postJSON(ctx context.Context, addr, path string, in, out any) error {
	return s.callJSON(ctx, http.MethodPost, addr, path, in, out)
}

func (s *Server) callJSON(ctx context.Context, method, addr, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.tls.scheme+"://"+addr+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	s.setServerAuth(req)
	resp, err := s.tls.peer.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// knownPeers returns the HTTP addresses of servers this one has heard of.
func (s *Server) knownPeers() []string {
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	out := make([]string, 0, len(s.peers))
	for a := range s.peers {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// form brings a server without Raft state into a cluster: if any server it
// can reach already has a leader, it asks to be added; otherwise, once it
// has heard of BootstrapExpect servers (itself included) that have no state
// either, every one of them bootstraps the same configuration. It returns
// when this server is part of a cluster or ctx ends.
func (s *Server) form(ctx context.Context) {
	s.peersMu.Lock()
	for _, a := range s.cfg.Join {
		if a != s.HTTPAddr() {
			s.peers[a] = true
		}
	}
	s.peersMu.Unlock()
	log := s.log.With(zap.Int("bootstrap_expect", s.cfg.BootstrapExpect))
	log.Info("forming a cluster", zap.Strings("join", s.cfg.Join))
	for ctx.Err() == nil && !s.raft.HasState() {
		found := map[string]api.Server{s.cfg.Name: s.self()}
		joined := false
		for _, addr := range s.knownPeers() {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			var other api.ServerSelf
			err := s.getJSON(rctx, addr, "/v1/operator/raft/self", &other)
			cancel()
			if err != nil {
				log.Debug("peer not answering yet", zap.String("peer", addr), zap.Error(err))
				continue
			}
			s.peersMu.Lock()
			for _, p := range other.Peers {
				if p != s.HTTPAddr() {
					s.peers[p] = true
				}
			}
			s.peersMu.Unlock()
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
			if !other.HasState {
				found[other.Name] = other.Server
			}
		}
		if joined {
			return
		}
		if s.cfg.BootstrapExpect > 1 && len(found) >= s.cfg.BootstrapExpect {
			names := make([]string, 0, len(found))
			for n := range found {
				names = append(names, n)
			}
			sort.Strings(names)
			var peers []cluster.Peer
			for _, n := range names {
				peers = append(peers, cluster.Peer{ID: n, Address: found[n].RaftAddr, Voter: true})
			}
			if err := s.raft.BootstrapCluster(peers); err != nil {
				log.Warn("bootstrap failed", zap.Error(err))
			} else {
				log.Info("bootstrapped the cluster", zap.Strings("servers", names))
			}
			s.servers.Store(found)
			return
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// publishSelf records this server's addresses in the replicated state (and,
// on a leader that formed the cluster, those of its bootstrap peers) so
// that every server can forward to every other.
func (s *Server) publishSelf(ctx context.Context) {
	servers := map[string]api.Server{s.cfg.Name: s.self()}
	if v, ok := s.servers.Load().(map[string]api.Server); ok {
		for k, sv := range v {
			servers[k] = sv
		}
	}
	snap := s.store.Snapshot()
	for _, sv := range servers {
		if cur := snap.Server(sv.Name); cur != nil && *cur == sv {
			continue
		}
		sv := sv
		if _, _, err := s.apply(ctx, state.ServerType, &state.ServerRequest{Server: &sv}); err != nil {
			s.log.Warn("recording server addresses failed", zap.String("server", sv.Name), zap.Error(err))
		}
	}
}
