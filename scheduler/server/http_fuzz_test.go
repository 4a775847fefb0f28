package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// fuzzRoutes are the API's JSON bodies other than job specs (fuzzed in
// scheduler/spec), sent by agents and operators. Raft join is left out: a
// body that decodes would add a voter at a made-up address, and the
// single-server cluster would lose its quorum.
var fuzzRoutes = []struct{ method, path string }{
	{http.MethodPost, "/v1/nodes/register"},
	{http.MethodPut, "/v1/nodes/n1/drain"},
	{http.MethodPut, "/v1/nodes/n1/eligibility"},
	{http.MethodPut, "/v1/allocations/{alloc}/status"},
	{http.MethodPut, "/v1/nodes/n1/heartbeat"},
	{http.MethodPost, "/v1/jobs/{job}/adapters"}, // a batch job: decoded, then 409
}

// FuzzHTTPBodies sends arbitrary bodies to the server's non-spec JSON
// routes through its real HTTP listener: nothing a caller sends makes a
// 5xx; a refusal is a 4xx with a JSON error that says something; an
// answer is JSON; and what an allocation records of a status update stays
// within its bounds as valid UTF-8.
func FuzzHTTPBodies(f *testing.F) {
	s := startFuzzServer(f)
	c, err := client.New(s.HTTPAddr())
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.RegisterNode(ctx, fakeNode("n1", 4)); err != nil {
		f.Fatal(err)
	}
	resp, err := c.SubmitJob(ctx, []byte(`{"name":"fz","kind":"batch","replicas":1,"resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["true"]}}}`))
	if err != nil {
		f.Fatal(err)
	}
	var allocID string
	for deadline := time.Now().Add(20 * time.Second); allocID == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.Fatal("timed out waiting for the job's allocation")
		}
		if j, _, err := c.Job(ctx, resp.ID, 0, 0); err == nil && len(j.Allocations) == 1 {
			allocID = j.Allocations[0].ID
		}
	}
	f.Add(uint8(0), []byte(`{"name":"n2","address":"10.0.0.2","cpuMilli":64000,"memoryBytes":1099511627776,"fabric":"ib0","gpus":[{"index":0,"uuid":"GPU-1","model":"NVIDIA H200","memoryBytes":150323855360}]}`))
	f.Add(uint8(0), []byte(`{"name":"n3","address":"10.0.0.3","cpuMilli":1000,"memoryBytes":1,"gpus":[{"index":1}]}`))
	f.Add(uint8(0), []byte(`{"name":"n 4","id":"a/b","address":"","cpuMilli":-1,"memoryBytes":0}`))
	f.Add(uint8(0), []byte(`{"name":"n5","address":"x","cpuMilli":1,"memoryBytes":1}{"name":"n6"}`))
	f.Add(uint8(1), []byte(`{"enable":true,"deadline":"1h"}`))
	f.Add(uint8(1), []byte(`{"enable":true,"deadline":"-5s"}`))
	f.Add(uint8(1), []byte(`{"enable":false}`))
	f.Add(uint8(2), []byte(`{"eligible":"yes"}`))
	f.Add(uint8(2), []byte(`{"eligible":true}`))
	f.Add(uint8(3), []byte(`{"status":"running","progress":"step 5/10","checkpoint":{"uri":"s3://b/ns/fz/5","step":5}}`))
	f.Add(uint8(3), []byte(`{"status":"running","progress":"x`+strings.Repeat("é", 600)+`"}`))
	f.Add(uint8(3), []byte(`{"status":"running","checkpoint":{"uri":"","step":-1}}`))
	f.Add(uint8(3), []byte(`{"status":"exploded","exitCode":1.5}`))
	f.Add(uint8(4), []byte(``))
	f.Add(uint8(4), []byte(`{"loads":[{"allocId":"x","running":3,"waiting":1,"requests":9,"ttftP90Ms":12.5}]}`))
	f.Add(uint8(4), []byte(`{"loads":[{"allocId":"","running":-3}],"extra":1}`))
	f.Add(uint8(5), []byte(`{"name":"legal","uri":"file:///data/a","pinned":true}`))
	f.Add(uint8(5), []byte(`{"name":"","uri":"model://x@-1","extra":1}`))
	f.Add(uint8(0), []byte(`null`))
	f.Add(uint8(1), []byte(`[`))
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		url := "http://" + s.HTTPAddr() + strings.NewReplacer("{alloc}", allocID, "{job}", resp.ID).Replace(rt.path)
		req, err := http.NewRequest(rt.method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s %q: %v", rt.method, rt.path, body, err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, res.StatusCode, raw)
		}
		if !json.Valid(raw) || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s %s %q: %d answered with no JSON: %q", rt.method, rt.path, body, res.StatusCode, raw)
		}
		if res.StatusCode >= 400 {
			var e api.Error
			if err := json.Unmarshal(raw, &e); err != nil || strings.TrimSpace(e.Error) == "" {
				t.Fatalf("%s %s %q: %d with no error message: %s", rt.method, rt.path, body, res.StatusCode, raw)
			}
		}
		if a := s.store.Snapshot().Alloc(nil, allocID); a != nil {
			if len(a.Progress) > 1024 || !utf8.ValidString(a.Progress) || len(a.Message) > 4096 || !utf8.ValidString(a.Message) {
				t.Fatalf("after %s %q the allocation records progress %q, message %q", rt.path, body, a.Progress, a.Message)
			}
		}
	})
}

// startFuzzServer is startServer for a fuzz target: one single-voter
// server for every input, its logs discarded (fuzzing sends many bad
// requests on purpose).
func startFuzzServer(f *testing.F) *Server {
	f.Helper()
	s, err := New(Config{
		Name: "s1", HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", Bootstrap: true,
		DataDir: f.TempDir(), HeartbeatTTL: time.Hour, Logger: zap.NewNop(),
	})
	if err != nil {
		f.Fatalf("new server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	f.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.Errorf("server run: %v", err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); !s.IsLeader(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.Fatal("timed out waiting for the server to lead")
		}
	}
	return s
}
