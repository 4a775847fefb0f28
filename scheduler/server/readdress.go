package server

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/state"
)

// readdressPath is the join route a member uses to move its Raft address:
// handleJoin lets a known name change its address only when asked this way,
// so a new server that happens to reuse a member's name is still refused.
const readdressPath = "/v1/operator/raft/join?readdress=true"

// raftAddrInConfig returns the address the Raft configuration has for this
// server, and whether it is a member at all.
func (s *Server) raftAddrInConfig() (string, bool) {
	peers, err := s.raft.Peers()
	if err != nil {
		return "", false
	}
	for _, p := range peers {
		if p.ID == s.cfg.Name {
			return p.Address, true
		}
	}
	return "", false
}

// readdress runs on a server that restarted on its state with a --raft
// address other than the one the configuration has for it: the leader
// would go on sending to the old address, so this server asks it (through
// any server it knows, which forwards to the leader) to update the
// configuration. It returns once the configuration has the new address,
// the server is no member, or ctx ends.
func (s *Server) readdress(ctx context.Context) {
	logged := false
	for ctx.Err() == nil {
		old, member := s.raftAddrInConfig()
		if !member || old == s.raft.Addr() {
			if logged {
				s.log.Info("the Raft configuration has this server's new address", zap.String("raft", s.raft.Addr()))
			}
			return
		}
		if !logged {
			s.log.Warn("this server's Raft address changed; asking the leader to update the configuration",
				zap.String("old", old), zap.String("new", s.raft.Addr()))
			logged = true
		}
		s.askReaddress(ctx)
		sleep(ctx, time.Second)
	}
}

// askReaddress makes one round of asking: directly when this server leads
// (a single-server cluster), else through every other server recorded in
// the state and every --join address.
func (s *Server) askReaddress(ctx context.Context) {
	self := s.self()
	if s.raft.IsLeader() {
		if err := s.raft.AddVoter(self.Name, self.RaftAddr, 30*time.Second); err != nil {
			s.log.Warn("updating this server's address failed; retrying", zap.Error(err))
			return
		}
		if _, _, err := s.apply(ctx, state.ServerType, &state.ServerRequest{Server: &self}); err != nil {
			s.log.Warn("recording this server's address failed", zap.Error(err))
		}
		return
	}
	addrs := append([]string(nil), s.cfg.Join...)
	for _, sv := range s.store.Snapshot().Servers() {
		if sv.Name != s.cfg.Name {
			addrs = append(addrs, sv.HTTPAddr)
		}
	}
	for _, a := range addrs {
		rctx, cancel := context.WithTimeout(ctx, 35*time.Second)
		err := s.postJSON(rctx, a, readdressPath, self, nil)
		cancel()
		if err == nil {
			s.log.Info("the leader updated this server's address", zap.String("via", a))
			return
		}
		s.log.Debug("asking to update this server's address failed", zap.String("via", a), zap.Error(err))
	}
}
