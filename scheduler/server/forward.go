package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/cluster"
)

// forwardedHeader marks a request a follower forwarded, so that it is never
// forwarded twice (a loop while leadership moves).
const forwardedHeader = "X-Ark-Forwarded-By"

// leaderHTTP returns the leader's HTTP address, as recorded in the state.
func (s *Server) leaderHTTP() (name, addr string) {
	id, _ := s.raft.Leader()
	if id == "" {
		return "", ""
	}
	if id == s.cfg.Name {
		return id, s.advertisedHTTP()
	}
	if srv := s.store.Snapshot().Server(id); srv != nil {
		return id, srv.HTTPAddr
	}
	return id, ""
}

// forward sends a write (or a consistent read) to the leader when this
// server is not it, and answers with the leader's answer. It returns false
// when this server leads and should handle the request itself.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) bool {
	return s.forwardBody(w, r, MaxBodyBytes, false)
}

// forwardBody is forward with the body bounded by limit. A streamed body
// goes to the leader as it arrives, never held here whole (a snapshot of
// gigabytes), and the call to the leader is bounded by the request's own
// deadlines rather than the peer client's timeout.
//
// During an election the request is held, up to RPCHoldTimeout, until a
// leader is known, and then forwarded (Consul's and Nomad's
// rpc_hold_timeout): the client sees a slower answer rather than a 503 it
// must back off from, which after a leader's death added the client's
// backoff to every write the election caught. A leader that refuses the
// connection (it died; the request never reached it) is waited out the
// same way, until another is elected. Past the hold the answer is the
// 503 it always was.
func (s *Server) forwardBody(w http.ResponseWriter, r *http.Request, limit int64, stream bool) bool {
	var body []byte // read once, sent again if a dead leader refused it
	read := false
	holdUntil := time.Now().Add(s.cfg.RPCHoldTimeout)
	dead := "" // a leader that refused the connection
	for {
		if s.raft.IsLeader() {
			if read {
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			return false
		}
		name, addr := s.leaderHTTP()
		var noLeader error
		switch {
		case name == "" || name == dead:
			noLeader = fmt.Errorf("%w; retry shortly", cluster.ErrNoLeader)
		case addr == "":
			noLeader = fmt.Errorf("%w: the leader %s has not published its HTTP address yet; retry shortly", cluster.ErrNoLeader, name)
		case r.Header.Get(forwardedHeader) != "":
			s.fail(w, r, fmt.Errorf("%w: request was forwarded here by %s, but the leader is %s", cluster.ErrNotLeader, r.Header.Get(forwardedHeader), name))
			return true
		}
		if noLeader != nil {
			if !holdFor(r.Context(), holdUntil) {
				s.fail(w, r, noLeader)
				return true
			}
			continue
		}
		var rd io.Reader
		switch {
		case r.Body != nil && stream:
			rd = http.MaxBytesReader(w, r.Body, limit)
		case r.Body != nil && !read:
			b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
			if err != nil {
				s.fail(w, r, err)
				return true
			}
			body, read = b, true
		}
		if read {
			rd = bytes.NewReader(body)
		}
		resp, err := s.forwardOnce(r, name, addr, rd, stream)
		if err != nil {
			if refused(err) && !stream && r.Context().Err() == nil && holdFor(r.Context(), holdUntil) {
				dead = name
				continue
			}
			s.fail(w, r, err)
			return true
		}
		defer resp.Body.Close()
		for _, h := range []string{"Content-Type", api.IndexHeader, api.NextTokenHeader, "Retry-After"} {
			if v := resp.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		flushCopy(w, resp.Body)
		return true
	}
}

// forwardOnce sends r, with body, to the leader name at addr.
func (s *Server) forwardOnce(r *http.Request, name, addr string, body io.Reader, stream bool) (*http.Response, error) {
	u := url.URL{Scheme: s.tls.scheme, Host: addr, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for _, h := range []string{"Content-Type", api.IdempotencyHeader, "Authorization"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(forwardedHeader, s.cfg.Name)
	peer := s.tls.peer
	if stream {
		req.ContentLength = r.ContentLength
		peer = &http.Client{Transport: s.tls.peer.Transport}
	}
	began := time.Now()
	resp, err := peer.Do(req)
	if err == nil {
		return resp, nil
	}
	err = fmt.Errorf("after %s: %w", time.Since(began).Round(time.Millisecond), err)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) || r.Context().Err() != nil {
		return nil, err // 413 naming the limit; or the client went away
	}
	return nil, fmt.Errorf("%w: forward to leader %s at %s: %w", cluster.ErrNoLeader, name, addr, err)
}

// holdPoll is how often a held request looks for a leader: an election
// ends within a poll of being known here.
const holdPoll = 10 * time.Millisecond

// holdFor waits one poll if the hold lasts that long and ctx allows, and
// reports whether it did.
func holdFor(ctx context.Context, until time.Time) bool {
	if time.Now().Add(holdPoll).After(until) {
		return false
	}
	sleep(ctx, holdPoll)
	return ctx.Err() == nil
}

// refused reports whether err is a connection the leader refused or could
// not be dialed: the request never reached it, so sending it again to the
// next leader cannot apply it twice.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// writeHandler wraps a handler that writes through Raft: on a follower the
// request goes to the leader.
func (s *Server) writeHandler(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.forward(w, r) {
			return
		}
		h(w, r)
	}
}

// streamWriteHandler is writeHandler for a body of up to limit bytes that
// a follower streams to the leader (a snapshot to restore).
func (s *Server) streamWriteHandler(limit int64, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.forwardBody(w, r, limit, true) {
			return
		}
		h(w, r)
	}
}

// readHandler wraps a read: served here by default; with ?consistent=true
// it is served by the leader after a barrier, so it reflects every write
// acknowledged before it (read-your-writes).
func (s *Server) readHandler(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.waitReplayed(r.Context()); err != nil {
			s.fail(w, r, err)
			return
		}
		if r.URL.Query().Get("consistent") != "true" {
			h(w, r)
			return
		}
		if s.forward(w, r) {
			return
		}
		if err := s.raft.Barrier(10 * time.Second); err != nil {
			s.fail(w, r, err)
			return
		}
		h(w, r)
	}
}

// waitReplayed holds reads on a server that has just started until it has
// applied every entry its own log held at start, so that a restart never
// serves an older state than the one on its disk.
func (s *Server) waitReplayed(ctx context.Context) error {
	if s.replayed() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for !s.replayed() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: this server is still replaying its log (applied %d of %d); retry shortly", cluster.ErrNoLeader, s.raft.AppliedIndex(), s.bootIndex)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// replayed reports whether the startup replay is done. On the leader it is
// once its first barrier has completed (Raft's applied index alone runs
// ahead of the FSM: entries count as applied when handed to it). On a
// follower, once everything its log held is applied or, when its tail was
// never committed (a deposed leader's), everything the leader has
// committed is.
func (s *Server) replayed() bool {
	if s.barrierDone.Load() {
		return true
	}
	if s.raft.IsLeader() {
		return false // startLeader's barrier sets barrierDone
	}
	applied := s.raft.AppliedIndex()
	if applied >= s.bootIndex {
		return true
	}
	leader, _ := s.raft.Leader()
	commit := s.raft.CommitIndex()
	return leader != "" && commit > 0 && applied >= commit
}
