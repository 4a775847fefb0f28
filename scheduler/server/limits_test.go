package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api/client"
)

// limitServer is a token-file server (tokenServer) with the given limits.
func limitServer(t *testing.T, lim Limits) *Server {
	t.Helper()
	return tokenServer(t, Config{Limits: &lim})
}

// trickle opens a connection and sends a POST's headers announcing a body
// it then does not send (one byte only): what a client holding connections
// open does.
func trickle(t *testing.T, addr, token string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := fmt.Fprintf(c, "POST /v1/jobs HTTP/1.1\r\nHost: ark\r\n%sContent-Length: 100000\r\n\r\n{", auth); err != nil {
		t.Fatal(err)
	}
	return c
}

// answerThenClose reads one response and reports its status and whether
// the server then closed the connection within d.
func answerThenClose(t *testing.T, c net.Conn, d time.Duration) (status int, closed bool) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer within %s: %v", d, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, err = br.ReadByte()
	var ne net.Error
	return resp.StatusCode, errors.Is(err, io.EOF) || (err != nil && !(errors.As(err, &ne) && ne.Timeout()))
}

// The attack: a body trickled without a token held a connection for as long
// as the client liked (22,000 of them exhausted the server's descriptors).
// Now the answer is 401 at once and the connection is closed.
func TestTrickledBodyWithoutToken(t *testing.T) {
	s := limitServer(t, DefaultLimits)
	for _, tok := range []string{"", "not-a-token-at-all-000"} {
		c := trickle(t, s.HTTPAddr(), tok)
		code, closed := answerThenClose(t, c, 5*time.Second)
		if code != http.StatusUnauthorized || !closed {
			t.Errorf("token %q: status %d, connection closed %v; want 401 and closed", tok, code, closed)
		}
	}
}

// A valid token's slow body is cut at the body timeout with 408.
func TestTrickledBodyWithToken(t *testing.T) {
	lim := DefaultLimits
	lim.BodyTimeout = 300 * time.Millisecond
	s := limitServer(t, lim)
	c := trickle(t, s.HTTPAddr(), nlpTok)
	code, closed := answerThenClose(t, c, 10*time.Second)
	if code != http.StatusRequestTimeout || !closed {
		t.Errorf("status %d, connection closed %v; want 408 and closed", code, closed)
	}
}

// One address cannot hold more than MaxConnsPerClient connections; others'
// requests (and its own, once it lets go) are served.
func TestConnectionsPerClient(t *testing.T) {
	lim := DefaultLimits
	lim.MaxConnsPerClient = 4
	s := limitServer(t, lim)
	var held []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", s.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// Accepted connections are counted in the accept loop: make sure all
	// four are before the fifth arrives.
	for _, c := range held {
		if _, err := fmt.Fprint(c, "GET /v1/status/leader HTTP/1.1\r\nHost: ark\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("held connection: %v", err)
		}
		resp.Body.Close()
	}
	extra, err := net.Dial("tcp", s.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("fifth connection: read %v, want EOF (closed by the server)", err)
	}
	held[0].Close()
	cl := as(t, s, mgmtTok)
	waitFor(t, 5*time.Second, "a slot to free", func() bool {
		_, err := cl.Leader(context.Background())
		return err == nil
	})
}

// A namespace token past its rate gets 429 with Retry-After; the cluster's
// own tokens are never limited.
func TestTenantRateLimit(t *testing.T) {
	lim := DefaultLimits
	lim.TenantRate, lim.TenantBurst = 0.5, 3
	s := limitServer(t, lim)
	ctx := context.Background()
	nlp := as(t, s, nlpTok)
	for i := range 3 {
		if _, err := nlp.Jobs(ctx, ""); err != nil {
			t.Fatalf("request %d within the burst: %v", i, err)
		}
	}
	_, err := nlp.Jobs(ctx, "")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("past the burst: %v, want 429", err)
	}
	// Other tokens have their own buckets, and agents and management none.
	if _, err := as(t, s, visionTok).Jobs(ctx, ""); err != nil {
		t.Errorf("vision's first request: %v", err)
	}
	mgmt := as(t, s, mgmtTok)
	for i := range 20 {
		if _, err := mgmt.Jobs(ctx, ""); err != nil {
			t.Fatalf("management request %d: %v", i, err)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+s.HTTPAddr()+"/v1/jobs", nil)
	req.Header.Set("Authorization", "Bearer "+nlpTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestRateLimiterRefills(t *testing.T) {
	now := time.Unix(0, 0)
	l := newRateLimiter(2, 2)
	l.now = func() time.Time { return now }
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.allow("a"); ok != want {
			t.Fatalf("request %d: allowed %v", i, ok)
		}
	}
	_, retry := l.allow("a")
	if retry != 500*time.Millisecond {
		t.Errorf("retry after %s, want 500ms at 2/s", retry)
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.allow("a"); !ok {
		t.Errorf("not refilled after 500ms")
	}
	if ok, _ := l.allow("b"); !ok {
		t.Errorf("another token shares the bucket")
	}
	if newRateLimiter(0, 10) != nil {
		t.Errorf("rate 0 should mean no limiter")
	}
}

// The attack: 100 specs of 1 MB from one tenant grew raft.db by 100 MB.
// A namespace's unfinished jobs are capped; others' are not affected.
func TestNamespaceMaxJobs(t *testing.T) {
	lim := DefaultLimits
	lim.NamespaceMaxJobs = 2
	s := limitServer(t, lim)
	ctx := context.Background()
	nlp := as(t, s, nlpTok)
	nlpSpec := []byte(strings.Replace(gangSpec, `"name":"gang"`, `"name":"gang","namespace":"nlp"`, 1))
	for i := range 2 {
		if _, err := nlp.SubmitJob(ctx, nlpSpec); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	_, err := nlp.SubmitJob(ctx, nlpSpec)
	if code(err) != http.StatusForbidden || !strings.Contains(err.Error(), `namespace "nlp" has 2 unfinished jobs`) {
		t.Fatalf("third job: %v, want 403 naming the limit", err)
	}
	visionSpec := []byte(strings.Replace(gangSpec, `"name":"gang"`, `"name":"gang","namespace":"vision"`, 1))
	if _, err := as(t, s, visionTok).SubmitJob(ctx, visionSpec); err != nil {
		t.Errorf("another namespace: %v", err)
	}
	// A cancelled job no longer counts.
	jobs, _ := nlp.Jobs(ctx, "")
	if err := nlp.CancelJob(ctx, jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := nlp.SubmitJob(ctx, nlpSpec); err != nil {
		t.Errorf("after a cancel: %v", err)
	}
}

// The attack: a tenant reused another namespace's idempotency key, so the
// victim's submission returned the attacker's job and its own was never
// created. Keys are now scoped to the namespace.
func TestIdempotencyKeyPerNamespace(t *testing.T) {
	s := limitServer(t, DefaultLimits)
	ctx := context.Background()
	spec := func(ns string) []byte {
		return []byte(strings.Replace(gangSpec, `"name":"gang"`, `"name":"gang","namespace":"`+ns+`"`, 1))
	}
	const key = "shared-key-0001"
	squat, err := as(t, s, visionTok).SubmitJobWithKey(ctx, spec("vision"), key)
	if err != nil {
		t.Fatal(err)
	}
	nlp := as(t, s, nlpTok)
	mine, err := nlp.SubmitJobWithKey(ctx, spec("nlp"), key)
	if err != nil {
		t.Fatal(err)
	}
	if mine.ID == squat.ID {
		t.Fatalf("nlp's submission returned vision's job %s", squat.ID)
	}
	again, err := nlp.SubmitJobWithKey(ctx, spec("nlp"), key)
	if err != nil || again.ID != mine.ID {
		t.Errorf("a retry in the same namespace: %v %v, want %s", again, err, mine.ID)
	}
}
