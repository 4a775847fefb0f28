package serve

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ark-sched/ark/worker/train"
)

// TestModelRateLimit: each model has its own bucket. A burst past the
// base's bucket gets 429 with the wait its bucket needs, while an adapter
// served beside it is still answered; the bucket refills with time.
func TestModelRateLimit(t *testing.T) {
	m := testModel(t)
	store := &memStore{byURI: map[string]*train.AdapterWeights{"mem://legal": testAdapter(t, m, train.LoRAConfig{Rank: 4}, 1)}}
	url, s, start := testServerOf(t, m, Options{
		Adapters: []AdapterSpec{{Name: "legal", URI: "mem://legal"}}, LoadAdapter: store.load,
		ModelRate: 2, ModelBurst: 2, // a request every 0.5 s, 2 at once
	})
	if err := s.WaitAdapters(context.Background()); err != nil {
		t.Fatal(err)
	}
	start()
	for i := range 2 {
		if code, _, out := post(t, url, "/v1/completions", completionBody("gpt-test", "the cat", 2)); code != 200 {
			t.Fatalf("request %d within the burst: %d %v", i, code, out)
		}
	}
	code, h, out := post(t, url, "/v1/completions", completionBody("gpt-test", "the cat", 2))
	if code != http.StatusTooManyRequests || errorCode(out) != "rate_limit_exceeded" || h.Get("Retry-After") != "1" {
		t.Fatalf("past the burst: %d Retry-After %q %v, want 429 with Retry-After 1 (0.5 s, rounded up)", code, h.Get("Retry-After"), out)
	}
	if code, _, out := post(t, url, "/v1/completions", completionBody("legal", "the cat", 2)); code != 200 {
		t.Fatalf("the adapter's own bucket: %d %v", code, out)
	}
	// /v1/generate draws from the same bucket.
	if code, h, _ := post(t, url, "/v1/generate", `{"prompt":"the cat","tokens":2}`); code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("/v1/generate past the base's bucket: %d", code)
	}
	time.Sleep(600 * time.Millisecond) // one more request's worth
	if code, _, out := post(t, url, "/v1/completions", completionBody("gpt-test", "the cat", 2)); code != 200 {
		t.Fatalf("after the refill: %d %v", code, out)
	}
}

func TestModelLimitsRefusalTakesNothing(t *testing.T) {
	l := newModelLimits(1, 1)
	now := time.Now()
	if err := l.take("a", now); err != nil {
		t.Fatal(err)
	}
	for range 5 { // refused requests must not push the next allowed one back
		if err := l.take("a", now.Add(100*time.Millisecond)); err == nil {
			t.Fatal("a second request within the second was allowed")
		}
	}
	if err := l.take("a", now.Add(1001*time.Millisecond)); err != nil {
		t.Fatalf("after a second: %v", err)
	}
	if newModelLimits(0, 5) != nil || newModelLimits(0, 5).take("x", now) != nil {
		t.Fatal("a zero rate must limit nothing")
	}
}
