package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// FuzzTaskReport sends arbitrary bodies, as tenant code can, to the
// agent's task report endpoint with the task's own token: a refusal is a
// 4xx with a JSON error that says something, never a 5xx (the fake servers
// here refuse only what the real ones refuse, so a 5xx means the agent
// passed on a report it should have refused itself); a report
// the agent takes is passed to the servers as a running status with
// exactly the progress and checkpoint the task sent, and one of metrics
// alone (checked) stays on the node.
func FuzzTaskReport(f *testing.F) {
	var mu sync.Mutex
	var got []api.AllocStatusUpdate
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var u api.AllocStatusUpdate
		if r.Method != http.MethodPut || r.URL.Path != "/v1/allocations/fz-0-aa/status" || json.NewDecoder(r.Body).Decode(&u) != nil {
			http.Error(w, `{"error":"unexpected call"}`, http.StatusTeapot)
			return
		}
		if cp := u.Checkpoint; cp != nil && (cp.URI == "" || len(cp.URI) > 2048 || cp.Step < 0) { // as the servers do
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"checkpoint: needs a uri (at most 2048 characters) and a step >= 0"}`)
			return
		}
		mu.Lock()
		got = append(got, u)
		mu.Unlock()
		_, _ = io.WriteString(w, `{"index":1}`)
	}))
	f.Cleanup(srv.Close)
	c, err := client.New(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		f.Fatal(err)
	}
	a := &Agent{
		reportKey: []byte("0123456789abcdef0123456789abcdef"), cfg: Config{Name: "fz"}, log: zap.NewNop(), client: c,
		tasks: map[string]*task{"fz-0-aa": {done: make(chan struct{})}},
	}
	h := a.routes()
	token := a.taskToken("fz-0-aa")
	for _, s := range []string{
		`{"progress":"step 5/10 loss 2.31"}`,
		`{"progress":"step 5/10","checkpoint":{"uri":"s3://b/ns/fz/5","step":5,"time":"2026-01-02T03:04:05Z"}}`,
		`{"checkpoint":{"uri":"file:///ckpt/fz/000000000007","step":7}}`,
		`{}`, `{"bogus":1}`, `not json`, `null`, `{"progress":""}{"progress":"x"}`,
		`{"checkpoint":{"uri":"","step":-1}}`, `{"checkpoint":{"step":1e30}}`, `{"checkpoint":null,"progress":"\ud800"}`,
		`{"metrics":{"train":{"step":3,"loss":2.5,"tokensPerSecond":900}}}`,
		`{"progress":"step 3/9","metrics":{"train":{"step":3,"loss":2.5,"tokensPerSecond":900}}}`,
		`{"metrics":{"serve":{"running":1,"ttftSeconds":{"bounds":[0.1,1],"counts":[1,2,0],"sum":1.2},"requests":{"":1,"a":2},"ruleActions":{"mask":1}}}}`,
		`{"metrics":{"serve":{"requests":{"a\"b":1}}}}`, `{"metrics":{}}`, `{"metrics":{"train":{"loss":-1}}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		mu.Lock()
		got = got[:0]
		mu.Unlock()
		req := httptest.NewRequest(http.MethodPost, "/v1/allocations/fz-0-aa/report", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		mu.Lock()
		forwarded := append([]api.AllocStatusUpdate(nil), got...)
		mu.Unlock()
		switch code := rec.Code; {
		case code == http.StatusNoContent:
			var rep api.TaskReport
			if err := json.Unmarshal([]byte(body), &rep); err != nil {
				t.Fatalf("report %q taken, but it is not JSON: %v", body, err)
			}
			if rep.Progress == "" && rep.Checkpoint == nil && len(rep.Evals) == 0 {
				// Metrics alone stay on the node.
				if rep.Metrics == nil || rep.Metrics.Check() != nil || len(forwarded) != 0 {
					t.Fatalf("report %q of metrics alone taken with figures %+v, passed on as %+v", body, rep.Metrics, forwarded)
				}
				return
			}
			if len(forwarded) != 1 || forwarded[0].Status != api.AllocRunning || forwarded[0].Progress != rep.Progress ||
				(forwarded[0].Checkpoint == nil) != (rep.Checkpoint == nil) {
				t.Fatalf("report %q passed on as %+v", body, forwarded)
			}
			if cp := forwarded[0].Checkpoint; cp != nil && (cp.URI != rep.Checkpoint.URI || cp.Step != rep.Checkpoint.Step || cp.Time.IsZero()) {
				t.Fatalf("report %q passed on checkpoint %+v", body, cp)
			}
		case code >= 400 && code < 500:
			var e api.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || strings.TrimSpace(e.Error) == "" {
				t.Fatalf("report %q: %d with no JSON error: %q", body, code, rec.Body.String())
			}
			if len(forwarded) != 0 {
				t.Fatalf("report %q refused (%d) but passed on as %+v", body, code, forwarded)
			}
		default:
			t.Fatalf("report %q: %d %s", body, code, rec.Body.String())
		}
	})
}
