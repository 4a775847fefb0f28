package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// testChoice and testChunk mirror the chunks worker/serve streams (its
// types are unexported; the field order is the server's).
type testChoice struct {
	Index        int       `json:"index"`
	Text         *string   `json:"text,omitempty"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type testChunk struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []testChoice `json:"choices"`
	Usage   *Usage       `json:"usage,omitempty"`
}

func testChunkJSON(t testing.TB, text, finish *string, u *Usage) []byte {
	t.Helper()
	c := testChunk{ID: "cmpl-0123456789abcdef01234567", Object: "text_completion", Created: 1765000000, Model: "ad-007", Choices: []testChoice{}, Usage: u}
	if u == nil {
		c.Choices = []testChoice{{Text: text, FinishReason: finish}}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// referenceChunk is what scanChunk must read of a chunk, with json.Unmarshal.
func referenceChunk(b []byte) (sseChunk, error) {
	var chunk struct {
		Choices []struct {
			Text string `json:"text"`
		} `json:"choices"`
		Usage *struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &chunk); err != nil {
		return sseChunk{}, err
	}
	var c sseChunk
	c.text = len(chunk.Choices) > 0 && chunk.Choices[0].Text != ""
	if chunk.Usage != nil {
		c.usage, c.completionTokens = true, chunk.Usage.CompletionTokens
	}
	if chunk.Error != nil {
		c.err = chunk.Error.Message
		if c.err == "" {
			c.err = "(no message)"
		}
	}
	return c, nil
}

func TestScanChunk(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name    string
		in      string
		want    sseChunk
		wantErr bool
	}{
		{name: "text", in: string(testChunkJSON(t, str("king"), nil, nil)), want: sseChunk{text: true}},
		{name: "escaped text", in: string(testChunkJSON(t, str("\"<\\\n\u2028\x01"), nil, nil)), want: sseChunk{text: true}},
		{name: "empty text", in: string(testChunkJSON(t, str(""), nil, nil))},
		{name: "finish", in: string(testChunkJSON(t, str(""), str("length"), nil))},
		{name: "usage", in: string(testChunkJSON(t, nil, nil, &Usage{PromptTokens: 32, CompletionTokens: 64, TotalTokens: 96})), want: sseChunk{usage: true, completionTokens: 64}},
		{name: "error event", in: `{"error":{"message":"engine stopped","type":"server_error","param":null,"code":null}}`, want: sseChunk{err: "engine stopped"}},
		{name: "error without message", in: `{"error":{}}`, want: sseChunk{err: "(no message)"}},
		{name: "keys in another order, spaces", in: ` { "usage" : null , "choices" : [ { "finish_reason":null, "text" : "a" }, {"text":""} ], "x":[1,-2.5e3,true,false,{"y":[]}] } `, want: sseChunk{text: true}},
		{name: "second choice's text is not read", in: `{"choices":[{"text":""},{"text":"b"}]}`},
		{name: "null text", in: `{"choices":[{"text":null}]}`},
		{name: "escaped key", in: `{"choices":[{"t\u0065xt":"a"}],"\u0075sage":{"completion_tokens":3}}`, want: sseChunk{text: true, usage: true, completionTokens: 3}},
		{name: "usage without completion_tokens", in: `{"usage":{}}`, want: sseChunk{usage: true}},
		{name: "not an object", in: `[]`, wantErr: true},
		{name: "cut short", in: `{"choices":[{"text":"ab`, wantErr: true},
		{name: "data after", in: `{} {}`, wantErr: true},
		{name: "bad escape", in: `{"id":"\x"}`, wantErr: true},
		{name: "raw control character", in: "{\"id\":\"a\x01\"}", wantErr: true},
		{name: "text not a string", in: `{"choices":[{"text":5}]}`, wantErr: true},
		{name: "fractional tokens", in: `{"usage":{"completion_tokens":6.5}}`, wantErr: true},
		{name: "leading zero", in: `{"n":01}`, wantErr: true},
		{name: "missing comma", in: `{"a":1 "b":2}`, wantErr: true},
		{name: "trailing comma", in: `{"a":1,}`, wantErr: true},
		{name: "bad literal", in: `{"a":nul}`, wantErr: true},
		{name: "empty", in: ``, wantErr: true},
	} {
		got, err := scanChunk([]byte(tc.in))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: scanChunk(%s) = %+v, %v; want %+v, error %v", tc.name, tc.in, got, err, tc.want, tc.wantErr)
		}
		if ref, rerr := referenceChunk([]byte(tc.in)); (rerr != nil) != tc.wantErr || ref != tc.want {
			t.Errorf("%s: json.Unmarshal reads %+v, %v (the table is wrong)", tc.name, ref, rerr)
		}
	}
}

// scanChunk reads what json.Unmarshal reads of random chunks as the server
// writes them: any text (quotes, backslashes, control characters, invalid
// UTF-8, U+2028), finish reasons, usage.
func TestScanChunkMatchesJSON(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", " ", "\"", "\\", "\n", "\x00", "\x1f", "<", "&", "é", "\u2028", "\xff", "/", "{", "}", "[", "]", ","}
	for i := range 2000 {
		var text *string
		var sb strings.Builder
		for range rng.IntN(6) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		if s := sb.String(); rng.IntN(8) > 0 {
			text = &s
		}
		var finish *string
		if rng.IntN(4) == 0 {
			f := "length"
			finish = &f
		}
		var u *Usage
		if rng.IntN(4) == 0 {
			u = &Usage{PromptTokens: rng.IntN(100), CompletionTokens: rng.IntN(100)}
		}
		b := testChunkJSON(t, text, finish, u)
		got, err := scanChunk(b)
		want, werr := referenceChunk(b)
		if err != nil || werr != nil || got != want {
			t.Fatalf("case %d: %s: scanChunk %+v, %v; json.Unmarshal %+v, %v", i, b, got, err, want, werr)
		}
		if !utf8.Valid(b) {
			continue
		}
		// Cut anywhere, it is an error to both.
		cut := b[:rng.IntN(len(b))]
		if _, err := scanChunk(cut); err == nil {
			t.Fatalf("case %d: scanChunk(%s) read a cut chunk", i, cut)
		}
	}
}

// A token's chunk costs the load generator no allocation (AllocsPerRun
// cannot run in parallel; this test takes a millisecond).
func TestScanChunkAllocs(t *testing.T) {
	text := "king"
	b := testChunkJSON(t, &text, nil, nil)
	if n := testing.AllocsPerRun(100, func() { _, _ = scanChunk(b) }); n != 0 {
		t.Fatalf("scanChunk allocates %.0f times a text chunk", n)
	}
}

// fakeSSEServer streams completions the way worker/serve does (a chunk a
// token, a finish chunk, a usage chunk, [DONE]); it knows model "base"
// and answers "short" with one token less than asked. It records the
// requests and counts the connections.
type fakeSSEServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string
	conns    int
}

func newFakeSSEServer(t *testing.T) *fakeSSEServer {
	t.Helper()
	f := &fakeSSEServer{}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Model     string `json:"model"`
			Prompt    string `json:"prompt"`
			MaxTokens int    `json:"max_tokens"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, body.Model+"|"+body.Prompt)
		f.mu.Unlock()
		n := body.MaxTokens
		switch body.Model {
		case "base":
		case "short":
			n--
		default:
			http.Error(w, `{"error":{"message":"no such model"}}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range n {
			tok := fmt.Sprintf("t%d\"", i)
			fmt.Fprintf(w, "data: %s\n\n", testChunkJSON(t, &tok, nil, nil))
			w.(http.Flusher).Flush()
		}
		empty, finish := "", "length"
		fmt.Fprintf(w, "data: %s\n\ndata: %s\n\ndata: [DONE]\n\n", testChunkJSON(t, &empty, &finish, nil), testChunkJSON(t, nil, nil, &Usage{CompletionTokens: n}))
		// As worker/serve does, the body's end (the chunked encoding's
		// last chunk) goes after [DONE], in a write of its own; here
		// late, so a client that closed the body at [DONE] would lose
		// the connection every time.
		w.(http.Flusher).Flush()
		time.Sleep(time.Millisecond)
	}))
	f.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
		}
	}
	f.Start()
	t.Cleanup(f.Close)
	return f
}

// take returns the requests and connections seen since the last call.
func (f *fakeSSEServer) take() (requests []string, conns int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	requests, conns = f.requests, f.conns
	f.requests, f.conns = nil, 0
	slices.Sort(requests)
	return requests, conns
}

func TestRunLoadFakeServer(t *testing.T) {
	t.Parallel()
	f := newFakeSSEServer(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		cfg        LoadConfig
		wantFailed int
		wantError  string
	}{
		{name: "closed loop", cfg: LoadConfig{Models: []string{"base"}, Concurrency: 4, Requests: 32, PromptBytes: 10, OutputTokens: 8, Seed: 1}},
		{name: "poisson", cfg: LoadConfig{Models: []string{"base"}, Concurrency: 3, Rate: 2000, Requests: 24, PromptBytes: 10, OutputTokens: 4, Seed: 2}},
		{name: "unknown model", cfg: LoadConfig{Models: []string{"nope"}, Concurrency: 2, Requests: 3, OutputTokens: 4}, wantFailed: 3, wantError: "404"},
		{name: "too few tokens", cfg: LoadConfig{Models: []string{"short", "base"}, Concurrency: 2, Requests: 16, OutputTokens: 4, Seed: 3}, wantFailed: -1, wantError: "3 tokens, want 4"},
	} {
		tc.cfg.URL = f.URL
		res, err := RunLoad(ctx, tc.cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, conns := f.take()
		// The same seed asks the same requests (rows of builds compared
		// side by side ask the same of each).
		again, err := RunLoad(ctx, tc.cfg)
		if err != nil {
			t.Fatalf("%s: again: %v", tc.name, err)
		}
		want, _ := f.take()
		if !slices.Equal(got, want) || len(got) != tc.cfg.Requests {
			t.Errorf("%s: requests %q, then %q", tc.name, got, want)
		}
		if res.Failed != again.Failed || res.Requests != tc.cfg.Requests {
			t.Errorf("%s: %d of %d failed, then %d", tc.name, res.Failed, res.Requests, again.Failed)
		}
		if tc.wantFailed >= 0 && res.Failed != tc.wantFailed || tc.wantFailed < 0 && res.Failed == 0 || !strings.Contains(res.FirstError, tc.wantError) {
			t.Errorf("%s: %d failed (%q), want %d (%q)", tc.name, res.Failed, res.FirstError, tc.wantFailed, tc.wantError)
		}
		if tc.wantFailed == 0 {
			if done := float64(tc.cfg.Requests); res.OutputThroughput*res.DurationSec < done*float64(tc.cfg.OutputTokens)*0.999 ||
				res.RequestThroughput*res.DurationSec < done*0.999 || res.TTFTMsP50 <= 0 || res.TTFTMsP99 < res.TTFTMsP50 || res.TPOTMsP50 < 0 {
				t.Errorf("%s: %+v", tc.name, res)
			}
			// Kept alive: a client's requests share a connection (a
			// client may take another's while its own is dialled, and
			// find none free: at most twice as many).
			if conns > 2*tc.cfg.Concurrency {
				t.Errorf("%s: %d connections for %d clients", tc.name, conns, tc.cfg.Concurrency)
			}
		}
	}
	if _, err := RunLoad(ctx, LoadConfig{URL: f.URL, Concurrency: 1}); err == nil {
		t.Fatal("no models: no error")
	}
}

// A stream that ends before data: [DONE], or carries an error event, fails
// its request with that said.
func TestRunLoadStreamErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"cut", "data: {\"choices\":[{\"text\":\"a\"}]}\n\n", "without [DONE]"},
		{"cut mid-line", "data: {\"choices\":[{\"te", "unexpected EOF"},
		{"error event", "data: {\"error\":{\"message\":\"engine stopped\"}}\n\ndata: [DONE]\n\n", "error event: engine stopped"},
		{"bad event", "data: {\"choices\":\n\n", "bad event"},
		{"long event", "data: {\"id\":\"" + strings.Repeat("x", 2*maxLoadLine) + "\"}\n\n", "longer than"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, tc.body)
		}))
		res, err := RunLoad(context.Background(), LoadConfig{URL: srv.URL, Models: []string{"base"}, Concurrency: 1, Requests: 1, OutputTokens: 1})
		srv.Close()
		if err != nil || res.Failed != 1 || !strings.Contains(res.FirstError, tc.want) {
			t.Errorf("%s: %+v, %v; want one failed with %q", tc.name, res, err, tc.want)
		}
	}
}

// FuzzScanChunk: scanChunk reads what a server streams to the load
// generator; whatever the bytes, it must not panic, and what it takes is
// one JSON object.
func FuzzScanChunk(f *testing.F) {
	text := "hi"
	f.Add(testChunkJSON(f, &text, nil, nil))
	f.Add(testChunkJSON(f, nil, nil, &Usage{PromptTokens: 3, CompletionTokens: 64}))
	f.Add([]byte(`{"error":{"message":"model \"x\" not found"}}`))
	f.Add([]byte(`{"choices":[{"text":"\ud83d\ude00"}],"usage":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := scanChunk(b); err == nil && !json.Valid(b) {
			t.Fatalf("scanChunk took %q, which is not JSON", b)
		}
	})
}
