package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
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
	return api.Server{Name: s.cfg.Name, RaftAddr: s.raft.Addr(), HTTPAddr: s.advertisedHTTP()}
}

func (s *Server) handleSelf(w http.ResponseWriter, r *http.Request) {
	s.heardFrom(r.URL.Query().Get("from"))
	leader, _ := s.raft.Leader()
	writeJSON(w, http.StatusOK, api.ServerSelf{
		Server: s.self(), HasState: s.raft.HasState(), Leader: leader, Peers: s.knownPeers(),
		BootstrapExpect: s.cfg.BootstrapExpect,
		LastIndex:       s.raft.LastIndex(), AppliedIndex: s.raft.AppliedIndex(),
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
	// A member that restarted with a new --raft address asks with
	// readdress (readdress.go) and is moved; anyone else reusing a
	// member's name is refused, so a name clash never steals a seat.
	readdress := r.URL.Query().Get("readdress") == "true"
	for _, p := range peers {
		if p.ID == srv.Name && p.Address != srv.RaftAddr && !readdress {
			s.fail(w, r, &httpError{http.StatusConflict, fmt.Errorf("a server named %s is already a peer at %s; remove it first (ark operator raft remove-peer %s)", srv.Name, p.Address, srv.Name)})
			return
		}
	}
	if readdress && !slices.ContainsFunc(peers, func(p cluster.Peer) bool { return p.ID == srv.Name }) {
		s.fail(w, r, &httpError{http.StatusNotFound, fmt.Errorf("server %s asks to move its Raft address but is not a peer (removed?); empty its data dir and join again", srv.Name)})
		return
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
			out[i].HTTPAddr = s.advertisedHTTP()
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

// snapshotPath is the route of snapshot saves and restores, whose bodies
// and answers are the whole state (see Limits.SnapshotTimeout).
const snapshotPath = "/v1/operator/snapshot"

// snapshotLimit bounds a snapshot upload.
func (s *Server) snapshotLimit() int64 {
	if s.lim.SnapshotMaxBytes > 0 {
		return s.lim.SnapshotMaxBytes
	}
	return DefaultLimits.SnapshotMaxBytes
}

// handleSnapshotRestore replaces the cluster's state with an uploaded
// snapshot, through Raft. The upload goes to a file in the data dir, not
// memory (it may be gigabytes), and is checked whole first: a damaged file
// changes nothing.
func (s *Server) handleSnapshotRestore(w http.ResponseWriter, r *http.Request) {
	f, err := os.CreateTemp(s.cfg.DataDir, "restore-*.snap")
	if err != nil {
		s.fail(w, r, fmt.Errorf("spool snapshot: %w", err))
		return
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	size, err := io.Copy(f, http.MaxBytesReader(w, r.Body, s.snapshotLimit()))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.fail(w, r, fmt.Errorf("snapshot refused, state unchanged (raise --snapshot-max-bytes for a larger state): %w", err))
			return
		}
		s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("read snapshot: %w", err)})
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := state.CheckSnapshot(bufio.NewReaderSize(f, 1<<20)); err != nil {
		s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("snapshot refused, state unchanged: %w", err)})
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		s.fail(w, r, err)
		return
	}
	members := s.memberAddrs()
	if err := s.raft.Restore(bufio.NewReaderSize(f, 1<<20), size, s.lim.SnapshotTimeout); err != nil {
		s.fail(w, r, fmt.Errorf("restore snapshot: %w", err))
		return
	}
	// The snapshot's server records are those of the cluster it was taken
	// on (another one, after a disaster): record this cluster's members
	// again, or followers would forward to addresses that are not theirs.
	s.republish(r.Context(), members)
	s.log.Warn("state restored from an uploaded snapshot", zap.Int64("bytes", size))
	writeJSON(w, http.StatusOK, map[string]any{"restored": true, "bytes": size})
}

// memberAddrs returns the recorded addresses of the servers in the Raft
// configuration (this one as it is now).
func (s *Server) memberAddrs() []api.Server {
	peers, err := s.raft.Peers()
	if err != nil {
		return []api.Server{s.self()}
	}
	snap := s.store.Snapshot()
	var out []api.Server
	for _, p := range peers {
		switch sv := snap.Server(p.ID); {
		case p.ID == s.cfg.Name:
			out = append(out, s.self())
		case sv != nil:
			out = append(out, *sv)
		}
	}
	return out
}

// republish records servers' addresses where the state has others.
func (s *Server) republish(ctx context.Context, servers []api.Server) {
	snap := s.store.Snapshot()
	for _, sv := range servers {
		if cur := snap.Server(sv.Name); cur != nil && *cur == sv {
			continue
		}
		if _, _, err := s.apply(ctx, state.ServerType, &state.ServerRequest{Server: &sv}); err != nil {
			s.log.Warn("recording server addresses failed", zap.String("server", sv.Name), zap.Error(err))
		}
	}
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

// publishSelf records this server's addresses in the replicated state (and,
// on a leader that formed the cluster, those of its bootstrap peers) so
// that every server can forward to every other.
func (s *Server) publishSelf(ctx context.Context) {
	servers := map[string]api.Server{}
	if v, ok := s.servers.Load().(map[string]api.Server); ok {
		for k, sv := range v {
			servers[k] = sv
		}
	}
	servers[s.cfg.Name] = s.self()
	// A server this one heard of while forming but that is not a member
	// (another server bootstrapped without it) is not recorded.
	members := map[string]bool{}
	if peers, err := s.raft.Peers(); err == nil {
		for _, p := range peers {
			members[p.ID] = true
		}
	}
	// Others' addresses as found at formation only fill a gap: a record
	// in the state is newer (the server may have moved since).
	snap := s.store.Snapshot()
	var list []api.Server
	for name, sv := range servers {
		if members[name] && (name == s.cfg.Name || snap.Server(name) == nil) {
			list = append(list, sv)
		}
	}
	s.republish(ctx, list)
}
