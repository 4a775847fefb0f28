package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/worker/train"
)

// testServer serves gpt-test's shape with a context of 32 (room for the
// chat template) as "gpt-test"; the
// engine starts when start is called, so tests can fill its queue first.
func testServer(t *testing.T, o Options) (url string, s *Server, start func()) {
	t.Helper()
	return testServerOf(t, testModel(t), o)
}

// testModel is gpt-test's shape with a context of testContext, seeded.
func testModel(t *testing.T) *train.Model {
	t.Helper()
	cfg, err := train.Preset("gpt-test")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Context = testContext
	d := cpu.New(1)
	t.Cleanup(func() { d.Close() })
	m, err := train.NewModel(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(1); err != nil {
		t.Fatal(err)
	}
	return m
}

// testServerOf serves m (see testServer).
func testServerOf(t *testing.T, m *train.Model, o Options) (url string, s *Server, start func()) {
	t.Helper()
	o.Model, o.Ckpt, o.Step, o.Replica = "gpt-test", "file:///ckpt", 7, "alloc-1"
	s, err := New(m, o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var once sync.Once
	start = func() { once.Do(func() { go func() { done <- s.Run(ctx) }() }) }
	t.Cleanup(func() {
		cancel()
		start() // Run ends at once on a cancelled context, failing what is queued
		<-done
		srv.Close()
	})
	return srv.URL, s, start
}

const testContext = 32

func startedServer(t *testing.T) (string, *Server) {
	url, s, start := testServer(t, Options{})
	start()
	return url, s
}

func post(t *testing.T, url, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.Post(url+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, resp.Header, out
}

func TestGenerate(t *testing.T) {
	url, _ := startedServer(t)
	code, _, out := post(t, url, "/v1/generate", `{"prompt":"ab","tokens":12,"temperature":0.5,"seed":3}`)
	if code != 200 || out["tokens"].(float64) != 12 || out["step"].(float64) != 7 || out["replica"] != "alloc-1" {
		t.Fatalf("%d %v", code, out)
	}
	// The same seed gives the same text.
	_, _, again := post(t, url, "/v1/generate", `{"prompt":"ab","tokens":12,"temperature":0.5,"seed":3}`)
	if again["text"] != out["text"] {
		t.Errorf("same request, different text: %q vs %q", out["text"], again["text"])
	}
	resp, err := http.Get(url + "/v1/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestGenerateBadInput(t *testing.T) {
	url, _ := startedServer(t)
	for body, want := range map[string]int{
		`{"prompt":"a","tokens":-1}`:      400,
		`{"prompt":"a","tokens":100000}`:  400,
		`{"prompt":"a","temperature":-1}`: 400,
		`{"prompt":"a","bogus":1}`:        400,
		`not json`:                        400,
		`{"prompt":"` + strings.Repeat("x", MaxPromptBytes+1) + `"}`: 413,
	} {
		if code, _, out := post(t, url, "/v1/generate", body); code != want || out["error"] == nil {
			t.Errorf("%.40s: %d %v, want %d with an error", body, code, out, want)
		}
	}
}

func TestModels(t *testing.T) {
	url, _ := startedServer(t)
	resp, err := http.Get(url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Object string                                 `json:"object"`
		Data   []struct{ ID, Object, OwnedBy string } `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Object != "list" || len(out.Data) != 1 || out.Data[0].ID != "gpt-test" || out.Data[0].Object != "model" {
		t.Errorf("models: %+v", out)
	}
}

// Every bad input gets OpenAI's error object: message, type, param, code.
func TestOpenAIErrors(t *testing.T) {
	url, _ := startedServer(t)
	long := strings.Repeat("x", testContext+1)
	cases := []struct {
		name, path, body string
		status           int
		param, code      any // nil: JSON null
	}{
		{"unknown model", "/v1/completions", `{"model":"gpt-4","prompt":"a"}`, 404, "model", "model_not_found"},
		{"unknown model chat", "/v1/chat/completions", `{"model":"x","messages":[{"role":"user","content":"a"}]}`, 404, "model", "model_not_found"},
		{"malformed json", "/v1/completions", `{"model":`, 400, nil, "invalid_json"},
		{"prompt too long", "/v1/completions", `{"model":"gpt-test","prompt":"` + long + `"}`, 400, "prompt", "context_length_exceeded"},
		{"messages too long", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"abcdefghijklmnopqrstuvwxyz"}]}`, 400, "messages", "context_length_exceeded"},
		{"empty prompt", "/v1/completions", `{"model":"gpt-test","prompt":""}`, 400, "prompt", nil},
		{"two prompts", "/v1/completions", `{"model":"gpt-test","prompt":["a","b"]}`, 400, "prompt", nil},
		{"token outside vocab", "/v1/completions", `{"model":"gpt-test","prompt":[1,300]}`, 400, "prompt", nil},
		{"n=2", "/v1/completions", `{"model":"gpt-test","prompt":"a","n":2}`, 400, "n", nil},
		{"max_tokens 0", "/v1/completions", `{"model":"gpt-test","prompt":"a","max_tokens":0}`, 400, "max_tokens", nil},
		{"max_tokens huge", "/v1/completions", `{"model":"gpt-test","prompt":"a","max_tokens":100000}`, 400, "max_tokens", nil},
		{"temperature", "/v1/completions", `{"model":"gpt-test","prompt":"a","temperature":3}`, 400, "temperature", nil},
		{"five stops", "/v1/completions", `{"model":"gpt-test","prompt":"a","stop":["a","b","c","d","e"]}`, 400, "stop", nil},
		{"empty stop", "/v1/completions", `{"model":"gpt-test","prompt":"a","stop":""}`, 400, "stop", nil},
		{"no messages", "/v1/chat/completions", `{"model":"gpt-test","messages":[]}`, 400, "messages", nil},
		{"bad role", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"robot","content":"a"}]}`, 400, "messages[0].role", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, out := post(t, url, c.path, c.body)
			e, ok := out["error"].(map[string]any)
			if code != c.status || !ok {
				t.Fatalf("%d %v, want %d with an error object", code, out, c.status)
			}
			for _, k := range []string{"message", "type", "param", "code"} {
				if _, ok := e[k]; !ok {
					t.Errorf("error object lacks %q: %v", k, e)
				}
			}
			if e["type"] != "invalid_request_error" || e["param"] != c.param || e["code"] != c.code || e["message"] == "" {
				t.Errorf("error %v, want param %v code %v", e, c.param, c.code)
			}
		})
	}
}

func TestCompletionUsage(t *testing.T) {
	url, _ := startedServer(t)
	code, _, out := post(t, url, "/v1/completions", `{"model":"gpt-test","prompt":"the cat","max_tokens":9,"temperature":0}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	ch := out["choices"].([]any)[0].(map[string]any)
	u := out["usage"].(map[string]any)
	if out["object"] != "text_completion" || !strings.HasPrefix(out["id"].(string), "cmpl-") || out["created"].(float64) == 0 ||
		out["model"] != "gpt-test" || ch["finish_reason"] != "length" || len(ch["text"].(string)) != 9 ||
		u["prompt_tokens"] != 7.0 || u["completion_tokens"] != 9.0 || u["total_tokens"] != 16.0 {
		t.Errorf("completion %v", out)
	}
	code, _, out = post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":""}],"max_tokens":3}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	ch = out["choices"].([]any)[0].(map[string]any)
	u = out["usage"].(map[string]any)
	msg := ch["message"].(map[string]any)
	if out["object"] != "chat.completion" || !strings.HasPrefix(out["id"].(string), "chatcmpl-") || msg["role"] != "assistant" ||
		u["prompt_tokens"] != float64(len("user: \nassistant:")) || u["completion_tokens"] != 3.0 {
		t.Errorf("chat completion %v", out)
	}
}

// A stop string ends the completion before it and is not returned.
func TestStop(t *testing.T) {
	url, _ := startedServer(t)
	_, _, out := post(t, url, "/v1/completions", `{"model":"gpt-test","prompt":"ab","max_tokens":20,"temperature":0}`)
	full := out["choices"].([]any)[0].(map[string]any)["text"].(string)
	stop := full[5:7]
	body, _ := json.Marshal(map[string]any{"model": "gpt-test", "prompt": "ab", "max_tokens": 20, "temperature": 0, "stop": []string{stop}})
	_, _, out = post(t, url, "/v1/completions", string(body))
	ch := out["choices"].([]any)[0].(map[string]any)
	want := full[:strings.Index(full, stop)]
	if ch["text"] != want || ch["finish_reason"] != "stop" {
		t.Errorf("stop %q in %q: got %q (%v), want %q", stop, full, ch["text"], ch["finish_reason"], want)
	}
	// Streamed, the held-back text never includes the stop string either.
	sb, _ := json.Marshal(map[string]any{"model": "gpt-test", "prompt": "ab", "max_tokens": 20, "temperature": 0, "stop": stop, "stream": true})
	chunks := stream(t, url, "/v1/completions", string(sb))
	if got := joinText(chunks, false); got != want {
		t.Errorf("streamed with stop: %q, want %q", got, want)
	}
}

// stream posts body and returns the SSE data payloads, checking the
// framing: every event is "data: ...\n\n", the last is [DONE], the others
// are JSON.
func stream(t *testing.T, url, path, body string) []map[string]any {
	t.Helper()
	resp, err := http.Post(url+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	var out []map[string]any
	done := false
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not a data field", line)
		}
		if !sc.Scan() || sc.Text() != "" {
			t.Fatalf("event %q not followed by a blank line", line)
		}
		if done {
			t.Fatalf("event after [DONE]: %q", line)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		out = append(out, v)
	}
	if !done {
		t.Fatal("stream did not end with data: [DONE]")
	}
	return out
}

func joinText(chunks []map[string]any, chat bool) string {
	var b strings.Builder
	for _, c := range chunks {
		chs, _ := c["choices"].([]any)
		for _, ch := range chs {
			m := ch.(map[string]any)
			if chat {
				if d, ok := m["delta"].(map[string]any); ok {
					s, _ := d["content"].(string)
					b.WriteString(s)
				}
			} else {
				s, _ := m["text"].(string)
				b.WriteString(s)
			}
		}
	}
	return b.String()
}

func TestStreamSSE(t *testing.T) {
	url, _ := startedServer(t)
	for _, chat := range []bool{false, true} {
		path, object, body := "/v1/completions", "text_completion", `"prompt":"the cat"`
		if chat {
			path, object, body = "/v1/chat/completions", "chat.completion.chunk", `"messages":[{"role":"user","content":"a"}]`
		}
		base := `{"model":"gpt-test",` + body + `,"max_tokens":30,"temperature":0`
		_, _, whole := post(t, url, path, base+"}")
		chunks := stream(t, url, path, base+`,"stream":true,"stream_options":{"include_usage":true}}`)
		if len(chunks) < 3 {
			t.Fatalf("chat %v: %d chunks", chat, len(chunks))
		}
		id := chunks[0]["id"]
		for _, c := range chunks {
			if c["object"] != object || c["id"] != id || c["model"] != "gpt-test" {
				t.Errorf("chat %v: chunk %v", chat, c)
			}
		}
		ch := whole["choices"].([]any)[0].(map[string]any)
		want, _ := ch["text"].(string)
		if chat {
			want = ch["message"].(map[string]any)["content"].(string)
			if chunks[0]["choices"].([]any)[0].(map[string]any)["delta"].(map[string]any)["role"] != "assistant" {
				t.Errorf("first chat chunk has no role: %v", chunks[0])
			}
		}
		if got := joinText(chunks, chat); got != want || whole["usage"].(map[string]any)["completion_tokens"] != 30.0 {
			t.Errorf("chat %v: streamed %q, whole %q", chat, got, want)
		}
		last := chunks[len(chunks)-2]["choices"].([]any)[0].(map[string]any)
		u := chunks[len(chunks)-1]["usage"].(map[string]any)
		if last["finish_reason"] != "length" || u["completion_tokens"] != 30.0 {
			t.Errorf("chat %v: last chunks %v %v", chat, last, u)
		}
	}
}

// Concurrent clients, decoded in one batch, get what each gets alone, at
// temperature 0 and with seeded sampling.
// Requests decoded together get what each gets alone, with the weights
// in float32 and in bfloat16.
func TestBatchedEqualsUnbatched(t *testing.T) {
	for _, w := range []string{WeightsFloat32, WeightsBF16} {
		t.Run(w, func(t *testing.T) { batchedEqualsUnbatched(t, w) })
	}
}

func batchedEqualsUnbatched(t *testing.T, weights string) {
	url, s, start := testServer(t, Options{Weights: weights})
	prompts := []string{"the cat", "a", "the dog ate", "bird in the", "x", "hand. a", "log", "mat. the dog"}
	body := func(i int) string {
		temp := 0.0
		if i%2 == 1 {
			temp = 0.9
		}
		b, _ := json.Marshal(map[string]any{"model": "gpt-test", "prompt": prompts[i], "max_tokens": 20 + 5*i, "temperature": temp, "seed": i})
		return string(b)
	}
	text := func(out map[string]any) string { return out["choices"].([]any)[0].(map[string]any)["text"].(string) }
	got := make([]string, len(prompts))
	var wg sync.WaitGroup
	for i := range prompts {
		wg.Go(func() {
			code, _, out := post(t, url, "/v1/completions", body(i))
			if code != 200 {
				t.Errorf("%d %v", code, out)
				return
			}
			got[i] = text(out)
		})
	}
	// All queued before the engine starts: they are admitted together.
	waitFor(t, "all queued", func() bool { return s.Stats().Queued == len(prompts) })
	start()
	wg.Wait()
	if st := s.Stats(); st.MaxBatchSeen != len(prompts) {
		t.Errorf("largest batch %d, want %d", st.MaxBatchSeen, len(prompts))
	}
	for i := range prompts {
		_, _, out := post(t, url, "/v1/completions", body(i))
		if alone := text(out); alone != got[i] {
			t.Errorf("prompt %d: batched %q, alone %q", i, got[i], alone)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestQueueLimit(t *testing.T) {
	url, s, start := testServer(t, Options{MaxQueue: 2})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if code, _, out := post(t, url, "/v1/completions", `{"model":"gpt-test","prompt":"a","max_tokens":3}`); code != 200 {
				t.Errorf("queued request: %d %v", code, out)
			}
		})
	}
	waitFor(t, "two queued", func() bool { return s.Stats().Queued == 2 })
	for path, body := range map[string]string{"/v1/completions": `{"model":"gpt-test","prompt":"a"}`, "/v1/generate": `{"prompt":"a"}`} {
		code, h, out := post(t, url, path, body)
		if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || out["error"] == nil {
			t.Errorf("%s over the queue limit: %d Retry-After %q %v", path, code, h.Get("Retry-After"), out)
		}
	}
	if e, _ := func() (map[string]any, bool) {
		_, _, out := post(t, url, "/v1/completions", `{"model":"gpt-test","prompt":"a"}`)
		e, ok := out["error"].(map[string]any)
		return e, ok
	}(); e["code"] != "rate_limit_exceeded" {
		t.Errorf("429 error object %v", e)
	}
	start()
	wg.Wait()
	if st := s.Stats(); st.Rejected != 3 || st.Completed != 2 {
		t.Errorf("stats %+v", st)
	}
}

// A client that disconnects mid-stream leaves the batch at once. A
// request of 2048 tokens of the test model can end in well under a second,
// before a starved test goroutine cancels it: such a try proves nothing
// and is made again.
func TestDisconnectFreesSlot(t *testing.T) {
	url, s := startedServer(t)
	for try := 1; ; try++ {
		before := s.Stats()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/completions",
			strings.NewReader(`{"model":"gpt-test","prompt":"a","max_tokens":2048,"stream":true}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(resp.Body)
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
			t.Fatalf("first event %q %v", line, err)
		}
		cancel()
		resp.Body.Close()
		var st Stats
		waitFor(t, "the request cancelled or completed", func() bool {
			st = s.Stats()
			return st.Cancelled+st.Completed > before.Cancelled+before.Completed
		})
		if st.Completed > before.Completed {
			if try == 10 {
				t.Fatalf("10 requests of 2048 tokens completed before their clients' cancel was seen: %+v", st)
			}
			continue
		}
		waitFor(t, "the slot freed", func() bool { return s.Stats().Running == 0 })
		if n := st.Tokens - before.Tokens; n >= 2048 {
			t.Errorf("the request ran on after its client left: %d tokens", n)
		}
		return
	}
}

// A request past its deadline gets a 504 timeout error, queued or running.
func TestDeadline(t *testing.T) {
	url, s, start := testServer(t, Options{RequestTimeout: 50 * time.Millisecond})
	code, _, out := post(t, url, "/v1/completions", `{"model":"gpt-test","prompt":"a"}`) // engine not started: waits in the queue
	e, _ := out["error"].(map[string]any)
	if code != http.StatusGatewayTimeout || e["type"] != "timeout" {
		t.Errorf("queued past its deadline: %d %v", code, out)
	}
	start()
	waitFor(t, "the expired request dropped", func() bool { return s.Stats().Cancelled == 1 })
	// Running: the engine drops it within a step of its deadline.
	eng := s.eng
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	events, err := eng.Submit(ctx, Request{Prompt: []int32{'a'}, MaxTokens: MaxTokens, Temperature: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var last Event
	for last = range events {
		if last.Done {
			break
		}
	}
	if last.Tokens < MaxTokens && last.Err != context.DeadlineExceeded {
		t.Errorf("running request ended %+v", last)
	}
	waitFor(t, "the slot freed", func() bool { return s.Stats().Running == 0 })
}

// TestWeightsOption: bf16 weights serve; an unknown kind is refused at
// New, naming it.
func TestWeightsOption(t *testing.T) {
	if _, err := New(testModel(t), Options{Weights: "fp8"}); err == nil || !strings.Contains(err.Error(), `"fp8"`) {
		t.Errorf("weights fp8: %v, want an error naming it", err)
	}
	url, _, start := testServer(t, Options{Weights: WeightsBF16})
	start()
	code, _, out := post(t, url, "/v1/generate", `{"prompt":"ab","tokens":12}`)
	if code != 200 || out["tokens"].(float64) != 12 {
		t.Fatalf("bf16 weights: %d %v", code, out)
	}
	resp, err := http.Get(url + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || h.Weights != WeightsBF16 {
		t.Errorf("health says weights %q (%v), want %s", h.Weights, err, WeightsBF16)
	}
}
