package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestServiceNamespaceRateLimit: calls to a namespace's services share one
// bucket at the server, whoever makes them; past it they get 429 with
// Retry-After in OpenAI's error shape and never reach a replica. Another
// namespace's services have their own bucket, and service calls are not
// charged to the token's control-plane bucket.
func TestServiceNamespaceRateLimit(t *testing.T) {
	lim := DefaultLimits
	lim.ServiceRate, lim.ServiceBurst = 0.01, 3 // no refill within the test
	lim.TenantRate, lim.TenantBurst = 0.01, 3
	s := tokenServer(t, Config{Limits: &lim})
	ctx := context.Background()
	mgmt, nlp := as(t, s, mgmtTok), as(t, s, nlpTok)
	if _, err := mgmt.RegisterNode(ctx, fakeNode("a", 2)); err != nil {
		t.Fatal(err)
	}
	svc := func(ns string) string {
		body := fmt.Sprintf(`{"name":"svc","namespace":%q,"kind":"inference","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["serve"]}}}`, ns)
		sub, err := mgmt.SubmitJob(ctx, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return sub.ID
	}
	nlpJob, visionJob := svc("nlp"), svc("vision")
	var answered atomic.Int32
	for _, id := range []string{nlpJob, visionJob} {
		var job *api.Job
		waitUntil(t, 10*time.Second, "the replica placed", func() bool {
			var err error
			job, _, err = mgmt.Job(ctx, id, 0, 0)
			return err == nil && len(job.Allocations) == 1
		})
		a := job.Allocations[0]
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port)))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			answered.Add(1)
			fmt.Fprint(w, "ok")
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		ready := true
		if err := mgmt.UpdateAllocStatus(ctx, a.ID, api.AllocStatusUpdate{Status: api.AllocRunning, Ready: &ready}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, "the service running", func() bool {
			j, _, err := mgmt.Job(ctx, id, 0, 0)
			return err == nil && j.Status == api.JobRunning
		})
	}
	call := func(tok, job string) (int, http.Header, string) {
		req, _ := http.NewRequest("POST", "http://"+s.HTTPAddr()+"/v1/services/"+job+"/v1/completions", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	// The namespace's burst, taken by its token and management together.
	for i, tok := range []string{nlpTok, mgmtTok, nlpTok} {
		if code, _, body := call(tok, nlpJob); code != 200 {
			t.Fatalf("call %d within the burst: %d %s", i, code, body)
		}
	}
	before := answered.Load()
	for _, tok := range []string{nlpTok, mgmtTok} {
		code, h, body := call(tok, nlpJob)
		var e struct {
			Error struct {
				Message, Type string
				Code          *string
				Param         *string
			}
		}
		if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || json.Unmarshal([]byte(body), &e) != nil ||
			e.Error.Type != "rate_limit_exceeded" || e.Error.Code == nil || *e.Error.Code != "rate_limit_exceeded" || e.Error.Message == "" {
			t.Errorf("past the burst: %d Retry-After %q %s, want 429 in OpenAI's shape", code, h.Get("Retry-After"), body)
		}
	}
	if answered.Load() != before {
		t.Errorf("a refused call reached the replica")
	}
	// Vision's services have their own bucket.
	if code, _, body := call(visionTok, visionJob); code != 200 {
		t.Errorf("vision's first call: %d %s", code, body)
	}
	// The nlp token's control-plane bucket (3) is untouched by its 4
	// service calls.
	for i := range 3 {
		if _, err := nlp.Jobs(ctx, ""); err != nil {
			t.Fatalf("nlp control call %d: %v", i, err)
		}
	}
}

// TestServiceCallsCountAgainstTokenWithoutServiceRate: with no service
// bucket (the default) a namespace token's service calls take from its
// own bucket, as every call did before the service bucket existed.
func TestServiceCallsCountAgainstTokenWithoutServiceRate(t *testing.T) {
	lim := DefaultLimits
	lim.TenantRate, lim.TenantBurst = 0.01, 3
	s := tokenServer(t, Config{Limits: &lim})
	ctx := context.Background()
	sub, err := as(t, s, mgmtTok).SubmitJob(ctx, []byte(`{"name":"svc","namespace":"nlp","kind":"inference","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["serve"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var codes []int
	for range 4 {
		req, _ := http.NewRequest("GET", "http://"+s.HTTPAddr()+"/v1/services/"+sub.ID+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+nlpTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	// No replica (no node): 503 while the token's bucket lasts, then 429.
	if fmt.Sprint(codes) != "[503 503 503 429]" {
		t.Errorf("service calls answered %v, want [503 503 503 429]", codes)
	}
}
