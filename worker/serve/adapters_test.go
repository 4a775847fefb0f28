package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ark-sched/ark/worker/train"
)

// testAdapter is an adapter of m's base with random factors (both A and B:
// a trained adapter's B is not zero).
func testAdapter(t *testing.T, m *train.Model, c train.LoRAConfig, seed uint64) *train.AdapterWeights {
	t.Helper()
	sum, err := m.ParamsSHA256()
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithDefaults()
	w := &train.AdapterWeights{Cfg: c, Model: m.Cfg, Base: "file:///ckpt", BaseSHA256: sum, Params: make([]float32, c.NumParams(m.Cfg))}
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range w.Params {
		w.Params[i] = 0.3 * float32(rng.NormFloat64())
	}
	return w
}

// memStore is the object-store tier for tests: adapters by URI, counting
// fetches; a URI in gate waits for its channel to close.
type memStore struct {
	mu      sync.Mutex
	byURI   map[string]*train.AdapterWeights
	gate    map[string]chan struct{}
	fetches atomic.Int64
}

func (s *memStore) load(ctx context.Context, uri string) (*train.AdapterWeights, error) {
	s.fetches.Add(1)
	s.mu.Lock()
	w, gate := s.byURI[uri], s.gate[uri]
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if w == nil {
		return nil, fmt.Errorf("no checkpoint at %s", uri)
	}
	return w, nil
}

func completionText(out map[string]any) string {
	return out["choices"].([]any)[0].(map[string]any)["text"].(string)
}

func completionBody(model, prompt string, tokens int) string {
	b, _ := json.Marshal(map[string]any{"model": model, "prompt": prompt, "max_tokens": tokens, "temperature": 0})
	return string(b)
}

// Requests for the base and three adapters, with two compute slots, run
// in the same batches and answer token for token what each answers
// alone; /v1/models lists the adapters under the base; adapters come and
// go at run time.
func TestAdaptersServedTogether(t *testing.T) {
	m := testModel(t)
	store := &memStore{byURI: map[string]*train.AdapterWeights{
		"mem://legal": testAdapter(t, m, train.LoRAConfig{Rank: 4}, 1),
		"mem://med":   testAdapter(t, m, train.LoRAConfig{Rank: 2, Targets: []string{train.LoRAMLP}}, 2),
		"mem://chat":  testAdapter(t, m, train.LoRAConfig{Rank: 8, Alpha: 4, Targets: []string{train.LoRAAttn}}, 3),
	}}
	url, s, start := testServerOf(t, m, Options{
		Adapters:     []AdapterSpec{{Name: "legal", URI: "mem://legal"}, {Name: "med", URI: "mem://med"}},
		AdapterSlots: 2, LoadAdapter: store.load,
	})
	if err := s.WaitAdapters(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Loaded at run time, before the engine starts: from this machine, no
	// token needed.
	code, _, out := post(t, url, "/v1/adapters", `{"name":"chat","uri":"mem://chat"}`)
	if code != 200 || out["tier"] != TierHost || out["rank"] != 8.0 {
		t.Fatalf("POST /v1/adapters: %d %v", code, out)
	}
	models := []string{"gpt-test", "legal", "med", "chat"}
	prompts := []string{"the cat", "a bird in", "x", "the dog ate the log", "lo", "sat on the"}
	type job struct{ model, prompt string }
	var jobs []job
	for i := range 12 {
		jobs = append(jobs, job{models[i%len(models)], prompts[i%len(prompts)]})
	}
	got := make([]string, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			code, _, out := post(t, url, "/v1/completions", completionBody(j.model, j.prompt, 14))
			if code != 200 {
				t.Errorf("%s: %d %v", j.model, code, out)
				return
			}
			if out["model"] != j.model {
				t.Errorf("answer names model %v, want %s", out["model"], j.model)
			}
			got[i] = completionText(out)
		})
	}
	waitFor(t, "all queued", func() bool { return s.Stats().Queued == len(jobs) })
	start()
	wg.Wait()
	if st := s.Stats(); st.MaxBatchSeen < 6 {
		t.Errorf("largest batch %d: requests of different adapters did not share batches", st.MaxBatchSeen)
	}
	alone := map[job]string{}
	for i, j := range jobs {
		_, _, out := post(t, url, "/v1/completions", completionBody(j.model, j.prompt, 14))
		alone[j] = completionText(out)
		if alone[j] != got[i] {
			t.Errorf("%s %q: batched %q, alone %q", j.model, j.prompt, got[i], alone[j])
		}
	}
	for _, a := range models[1:] {
		if alone[job{a, "the cat"}] == alone[job{"gpt-test", "the cat"}] && alone[job{a, "x"}] == alone[job{"gpt-test", "x"}] {
			t.Errorf("adapter %s answers as the base", a)
		}
	}

	// /v1/models: the base, then each adapter with the base as parent.
	var list struct {
		Data []struct {
			ID     string  `json:"id"`
			Parent *string `json:"parent"`
			Root   string  `json:"root"`
		} `json:"data"`
	}
	getJSON(t, url+"/v1/models", &list)
	if len(list.Data) != 4 || list.Data[0].ID != "gpt-test" || list.Data[0].Parent != nil {
		t.Fatalf("models %+v", list.Data)
	}
	for _, d := range list.Data[1:] {
		if d.Parent == nil || *d.Parent != "gpt-test" || !strings.HasPrefix(d.Root, "mem://") {
			t.Errorf("adapter row %+v: want parent gpt-test and its checkpoint as root", d)
		}
	}

	// Removed: unknown to requests and listings.
	req, _ := http.NewRequest(http.MethodDelete, url+"/v1/adapters/legal", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, _, out := post(t, url, "/v1/completions", completionBody("legal", "x", 2)); code != 404 || errorCode(out) != "model_not_found" {
		t.Errorf("request for a removed adapter: %d %v", code, out)
	}
	getJSON(t, url+"/v1/models", &list)
	if len(list.Data) != 3 {
		t.Errorf("models after DELETE: %+v", list.Data)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("DELETE again: %v %v", resp, err)
	}
	resp.Body.Close()
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func errorCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// A bad adapter is refused with the reason, and nothing is registered.
func TestAddAdapterErrors(t *testing.T) {
	m := testModel(t)
	other := testAdapter(t, m, train.LoRAConfig{Rank: 2}, 5)
	other.BaseSHA256 = strings.Repeat("0", 64)
	store := &memStore{byURI: map[string]*train.AdapterWeights{"mem://a": testAdapter(t, m, train.LoRAConfig{Rank: 2}, 4), "mem://other": other}}
	url, s, start := testServerOf(t, m, Options{LoadAdapter: store.load})
	start()
	for _, c := range []struct {
		body string
		code int
		want string
	}{
		{`{"name":"a","uri":"mem://a"}`, 200, ""},
		{`{"name":"a","uri":"mem://a"}`, 200, ""}, // again: idempotent
		{`{"name":"a","uri":"mem://b"}`, 409, "adapter_exists"},
		{`{"name":"gpt-test","uri":"mem://a"}`, 409, "adapter_exists"},
		{`{"name":"a/b","uri":"mem://a"}`, 400, ""},
		{`{"name":"b"}`, 400, ""},
		{`{"name":"b","uri":"mem://missing"}`, 400, "adapter_load_failed"},
		{`{"name":"c","uri":"mem://other"}`, 422, "adapter_load_failed"},
		{`{"name":"c","uri":"mem://a","extra":1}`, 400, "invalid_json"},
	} {
		code, _, out := post(t, url, "/v1/adapters", c.body)
		if code != c.code || (c.want != "" && errorCode(out) != c.want) {
			t.Errorf("%s: %d %v, want %d %s", c.body, code, out, c.code, c.want)
		}
	}
	if a := s.Adapters(); len(a) != 1 || a[0].Name != "a" {
		t.Errorf("registered %+v, want a alone", a)
	}
}

// With an admin token, managing adapters needs it.
func TestAdapterAdminToken(t *testing.T) {
	m := testModel(t)
	store := &memStore{byURI: map[string]*train.AdapterWeights{"mem://a": testAdapter(t, m, train.LoRAConfig{Rank: 2}, 4)}}
	url, _, start := testServerOf(t, m, Options{LoadAdapter: store.load, AdminToken: "s3cret"})
	start()
	if code, _, _ := post(t, url, "/v1/adapters", `{"name":"a","uri":"mem://a"}`); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/adapters", strings.NewReader(`{"lora_name":"a","lora_path":"mem://a"}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("with the token: %v %v", resp, err)
	}
	resp.Body.Close()
}

// An adapter still being fetched holds up its own requests only; one
// evicted from host memory is fetched again on demand.
func TestAdapterLoadDoesNotBlockOthers(t *testing.T) {
	m := testModel(t)
	gate := make(chan struct{})
	store := &memStore{
		byURI: map[string]*train.AdapterWeights{
			"mem://a": testAdapter(t, m, train.LoRAConfig{Rank: 2}, 1), "mem://b": testAdapter(t, m, train.LoRAConfig{Rank: 2}, 2),
			"mem://slow": testAdapter(t, m, train.LoRAConfig{Rank: 2}, 3),
		},
		gate: map[string]chan struct{}{"mem://slow": gate},
	}
	url, s, start := testServerOf(t, m, Options{
		Adapters:     []AdapterSpec{{Name: "a", URI: "mem://a"}, {Name: "b", URI: "mem://b"}, {Name: "slow", URI: "mem://slow"}},
		AdapterSlots: 1, HostAdapters: 1, LoadAdapter: store.load,
	})
	start()
	slowDone := make(chan string, 1)
	go func() {
		code, _, out := post(t, url, "/v1/completions", completionBody("slow", "x", 4))
		slowDone <- fmt.Sprint(code, errorCode(out))
	}()
	waitFor(t, "slow queued", func() bool { return s.Stats().Queued == 1 })
	// Base, a and b (one slot, one host place: they evict each other) all
	// answer while slow's fetch hangs.
	for _, model := range []string{"gpt-test", "a", "b", "a", "gpt-test"} {
		if code, _, out := post(t, url, "/v1/completions", completionBody(model, "the cat", 4)); code != 200 {
			t.Fatalf("%s while another adapter loads: %d %v", model, code, out)
		}
	}
	select {
	case r := <-slowDone:
		t.Fatalf("slow answered before its fetch ended: %s", r)
	default:
	}
	before := store.fetches.Load()
	close(gate)
	if r := <-slowDone; r != "200" {
		t.Fatalf("slow after its fetch: %s", r)
	}
	if store.fetches.Load() <= 3 || before <= 3 {
		t.Errorf("%d fetches (%d before slow's ended): want evicted adapters fetched again", store.fetches.Load(), before)
	}
	tiers := map[string]string{}
	for _, a := range s.Adapters() {
		tiers[a.Name] = a.Tier
	}
	if tiers["slow"] != TierActive {
		t.Errorf("tiers %v: want slow active", tiers)
	}
}

// An adapter whose checkpoint cannot be read fails its requests with 503
// (the others run on), and registering it again fetches it again.
func TestUnavailableAdapter(t *testing.T) {
	m := testModel(t)
	store := &memStore{byURI: map[string]*train.AdapterWeights{}}
	url, s, start := testServerOf(t, m, Options{Adapters: []AdapterSpec{{Name: "late", URI: "mem://late"}}, LoadAdapter: store.load})
	start()
	if err := s.WaitAdapters(context.Background()); err == nil {
		t.Fatal("a missing adapter checkpoint loaded")
	}
	if code, _, out := post(t, url, "/v1/completions", completionBody("late", "x", 2)); code != http.StatusServiceUnavailable {
		t.Fatalf("request for an unavailable adapter: %d %v", code, out)
	}
	if code, _, _ := post(t, url, "/v1/completions", completionBody("gpt-test", "x", 2)); code != 200 {
		t.Fatalf("the base: %d", code)
	}
	store.mu.Lock()
	store.byURI["mem://late"] = testAdapter(t, m, train.LoRAConfig{Rank: 2}, 9)
	store.mu.Unlock()
	if code, _, out := post(t, url, "/v1/adapters", `{"name":"late","uri":"mem://late"}`); code != 200 {
		t.Fatalf("registering it again: %d %v", code, out)
	}
	if code, _, out := post(t, url, "/v1/completions", completionBody("late", "x", 2)); code != 200 {
		t.Fatalf("request after the retry: %d %v", code, out)
	}
}

// With the default slot count (MaxBatch), a full batch of requests each
// for its own adapter is admitted in one step: none waits for a slot
// (with 8 slots, the old default, the bench's 32 requests over 100
// adapters queued for them).
func TestDefaultSlotsAdmitAFullBatch(t *testing.T) {
	for _, c := range []struct {
		name            string
		maxBatch, slots int
		wantSlots       int
		wantBatch       int
	}{
		{"default slots", 12, 0, 12, 12},
		{"fewer slots than the batch", 12, 5, 5, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := testModel(t)
			store := &memStore{byURI: map[string]*train.AdapterWeights{}}
			var specs []AdapterSpec
			for i := range c.maxBatch {
				uri := fmt.Sprintf("mem://a%d", i)
				store.byURI[uri] = testAdapter(t, m, train.LoRAConfig{Rank: 2}, uint64(i+1))
				specs = append(specs, AdapterSpec{Name: fmt.Sprintf("a%d", i), URI: uri})
			}
			_, s, start := testServerOf(t, m, Options{MaxBatch: c.maxBatch, AdapterSlots: c.slots, Adapters: specs, LoadAdapter: store.load})
			if err := s.WaitAdapters(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := s.eng.dec.AdapterSlots(); got != c.wantSlots {
				t.Fatalf("%d adapter slots, want %d", got, c.wantSlots)
			}
			var streams []<-chan Event
			for _, a := range specs { // all queued before the engine's first step
				ev, err := s.eng.Submit(context.Background(), Request{Adapter: a.Name, Prompt: train.Encode([]byte("the cat")), MaxTokens: 3})
				if err != nil {
					t.Fatal(err)
				}
				streams = append(streams, ev)
			}
			start()
			for i, ev := range streams {
				for e := range ev {
					if e.Done {
						if e.Err != nil || e.Tokens != 3 {
							t.Fatalf("request %d ended %+v", i, e)
						}
						break
					}
				}
			}
			if got := s.Stats().MaxBatchSeen; got != c.wantBatch {
				t.Fatalf("largest batch %d, want %d", got, c.wantBatch)
			}
		})
	}
}
