package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestReadStream reads hand-written event streams: text as it comes, the
// finish reason and usage, [DONE] with or without the space, an error
// event after some text, and streams cut short or malformed.
func TestReadStream(t *testing.T) {
	cases := []struct {
		name, in   string
		text       string
		finish     string
		tokens     int
		err        error  // errors.Is
		errContain string // or the message
	}{
		{name: "completion", in: "data: {\"choices\":[{\"text\":\"he\"}]}\n\ndata: {\"choices\":[{\"text\":\"llo\"}]}\n\n" +
			"data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
			text: "hello", finish: "length", tokens: 2},
		{name: "chat deltas and a comment", in: ": keep-alive\n\ndata: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
			"data:{\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata:[DONE]\n",
			text: "hi", finish: "stop"},
		{name: "error event", in: "data: {\"choices\":[{\"text\":\"par\"}]}\n\ndata: {\"error\":{\"message\":\"request deadline passed\",\"type\":\"timeout\"}}\n\ndata: [DONE]\n\n",
			text: "par", errContain: "request deadline passed"},
		{name: "cut before done", in: "data: {\"choices\":[{\"text\":\"a\"}]}\n\n", text: "a", err: ErrStreamCut},
		{name: "empty", in: "", err: ErrStreamCut},
		{name: "not json", in: "data: {oops\n\n", errContain: "bad event"},
	}
	for _, tc := range cases {
		var got strings.Builder
		finish, u, err := ReadStream(strings.NewReader(tc.in), func(s string) error { got.WriteString(s); return nil })
		if got.String() != tc.text {
			t.Errorf("%s: text %q, want %q", tc.name, got.String(), tc.text)
		}
		switch {
		case tc.err != nil || tc.errContain != "":
			if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.errContain) {
				t.Errorf("%s: error %v, want %v %q", tc.name, err, tc.err, tc.errContain)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case finish != tc.finish || (tc.tokens > 0 && (u == nil || u.CompletionTokens != tc.tokens)):
			t.Errorf("%s: finish %q usage %+v", tc.name, finish, u)
		}
	}
	var ae *APIError
	_, _, err := ReadStream(strings.NewReader(cases[2].in), func(string) error { return nil })
	if !errors.As(err, &ae) || ae.Type != "timeout" {
		t.Errorf("an error event is not an *APIError: %#v", err)
	}
	stop := errors.New("stop")
	if _, _, err := ReadStream(strings.NewReader(cases[0].in), func(string) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("onText's error: %v", err)
	}
}

// TestClientAgainstServer sends NewCompletionRequest to a real server,
// whole and streamed, completion and chat: the stream read by ReadStream
// is the whole answer's text, with its usage. A request without a model
// is the base's, as vLLM answers it.
func TestClientAgainstServer(t *testing.T) {
	url, _ := startedServer(t)
	for i, chat := range []bool{false, true, false, true} {
		model := "gpt-test"
		if i >= 2 {
			model = ""
		}
		path := "/v1/completions"
		if chat {
			path = "/v1/chat/completions"
		}
		ask := func(stream bool) *http.Response {
			b, err := json.Marshal(NewCompletionRequest(model, "the cat", chat, stream, 20, 0, 5))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Post(url+path, "application/json", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { resp.Body.Close() })
			if resp.StatusCode != 200 {
				t.Fatalf("chat %v stream %v: %s", chat, stream, resp.Status)
			}
			return resp
		}
		var whole Completion
		if err := json.NewDecoder(ask(false).Body).Decode(&whole); err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		finish, u, err := ReadStream(ask(true).Body, func(s string) error { got.WriteString(s); return nil })
		if err != nil || got.String() != whole.Text() || whole.Text() == "" || finish != whole.FinishReason() || whole.Model != "gpt-test" ||
			u == nil || u.CompletionTokens != 20 || whole.Usage.CompletionTokens != 20 {
			t.Errorf("chat %v: streamed %q (%q %+v %v), whole %q (%q)", chat, got.String(), finish, u, err, whole.Text(), whole.FinishReason())
		}
	}
}

// FuzzReadStream: any stream ends in an answer or an error, never a panic
// or a hang, and text handed out is text some event carried.
func FuzzReadStream(f *testing.F) {
	f.Add("data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: [DONE]\n\n")
	f.Add("data: {\"error\":{\"message\":\"x\"}}\n\n")
	f.Add("data: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}],\"usage\":{\"total_tokens\":1}}\n")
	f.Add("data: {\"choices\":null}\ndata:\n")
	f.Fuzz(func(t *testing.T, in string) {
		n := 0
		_, _, _ = ReadStream(strings.NewReader(in), func(s string) error {
			n += len(s)
			return nil
		})
		if n > len(in) {
			t.Fatalf("%d bytes of text out of a %d-byte stream", n, len(in))
		}
	})
}
