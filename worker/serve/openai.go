package serve

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/worker/serve/rules"
	"github.com/ark-sched/ark/worker/train"
)

// Defaults and limits of the OpenAI API.
const (
	DefaultMaxTokens     = 16  // /v1/completions, as OpenAI
	DefaultChatMaxTokens = 128 // /v1/chat/completions
	maxStops             = 4
	maxBodyBytes         = MaxPromptBytes + 64<<10
)

// openAIRequest is the body of /v1/completions and /v1/chat/completions
// (fields of one or the other); fields Ark does not use (top_p, user, ...)
// are accepted and ignored, as clients send them.
type openAIRequest struct {
	// omitempty: clients (client.go) send only what they set.
	Model               string          `json:"model,omitempty"`
	Prompt              json.RawMessage `json:"prompt,omitempty"`
	Messages            []chatMessage   `json:"messages,omitempty"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	Seed                *int64          `json:"seed,omitempty"`
	Stop                json.RawMessage `json:"stop,omitempty"`
	N                   *int            `json:"n,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// apiError is OpenAI's error object.
type apiError struct {
	status     int
	retryAfter string  // a 429's Retry-After, when not the default
	Message    string  `json:"message"`
	Type       string  `json:"type"`
	Param      *string `json:"param"`
	Code       *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

func badRequest(param, code, format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, "invalid_request_error", param, code, fmt.Sprintf(format, args...))
}

func newAPIError(status int, typ, param, code, msg string) *apiError {
	e := &apiError{status: status, Message: msg, Type: typ}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	return e
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusTooManyRequests {
		after := e.retryAfter
		if after == "" {
			after = retryAfter
		}
		w.Header().Set("Retry-After", after)
	}
	reply(w, e.status, map[string]*apiError{"error": e})
}

// engineError is the OpenAI error for an engine failure.
func engineError(err error) *apiError {
	status, typ := errorStatus(err)
	code := typ
	if status >= 500 {
		code = ""
	}
	e := newAPIError(status, typ, "", code, err.Error())
	e.retryAfter = retryAfterOf(err)
	return e
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type choice struct {
	Index        int          `json:"index"`
	Text         *string      `json:"text,omitempty"`    // completions
	Message      *chatContent `json:"message,omitempty"` // chat
	Delta        *chatContent `json:"delta,omitempty"`   // chat stream
	Logprobs     *struct{}    `json:"logprobs"`          // always null
	FinishReason *string      `json:"finish_reason"`
}

type chatContent struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type completion struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
	Usage   *usage   `json:"usage,omitempty"`
}

// handleOpenAI answers /v1/completions (chat false) and
// /v1/chat/completions, whole or streamed.
func (s *Server) handleOpenAI(w http.ResponseWriter, r *http.Request, chat bool) {
	start := time.Now()
	var body openAIRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&body); err != nil {
		writeError(w, badRequest("", "invalid_json", "could not parse the JSON body: %v", err))
		return
	}
	if body.Model == "" {
		body.Model = s.opt.Model // as vLLM: no model is the base
	}
	c := completion{ID: newID(chat), Object: "text_completion", Created: time.Now().Unix(), Model: body.Model}
	if chat {
		c.Object = "chat.completion"
	}
	set := s.ruleSet()
	req, promptTokens, blocked, aerr := s.parse(&body, chat, set, c.ID)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	ctx, cancel := withDeadline(r.Context(), s.opt.RequestTimeout)
	defer cancel()
	var res result
	if blocked != nil {
		// An input rule answered for the model: nothing is queued.
		res = result{text: blocked.Answer, finish: finishFiltered}
	}
	if body.Stream {
		includeUsage := body.StreamOptions != nil && body.StreamOptions.IncludeUsage
		s.stream(w, r, ctx, cancel, start, req, c, chat, promptTokens, includeUsage, set, blocked)
		return
	}
	if blocked == nil {
		var err error
		if res, err = s.complete(ctx, cancel, req, set, c.ID); err != nil {
			writeError(w, engineError(err))
			return
		}
	}
	ch := choice{FinishReason: &res.finish}
	if chat {
		ch.Message = &chatContent{Role: "assistant", Content: &res.text}
	} else {
		ch.Text = &res.text
	}
	c.Choices = []choice{ch}
	c.Usage = &usage{PromptTokens: promptTokens, CompletionTokens: res.tokens, TotalTokens: promptTokens + res.tokens}
	reply(w, http.StatusOK, c)
}

// parse validates a request into the engine's terms, with the input
// rules of set applied to its prompt: a block comes back as the decision,
// with no request to queue.
func (s *Server) parse(b *openAIRequest, chat bool, set *rules.Set, id string) (Request, int, *rules.Decision, *apiError) {
	adapter, aerr := s.model(b.Model)
	if aerr != nil {
		return Request{}, 0, nil, aerr
	}
	var text string
	param := "prompt"
	if chat {
		param = "messages"
		var err *apiError
		if text, err = renderChat(b.Messages); err != nil {
			return Request{}, 0, nil, err
		}
	} else {
		var err *apiError
		if text, err = parsePrompt(b.Prompt, s.eng.tok); err != nil {
			return Request{}, 0, nil, err
		}
	}
	if text != "" {
		var ds []rules.Decision
		text, ds = set.Input(b.Model, text)
		s.logDecisions(id, ds)
		if n := len(ds); n > 0 {
			switch last := ds[n-1]; last.Action {
			case spec.RuleBlock:
				return Request{}, 0, &last, nil
			case spec.RuleRoute:
				// A route to an adapter this server does not
				// serve leaves the request with its model.
				if a, err := s.model(last.Route); err == nil {
					adapter = a
				}
			}
		}
	}
	if text == "" {
		return Request{}, 0, nil, badRequest(param, "", "%s: must not be empty", param)
	}
	prompt := s.eng.tok.Encode([]byte(text))
	if T := s.eng.Config().Context; len(prompt) > T {
		return Request{}, 0, nil, badRequest(param, "context_length_exceeded",
			"this model's context is %d tokens; the prompt has %d", T, len(prompt))
	}
	req := Request{Adapter: adapter, Prompt: prompt, MaxTokens: DefaultMaxTokens, Temperature: 1, Seed: rand.Uint64()}
	if chat {
		req.MaxTokens = DefaultChatMaxTokens
	}
	maxTok, maxParam := b.MaxTokens, "max_tokens"
	if b.MaxCompletionTokens != nil {
		maxTok, maxParam = b.MaxCompletionTokens, "max_completion_tokens"
	}
	if maxTok != nil {
		if *maxTok < 1 || *maxTok > MaxTokens {
			return Request{}, 0, nil, badRequest(maxParam, "", "%s: must be 1..%d, got %d", maxParam, MaxTokens, *maxTok)
		}
		req.MaxTokens = *maxTok
	}
	if b.Temperature != nil {
		if *b.Temperature < 0 || *b.Temperature > 2 {
			return Request{}, 0, nil, badRequest("temperature", "", "temperature: must be 0..2, got %g", *b.Temperature)
		}
		req.Temperature = *b.Temperature
	}
	if b.Seed != nil {
		req.Seed = uint64(*b.Seed)
	}
	if b.N != nil && *b.N != 1 {
		return Request{}, 0, nil, badRequest("n", "", "n: only 1 is supported, got %d", *b.N)
	}
	stops, aerr := parseStop(b.Stop)
	if aerr != nil {
		return Request{}, 0, nil, aerr
	}
	req.Stop = stops
	return req, len(prompt), nil, nil
}

// parsePrompt accepts a string, an array of one string, or an array of
// token ids of the model's tokenizer (bytes, or an imported model's BPE).
func parsePrompt(raw json.RawMessage, tok train.Tokenizer) (string, *apiError) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		if len(list) != 1 {
			return "", badRequest("prompt", "", "prompt: only one prompt per request is supported, got %d", len(list))
		}
		return list[0], nil
	}
	var ids []int
	if err := json.Unmarshal(raw, &ids); err == nil {
		toks := make([]int32, len(ids))
		for i, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				return "", badRequest("prompt", "", "prompt[%d]: token %d outside the vocabulary of %d", i, id, tok.VocabSize())
			}
			toks[i] = int32(id)
		}
		b, err := tok.Decode(toks)
		if err != nil {
			return "", badRequest("prompt", "", "prompt: %v", err)
		}
		return string(b), nil
	}
	return "", badRequest("prompt", "", "prompt: want a string, an array of one string, or an array of token ids")
}

// renderChat is the chat template: one line per message, "ROLE: CONTENT",
// then "assistant:" for the model to continue.
func renderChat(msgs []chatMessage) (string, *apiError) {
	if len(msgs) == 0 {
		return "", badRequest("messages", "", "messages: at least one message is required")
	}
	var b strings.Builder
	for i, m := range msgs {
		switch m.Role {
		case "system", "developer", "user", "assistant":
		default:
			return "", badRequest(fmt.Sprintf("messages[%d].role", i), "", "messages[%d].role: want system, developer, user or assistant, got %q", i, m.Role)
		}
		text, ok := messageText(m.Content)
		if !ok {
			return "", badRequest(fmt.Sprintf("messages[%d].content", i), "", "messages[%d].content: want a string or an array of text parts", i)
		}
		fmt.Fprintf(&b, "%s: %s\n", m.Role, text)
	}
	b.WriteString("assistant:")
	return b.String(), nil
}

// messageText reads a message's content: a string or text parts.
func messageText(raw json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", false
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", false
		}
		b.WriteString(p.Text)
	}
	return b.String(), true
}

// parseStop accepts null, a string or up to four strings.
func parseStop(raw json.RawMessage) ([]string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		list = []string{one}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badRequest("stop", "", "stop: want a string or an array of strings")
	}
	if len(list) > maxStops {
		return nil, badRequest("stop", "", "stop: at most %d strings, got %d", maxStops, len(list))
	}
	for i, s := range list {
		if s == "" {
			return nil, badRequest("stop", "", "stop[%d]: must not be empty", i)
		}
	}
	return list, nil
}

// stream answers with Server-Sent Events: one chunk per batch of text the
// engine emits (a token, or more when a possible stop string was held
// back), a last chunk with the finish reason, optionally a usage chunk,
// then [DONE]. An error after the first byte is an error event.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, ctx context.Context, cancel context.CancelFunc, start time.Time, req Request, c completion, chat bool, promptTokens int, includeUsage bool, set *rules.Set, blocked *rules.Decision) {
	if chat {
		c.Object = "chat.completion.chunk"
	}
	sse, err := newSSEWriter(w, c, chat)
	if err != nil {
		writeError(w, engineError(err))
		return
	}
	var events <-chan Event
	if blocked != nil {
		// An input rule's answer, streamed as the model's would be.
		ch := make(chan Event, 1)
		ch <- Event{Text: blocked.Answer, Done: true, Finish: finishFiltered}
		close(ch)
		events = ch
	} else if events, err = s.submit(ctx, cancel, req, set, c.ID); err != nil {
		writeError(w, engineError(err))
		return
	}
	submitted := time.Now()
	var last, taken time.Time // the engine's last event: sent, and read here
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	chunk := func(text *string, finish *string, role string) completion {
		ch := choice{FinishReason: finish}
		if chat {
			ch.Delta = &chatContent{Role: role, Content: text}
		} else {
			if text == nil {
				empty := ""
				text = &empty
			}
			ch.Text = text
		}
		out := c
		out.Choices = []choice{ch}
		return out
	}
	if chat { // OpenAI's first chat chunk carries the role
		empty := ""
		sse.value(chunk(&empty, nil, "assistant"))
		sse.flush(false)
	}
	// add writes ev's chunks into the buffer and reports whether the
	// stream ended.
	add := func(ev Event) bool {
		if ev.Text != "" {
			sse.text(ev.Text)
		}
		if ev.Blocked != "" {
			// What was streamed before the blocked phrase stays; the
			// rule's answer follows it.
			sse.text(ev.Blocked)
		}
		if !ev.Done {
			return false
		}
		last, taken = ev.at, time.Now()
		if ev.Err != nil {
			if r.Context().Err() == nil { // someone still listens
				sse.value(map[string]*apiError{"error": engineError(ev.Err)})
				sse.done()
			}
			return true
		}
		sse.value(chunk(nil, &ev.Finish, ""))
		if includeUsage {
			u := c
			u.Choices = []choice{}
			u.Usage = &usage{PromptTokens: promptTokens, CompletionTokens: ev.Tokens, TotalTokens: promptTokens + ev.Tokens}
			sse.value(u)
		}
		sse.done()
		return true
	}
	pump(events, add, sse.flush)
	s.eng.phases.streamed(start, submitted, last, taken, time.Now())
}

func newID(chat bool) string {
	var b [12]byte
	_, _ = cryptorand.Read(b[:])
	if chat {
		return "chatcmpl-" + hex.EncodeToString(b[:])
	}
	return "cmpl-" + hex.EncodeToString(b[:])
}
