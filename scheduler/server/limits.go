package server

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limits on what one client can hold or ask of a server: a tenant, or anyone
// who can reach the port, must not be able to starve the others. Defaults
// fit a cluster of thousands of agents, each with its own address.
type Limits struct {
	// MaxConnsPerClient caps the open connections from one IP address
	// (past it a new connection is closed at once); 0 means no cap.
	MaxConnsPerClient int
	// BodyTimeout bounds how long a request's body may take to arrive
	// (a client trickling a body holds a connection only this long).
	BodyTimeout time.Duration
	// WriteTimeout bounds how long an answer may take to be written,
	// past the wait a blocking query asked for. Following a job's logs
	// has no bound.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection with no request.
	IdleTimeout time.Duration
	// TenantRate and TenantBurst bound the requests per second of each
	// namespace token (a token bucket; 429 with Retry-After past it).
	// Agents' and management tokens are not limited: the cluster's own
	// traffic must never be refused. 0 means no limit.
	TenantRate  float64
	TenantBurst int
	// ServiceRate and ServiceBurst bound the requests per second to the
	// services of one namespace (/v1/services/{job}/..., every caller
	// and token of the namespace together), at each server: a token
	// bucket per namespace, 429 with Retry-After in OpenAI's error shape
	// past it. With it set, those requests are not charged to
	// TenantRate: inference traffic must not starve a tenant's control
	// calls, nor the control plane's budget cap inference. 0 (the
	// default) means none, and service calls count against TenantRate
	// like any other.
	ServiceRate  float64
	ServiceBurst int
	// NamespaceMaxJobs caps the unfinished (pending or running) jobs of
	// one namespace: past it a submission is refused with 403, so that a
	// tenant cannot grow the replicated state without bound. 0 means no cap.
	NamespaceMaxJobs int
	// SnapshotMaxBytes bounds a snapshot upload (a restore); a follower
	// streams it to the leader under the same bound. SnapshotTimeout
	// replaces BodyTimeout and WriteTimeout for snapshot saves and
	// restores, which move the whole state.
	SnapshotMaxBytes int64
	SnapshotTimeout  time.Duration
}

// DefaultLimits are the limits a server uses unless told otherwise.
var DefaultLimits = Limits{
	MaxConnsPerClient: 512,
	BodyTimeout:       30 * time.Second,
	WriteTimeout:      30 * time.Second,
	IdleTimeout:       2 * time.Minute,
	TenantRate:        50,
	TenantBurst:       100,
	NamespaceMaxJobs:  5000,
	SnapshotMaxBytes:  4 << 30,
	SnapshotTimeout:   30 * time.Minute,
}

// withDeadlines sets each request's read and write deadlines: the body must
// arrive within BodyTimeout, and the answer be written within WriteTimeout
// plus the wait a blocking query asked for (capped as the handlers cap it).
// http.Server's own ReadTimeout and WriteTimeout cannot tell a blocking
// query or a log stream from a stalled client; per request they can.
func withDeadlines(lim Limits, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		if r.URL.Path == snapshotPath && lim.SnapshotTimeout > 0 {
			_ = rc.SetReadDeadline(now.Add(lim.SnapshotTimeout))
			_ = rc.SetWriteDeadline(now.Add(lim.SnapshotTimeout))
			next.ServeHTTP(w, r)
			return
		}
		if lim.BodyTimeout > 0 {
			// The deadline bounds the body only. Go's server reads the
			// connection in the background while a handler runs (to see
			// the client go away), and a read deadline that passes then
			// cancels the context of the connection, not just of the
			// request: every later request on that kept-alive connection
			// began canceled. A 30 s long-poll did that, and the agents'
			// next heartbeats on the pooled connection failed at once
			// (issue 18: 15,000 "context canceled" 500s at 2,000 nodes).
			if r.Body == nil || r.Body == http.NoBody {
				_ = rc.SetReadDeadline(time.Time{})
			} else {
				_ = rc.SetReadDeadline(now.Add(lim.BodyTimeout))
				r.Body = &bodyDeadline{ReadCloser: r.Body, rc: rc}
			}
		}
		if lim.WriteTimeout > 0 {
			q := r.URL.Query()
			switch {
			case q.Get("follow") == "true":
				// A log stream runs as long as the task does.
				_ = rc.SetWriteDeadline(time.Time{})
			default:
				wait, _ := time.ParseDuration(q.Get("wait"))
				_ = rc.SetWriteDeadline(now.Add(lim.WriteTimeout + min(max(wait, 0), maxWait)))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// bodyDeadline lifts the read deadline once the body has been read whole.
type bodyDeadline struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (b *bodyDeadline) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// rateLimiter keeps a token bucket per namespace token. Its keys are
// digests of tokens the ACL knows, so the map is as large as the token file.
type rateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time
	mu    sync.Mutex
	bkts  map[[32]byte]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int) *rateLimiter {
	if rate <= 0 {
		return nil
	}
	return &rateLimiter{rate: rate, burst: math.Max(float64(burst), 1), now: time.Now, bkts: map[[32]byte]*bucket{}}
}

// allow takes one request from tok's bucket; when it is empty it says how
// long until the next request would be allowed.
func (l *rateLimiter) allow(tok string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	key := sha256.Sum256([]byte(tok))
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bkts[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.bkts[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// tooManyRequests answers 429 with the seconds to wait (at least 1).
func tooManyRequests(w http.ResponseWriter, retry time.Duration) {
	secs := int(math.Ceil(retry.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeError(w, http.StatusTooManyRequests, fmt.Errorf("too many requests for this token: retry in %ds", max(secs, 1)))
}
