// Package client is the Go client of Ark's HTTP API, used by the CLI, the
// agents and the tests. It is apart from package api (the wire types) so
// that packages which only need the types, such as placement, do not pull
// in net/http.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// Client speaks Ark's HTTP API to one or more servers. A request that
// cannot reach a server, or that a server answers with 503, is tried on the
// next address.
type Client struct {
	addrs []string
	http  *http.Client
	// preferred is the index of the address that answered last; calls
	// start there, so a dead or frozen server costs one timeout, once.
	preferred atomic.Int32
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// swapped, when set by SetToken, replaces Token.
	swapped atomic.Pointer[string]
	// RetryFor is how long a call keeps trying while every server answers
	// 503 (no leader yet, an election, a leader that has not published
	// its address) or cannot be reached. Every write the API takes is safe
	// to retry (submissions carry an idempotency key).
	RetryFor time.Duration
	// AttemptTimeout bounds one try on one server (a blocking query gets
	// its wait on top). A server that accepts connections but never
	// answers (frozen, partitioned) is given up on after it.
	AttemptTimeout time.Duration
	// answered[i] is set once addrs[i] has answered anything in this
	// process: only such a server (restarting, mid-election) is worth
	// waiting RetryFor for when it refuses connections.
	answered []atomic.Bool
}

// Defaults of AttemptTimeout and RetryFor.
const (
	DefaultAttemptTimeout = 10 * time.Second
	DefaultRetryFor       = 10 * time.Second
)

// APIError is an error answer from a server.
type APIError struct {
	StatusCode int
	Body       api.Error
}

func (e *APIError) Error() string {
	if len(e.Body.Fields) > 0 {
		parts := make([]string, len(e.Body.Fields))
		for i, f := range e.Body.Fields {
			parts[i] = f.Error()
		}
		return strings.Join(parts, "\n")
	}
	return e.Body.Error
}

// unreachableGrace is how long a call retries when no server has ever
// answered it and every one refuses connections.
const unreachableGrace = 300 * time.Millisecond

// UnreachableError means no address had a server listening: every one
// refused the connection or did not resolve, and none had answered before.
type UnreachableError struct {
	Addrs []string
	Err   error // the last address's error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("no Ark server at %s: %s; is `ark server` or `ark dev` running? (--addr / ARK_ADDR)",
		strings.Join(e.Addrs, ", "), unreachableCause(e.Err))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// isUnreachable reports whether err says nothing listens at the address
// (refused, or no such host), as opposed to a server that was reached and
// then failed or timed out.
func isUnreachable(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// unreachableCause is err in a few words ("connection refused", "no such
// host example.invalid") rather than Go's full dial chain.
func unreachableCause(err error) string {
	var de *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &de):
		return "no such host " + de.Name
	case err == nil:
		return "no answer"
	}
	return err.Error()
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound
}

// New returns a client for the given server addresses
// ("http://127.0.0.1:4680" or "127.0.0.1:4680"; several may be given,
// comma-separated).
func New(addrs ...string) (*Client, error) {
	var out []string
	for _, a := range addrs {
		for _, p := range strings.Split(a, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			if !strings.Contains(p, "://") {
				p = "http://" + p
			}
			u, err := url.Parse(p)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("server address %q is not a valid URL", p)
			}
			out = append(out, strings.TrimRight(u.String(), "/"))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no server address given")
	}
	// No overall timeout: blocking queries and log streams are long; each
	// call is bounded by its context.
	return &Client{addrs: out, http: &http.Client{Transport: http.DefaultTransport}, AttemptTimeout: DefaultAttemptTimeout, RetryFor: DefaultRetryFor,
		answered: make([]atomic.Bool, len(out))}, nil
}

// Addrs returns the server addresses.
func (c *Client) Addrs() []string { return c.addrs }

// do sends a request and decodes a JSON answer into out (when non-nil). It
// returns the answer's state index.
func (c *Client) do(ctx context.Context, method, path string, body, out any) (uint64, error) {
	return c.doWith(ctx, method, path, nil, body, out, 0)
}

// doWith tries each server in turn, starting with the one that answered
// last, until one answers with anything but 503. wait is the server-side
// wait of a blocking query, added to the attempt timeout.
func (c *Client) doWith(ctx context.Context, method, path string, header http.Header, body, out any, wait time.Duration) (uint64, error) {
	return c.doFor(ctx, c.RetryFor, method, path, header, body, out, wait)
}

// doFor is doWith retrying for retryFor: 0 tries each server once.
func (c *Client) doFor(ctx context.Context, retryFor time.Duration, method, path string, header http.Header, body, out any, wait time.Duration) (uint64, error) {
	var payload []byte
	if body != nil {
		var err error
		if raw, ok := body.([]byte); ok {
			payload = raw
		} else if payload, err = json.Marshal(body); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	deadline := start.Add(retryFor)
	backoff := 50 * time.Millisecond
	for {
		var lastErr error
		// nobody stays true while every address refuses connections (or
		// does not resolve) and none has ever answered this client.
		nobody := true
		first := int(c.preferred.Load())
		for k := range c.addrs {
			i := (first + k) % len(c.addrs)
			idx, code, err := c.attempt(ctx, method, c.addrs[i]+path, header, payload, out, wait)
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			if code != 0 || !isUnreachable(err) {
				c.answered[i].Store(true)
			}
			if code == 0 || code == http.StatusServiceUnavailable {
				lastErr = err
				if c.answered[i].Load() {
					nobody = false
				}
				continue
			}
			c.preferred.Store(int32(i))
			return idx, err
		}
		// Nothing listens anywhere: a typo'd --addr or a server that is not
		// running. Waiting RetryFor would only delay saying so; a short
		// grace still covers a server that is starting right now.
		if nobody && (time.Since(start) >= unreachableGrace || time.Now().Add(backoff).After(deadline)) {
			return 0, &UnreachableError{Addrs: c.addrs, Err: lastErr}
		}
		wait := Jitter(backoff)
		if time.Now().Add(wait).After(deadline) {
			return 0, lastErr
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// attempt makes one try on one server; code is 0 when no answer came.
func (c *Client) attempt(ctx context.Context, method, url string, header http.Header, payload []byte, out any, wait time.Duration) (uint64, int, error) {
	if c.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.AttemptTimeout+wait)
		defer cancel()
	}
	resp, err := c.send(ctx, method, url, payload, header)
	if err != nil {
		return 0, 0, err
	}
	idx, err := decodeAnswer(resp, out)
	if err != nil && resp.StatusCode < 300 {
		return idx, 0, err // the answer was cut off
	}
	return idx, resp.StatusCode, err
}

func (c *Client) send(ctx context.Context, method, url string, payload []byte, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	tok := c.Token
	if p := c.swapped.Load(); p != nil {
		tok = *p
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return c.http.Do(req)
}

func decodeAnswer(resp *http.Response, out any) (uint64, error) {
	defer resp.Body.Close()
	idx, _ := strconv.ParseUint(resp.Header.Get(api.IndexHeader), 10, 64)
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return idx, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		ae := &APIError{StatusCode: resp.StatusCode}
		if json.Unmarshal(data, &ae.Body) != nil || ae.Body.Error == "" {
			ae.Body.Error = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(data)))
			if m := openAIMessage(data); m != "" { // a service replica's answer
				ae.Body.Error = fmt.Sprintf("%s: %s", resp.Status, m)
			}
		}
		return idx, ae
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return idx, fmt.Errorf("decode answer: %w", err)
		}
		if hr, ok := out.(headerReader); ok {
			hr.readHeader(resp.Header)
		}
	}
	return idx, nil
}

// SubmitJob submits a job spec (JSON, or YAML which the server also reads)
// under a fresh idempotency key, so that trying it on the next server after
// a lost answer cannot create the job twice.
func (c *Client) SubmitJob(ctx context.Context, specBody []byte) (*api.SubmitResponse, error) {
	return c.SubmitJobWithKey(ctx, specBody, NewIdempotencyKey())
}

// SubmitJobWithKey submits under the caller's idempotency key: the same
// key always yields the same job.
func (c *Client) SubmitJobWithKey(ctx context.Context, specBody []byte, key string) (*api.SubmitResponse, error) {
	var out api.SubmitResponse
	_, err := c.doWith(ctx, http.MethodPost, "/v1/jobs", http.Header{api.IdempotencyHeader: {key}}, specBody, &out, 0)
	return &out, err
}

// NewIdempotencyKey returns a random key.
func NewIdempotencyKey() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Job returns a job with its allocations. With index > 0 it blocks until the
// job changes past that index or wait passes.
func (c *Client) Job(ctx context.Context, id string, index uint64, wait time.Duration) (*api.Job, uint64, error) {
	var out api.Job
	idx, err := c.doWith(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+blockQuery(index, wait), nil, nil, &out, wait)
	return &out, idx, err
}

// Jobs lists jobs, optionally only those with one status.
func (c *Client) Jobs(ctx context.Context, status string) ([]*api.Job, error) {
	var out []*api.Job
	path := "/v1/jobs"
	if status != "" {
		path += "?status=" + url.QueryEscape(status)
	}
	_, err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// CancelJob cancels a job.
func (c *Client) CancelJob(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/jobs/"+url.PathEscape(id), nil, nil)
	return err
}

// JobLogs opens one rank's stdout or stderr; the caller closes it.
func (c *Client) JobLogs(ctx context.Context, id string, rank int, stream string, follow bool) (io.ReadCloser, error) {
	q := url.Values{"rank": {strconv.Itoa(rank)}, "stream": {stream}, "follow": {strconv.FormatBool(follow)}}
	var lastErr error
	for _, addr := range c.addrs {
		resp, err := c.send(ctx, http.MethodGet, addr+"/v1/jobs/"+url.PathEscape(id)+"/logs?"+q.Encode(), nil, nil)
		if err != nil {
			lastErr = err
			continue
		}
		if resp.StatusCode >= 300 {
			_, err := decodeAnswer(resp, nil)
			return nil, err
		}
		return resp.Body, nil
	}
	return nil, lastErr
}

// Nodes lists nodes.
//
// It asks for NodesPerPage nodes at a time and follows the pages, so that
// no one answer is large (10,000 nodes at once are 14 MB of JSON) and a
// busy server serves other requests between pages; a server that does
// not page answers the whole list the first time. The pages are read one
// after another, not from one snapshot.
func (c *Client) Nodes(ctx context.Context) ([]*api.Node, error) {
	var all []*api.Node
	next := ""
	for {
		q := url.Values{"per_page": {strconv.Itoa(NodesPerPage)}}
		if next != "" {
			q.Set("next_token", next)
		}
		var pg nodesPage
		if _, err := c.do(ctx, http.MethodGet, "/v1/nodes?"+q.Encode(), nil, &pg); err != nil {
			return nil, err
		}
		all = append(all, pg.nodes...)
		if pg.next == "" || pg.next == next {
			return all, nil
		}
		next = pg.next
	}
}

// NodesPerPage is the page size Nodes asks for.
const NodesPerPage = 1000

// nodesPage is one page of GET /v1/nodes: the nodes and the next page's
// token (api.NextTokenHeader).
type nodesPage struct {
	nodes []*api.Node
	next  string
}

func (p *nodesPage) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &p.nodes) }

func (p *nodesPage) readHeader(h http.Header) { p.next = h.Get(api.NextTokenHeader) }

// headerReader is an answer that also reads the answer's headers.
type headerReader interface{ readHeader(http.Header) }

// Node returns a node by ID or name.
func (c *Client) Node(ctx context.Context, ref string) (*api.Node, error) {
	var out api.Node
	_, err := c.do(ctx, http.MethodGet, "/v1/nodes/"+url.PathEscape(ref), nil, &out)
	return &out, err
}

// RegisterNode registers (or re-registers) a node.
func (c *Client) RegisterNode(ctx context.Context, n *api.Node) (*api.RegisterNodeResponse, error) {
	var out api.RegisterNodeResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/nodes/register", n, &out)
	return &out, err
}

// Heartbeat tells the servers a node is alive.
func (c *Client) Heartbeat(ctx context.Context, nodeID string) (*api.HeartbeatResponse, error) {
	return c.HeartbeatWithLoads(ctx, nodeID, nil)
}

// HeartbeatWithLoads heartbeats with the latest loads of the node's
// service replicas (for the leader's autoscaler).
//
// A heartbeat tries each server once, not for RetryFor: the caller's loop
// paces the retries (HeartbeatRetry). With RetryFor, an agent whose
// heartbeat met an election asked the three servers about ten times each
// within ten seconds; 10,000 agents doing that keep starved servers busy
// answering 503s while they try to elect a leader.
func (c *Client) HeartbeatWithLoads(ctx context.Context, nodeID string, loads []api.ReplicaLoad) (*api.HeartbeatResponse, error) {
	var out api.HeartbeatResponse
	_, err := c.doFor(ctx, 0, http.MethodPut, "/v1/nodes/"+url.PathEscape(nodeID)+"/heartbeat", nil, api.HeartbeatRequest{Loads: loads}, &out, 0)
	return &out, err
}

// NodeAllocations returns a node's allocations, blocking until the index
// passes index (when > 0) or wait passes.
func (c *Client) NodeAllocations(ctx context.Context, nodeID string, index uint64, wait time.Duration) ([]*api.Allocation, uint64, error) {
	var out []*api.Allocation
	idx, err := c.doWith(ctx, http.MethodGet, "/v1/nodes/"+url.PathEscape(nodeID)+"/allocations"+blockQuery(index, wait), nil, nil, &out, wait)
	return out, idx, err
}

// UpdateAllocStatus reports an allocation's state.
func (c *Client) UpdateAllocStatus(ctx context.Context, allocID string, u api.AllocStatusUpdate) error {
	_, err := c.do(ctx, http.MethodPut, "/v1/allocations/"+url.PathEscape(allocID)+"/status", u, nil)
	return err
}

// Leader returns the current leader.
func (c *Client) Leader(ctx context.Context) (*api.LeaderResponse, error) {
	var out api.LeaderResponse
	_, err := c.do(ctx, http.MethodGet, "/v1/status/leader", nil, &out)
	return &out, err
}

func blockQuery(index uint64, wait time.Duration) string {
	if index == 0 {
		return ""
	}
	q := url.Values{"index": {strconv.FormatUint(index, 10)}}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	return "?" + q.Encode()
}

// ServerSelf asks the (first reachable) server about itself.
func (c *Client) ServerSelf(ctx context.Context) (*api.ServerSelf, error) {
	var out api.ServerSelf
	_, err := c.do(ctx, http.MethodGet, "/v1/operator/raft/self", nil, &out)
	return &out, err
}

// JoinServer asks the cluster to add a server as a voter.
func (c *Client) JoinServer(ctx context.Context, s api.Server) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/operator/raft/join", s, nil)
	return err
}

// RaftPeers lists the Raft configuration.
func (c *Client) RaftPeers(ctx context.Context) ([]api.Peer, error) {
	var out []api.Peer
	_, err := c.do(ctx, http.MethodGet, "/v1/operator/raft/peers", nil, &out)
	return out, err
}

// RemoveRaftPeer removes a server from the Raft configuration.
func (c *Client) RemoveRaftPeer(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/operator/raft/peers/"+url.PathEscape(id), nil, nil)
	return err
}

// SnapshotSave opens a snapshot of the state; the caller closes it.
func (c *Client) SnapshotSave(ctx context.Context) (io.ReadCloser, error) {
	// As every other call: a cluster mid-election (503 everywhere) is
	// tried again until RetryFor has passed.
	deadline := time.Now().Add(c.RetryFor)
	backoff := 50 * time.Millisecond
	for {
		body, lastErr := c.firstBody(ctx, http.MethodGet, "/v1/operator/snapshot", nil, 0)
		if lastErr == nil {
			return body, nil
		}
		var apiErr *APIError
		if errors.As(lastErr, &apiErr) && apiErr.StatusCode != http.StatusServiceUnavailable {
			return nil, lastErr
		}
		if time.Now().Add(backoff).After(deadline) {
			return nil, lastErr
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// SnapshotRestore replaces the cluster's state with a snapshot.
func (c *Client) SnapshotRestore(ctx context.Context, data []byte) error {
	_, err := c.do(ctx, http.MethodPut, "/v1/operator/snapshot", data, nil)
	return err
}

// JobsConsistent lists jobs as the leader has them after a barrier: every
// write acknowledged before the call is in the answer.
func (c *Client) JobsConsistent(ctx context.Context) ([]*api.Job, error) {
	var out []*api.Job
	_, err := c.do(ctx, http.MethodGet, "/v1/jobs?consistent=true", nil, &out)
	return out, err
}

// SetToken replaces the token while calls may be in flight: an agent
// switches to its node secret once registered.
func (c *Client) SetToken(tok string) { c.swapped.Store(&tok) }

// SetHTTPClient replaces the HTTP client (a benchmark's larger connection
// pool, a test's transport).
func (c *Client) SetHTTPClient(h *http.Client) { c.http = h }

// DrainNode starts (enable) or cancels a node's drain; deadline is how long
// its jobs may run on ("0s": move them now).
func (c *Client) DrainNode(ctx context.Context, ref string, enable bool, deadline time.Duration) (*api.Node, error) {
	var out api.Node
	_, err := c.do(ctx, http.MethodPut, "/v1/nodes/"+url.PathEscape(ref)+"/drain", api.DrainRequest{Enable: enable, Deadline: deadline.String()}, &out)
	return &out, err
}

// SetNodeEligibility opens or closes a node to new allocations.
func (c *Client) SetNodeEligibility(ctx context.Context, ref string, eligible bool) (*api.Node, error) {
	var out api.Node
	_, err := c.do(ctx, http.MethodPut, "/v1/nodes/"+url.PathEscape(ref)+"/eligibility", api.EligibilityRequest{Eligible: eligible}, &out)
	return &out, err
}

// Queues lists the queues with their quotas and usage.
func (c *Client) Queues(ctx context.Context) ([]map[string]any, error) {
	var out []map[string]any
	_, err := c.do(ctx, http.MethodGet, "/v1/queues", nil, &out)
	return out, err
}
