package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
func (s *Server) forwardBody(w http.ResponseWriter, r *http.Request, limit int64, stream bool) bool {
	if s.raft.IsLeader() {
		return false
	}
	name, addr := s.leaderHTTP()
	switch {
	case name == "":
		s.fail(w, r, fmt.Errorf("%w; retry shortly", cluster.ErrNoLeader))
		return true
	case addr == "":
		s.fail(w, r, fmt.Errorf("%w: the leader %s has not published its HTTP address yet; retry shortly", cluster.ErrNoLeader, name))
		return true
	case r.Header.Get(forwardedHeader) != "":
		s.fail(w, r, fmt.Errorf("%w: request was forwarded here by %s, but the leader is %s", cluster.ErrNotLeader, r.Header.Get(forwardedHeader), name))
		return true
	}
	var body io.Reader
	switch {
	case r.Body != nil && stream:
		body = http.MaxBytesReader(w, r.Body, limit)
	case r.Body != nil:
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			s.fail(w, r, err)
			return true
		}
		body = bytes.NewReader(b)
	}
	u := url.URL{Scheme: s.tls.scheme, Host: addr, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), body)
	if err != nil {
		s.fail(w, r, err)
		return true
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
	if err != nil {
		err = fmt.Errorf("after %s: %w", time.Since(began).Round(time.Millisecond), err)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.fail(w, r, err) // 413, naming the limit
			return true
		}
		if r.Context().Err() == nil {
			err = fmt.Errorf("%w: forward to leader %s at %s: %v", cluster.ErrNoLeader, name, addr, err)
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
