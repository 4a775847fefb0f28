package serve

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The health answer's phases account for the requests served: every
// request's engine phases, the streams' own, the loop's prefills and
// steps, and a request's phases fit in the time the test took.
func TestHealthPhases(t *testing.T) {
	url, _ := startedServer(t)
	start := time.Now()
	var wg sync.WaitGroup
	for range 3 { // concurrent: some share a prefill or a step
		wg.Go(func() {
			stream(t, url, "/v1/completions", `{"model":"gpt-test","prompt":"the cat","max_tokens":12,"temperature":0,"stream":true}`)
		})
	}
	wg.Wait()
	if code, _, out := post(t, url, "/v1/generate", `{"prompt":"ab","tokens":5}`); code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	took := float64(time.Since(start)) / 1e6
	h := getHealth(t, url)
	p := h.Phases
	for _, c := range []struct {
		what      string
		got, want uint64
	}{
		{"requests", p.Requests, 4},
		{"streams", p.Streams, 3},
		{"prefills", p.Prefills, 4},
	} {
		if c.got != c.want {
			t.Errorf("%s %d, want %d (phases %+v)", c.what, c.got, c.want, p)
		}
	}
	if p.PrefillCalls < 1 || p.PrefillCalls > 4 {
		t.Errorf("%d prefill calls for 4 requests", p.PrefillCalls)
	}
	if p.StepMs <= 0 || p.PrefillMs <= 0 || p.DecodeMs <= 0 || p.IdleMs <= 0 {
		t.Errorf("phases without time: %+v", p)
	}
	// Every step carries at most the 3 streams' rows and at least one.
	if p.BatchRowMs < p.StepMs || p.BatchRowMs > 3*p.StepMs {
		t.Errorf("step-time batch %.2f, want 1..3", p.BatchRowMs/p.StepMs)
	}
	for _, c := range []struct {
		what string
		ms   float64
		n    uint64
	}{
		{"handler", p.HandlerMs, p.Streams}, {"queue", p.QueueMs, p.Requests}, {"prefill", p.ReqPrefillMs, p.Requests},
		{"decode", p.DecodeMs, p.Requests}, {"end", p.EndMs, p.Streams}, {"write", p.WriteMs, p.Streams},
	} {
		if c.ms < 0 || c.ms > took*float64(c.n) {
			t.Errorf("%s %.3f ms over %d requests, the test took %.1f ms", c.what, c.ms, c.n, took)
		}
	}
	if loop := p.IdleMs + p.PrefillMs + p.StepMs; loop > took+float64(time.Minute/time.Millisecond) {
		t.Errorf("loop phases %.1f ms", loop)
	}
}

// opsWriter records a handler's writes and flushes in order.
type opsWriter struct {
	h   http.Header
	ops []string // "write DATA" or "flush"
}

func (w *opsWriter) Header() http.Header { return w.h }
func (w *opsWriter) WriteHeader(int)     {}
func (w *opsWriter) Write(b []byte) (int, error) {
	w.ops = append(w.ops, "write "+string(b))
	return len(b), nil
}
func (w *opsWriter) Flush() { w.ops = append(w.ops, "flush") }

// A stream's last batch ([DONE] with the chunks before it) is written and
// left to net/http, which flushes it with the chunked body's end in one
// write; every batch before it is flushed as it is written.
func TestStreamLastBatchNotFlushed(t *testing.T) {
	_, s := startedServer(t)
	for _, body := range []string{
		`{"model":"gpt-test","prompt":"the cat","max_tokens":6,"temperature":0,"stream":true}`,
		`{"model":"gpt-test","messages":[{"role":"user","content":"a"}],"max_tokens":6,"temperature":0,"stream":true}`,
	} {
		path := "/v1/completions"
		if strings.Contains(body, "messages") {
			path = "/v1/chat/completions"
		}
		w := &opsWriter{h: http.Header{}}
		s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, bytes.NewReader([]byte(body))))
		n := len(w.ops) // one op when the engine was done before the handler wrote
		if n == 0 {
			t.Fatalf("%s: nothing written", path)
		}
		if last := w.ops[n-1]; !strings.HasPrefix(last, "write ") || !strings.HasSuffix(last, "data: [DONE]\n\n") || strings.Count(last, "[DONE]") != 1 {
			t.Errorf("%s: last op %q, want the write of [DONE]", path, last)
		}
		for i, op := range w.ops[:n-1] {
			if strings.HasPrefix(op, "write ") && (i+1 >= n-1 || w.ops[i+1] != "flush") {
				t.Errorf("%s: write %d (%q) not flushed before the next: %q", path, i, op, w.ops)
			}
		}
	}
}
