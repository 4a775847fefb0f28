package serve

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The client's side of the OpenAI API this package serves, for `ark infer`:
// the same wire types the server writes (one definition), and a reader of
// its Server-Sent Events.

// CompletionRequest is the body of POST /v1/completions and
// /v1/chat/completions.
type CompletionRequest = openAIRequest

// ChatMessage is one message of a chat request.
type ChatMessage = chatMessage

// Completion is an answer of /v1/completions or /v1/chat/completions, and
// each chunk of a streamed one.
type Completion = completion

// Usage counts a completion's tokens.
type Usage = usage

// APIError is OpenAI's error object, as a stream's error event carries it.
type APIError = apiError

// NewCompletionRequest is a request for model (empty: the server's base)
// to continue prompt or, with chat, to answer it as one user message.
// Stream asks for Server-Sent Events with a usage chunk at the end.
func NewCompletionRequest(model, prompt string, chat, stream bool, maxTokens int, temperature float64, seed int64) CompletionRequest {
	r := CompletionRequest{Model: model, MaxTokens: &maxTokens, Temperature: &temperature, Seed: &seed, Stream: stream}
	if chat {
		content, _ := json.Marshal(prompt)
		r.Messages = []chatMessage{{Role: "user", Content: content}}
	} else {
		r.Prompt, _ = json.Marshal(prompt)
	}
	if stream {
		r.StreamOptions = &struct {
			IncludeUsage bool `json:"include_usage"`
		}{IncludeUsage: true}
	}
	return r
}

// Text is the text of a completion's first choice: a completion's text, a
// chat answer's content, or a chat chunk's delta.
func (c *completion) Text() string {
	if len(c.Choices) == 0 {
		return ""
	}
	ch := c.Choices[0]
	switch {
	case ch.Text != nil:
		return *ch.Text
	case ch.Message != nil && ch.Message.Content != nil:
		return *ch.Message.Content
	case ch.Delta != nil && ch.Delta.Content != nil:
		return *ch.Delta.Content
	}
	return ""
}

// FinishReason is the first choice's finish reason, "" while it runs.
func (c *completion) FinishReason() string {
	if len(c.Choices) == 0 || c.Choices[0].FinishReason == nil {
		return ""
	}
	return *c.Choices[0].FinishReason
}

// ErrStreamCut means a stream ended before its data: [DONE].
var ErrStreamCut = errors.New("the stream ended before data: [DONE]")

// maxEventBytes bounds one event's line (a chunk is one token or a held
// back stop string; an error event a message).
const maxEventBytes = 1 << 20

// ReadStream reads a streamed completion's Server-Sent Events from r,
// calling onText with each piece of text as it arrives, until data:
// [DONE]. It returns the finish reason and the usage (when the stream
// carried a usage chunk). An error event is returned as an *APIError (what
// was streamed before it was already given to onText); a stream cut off
// before [DONE] as ErrStreamCut; an error of onText as it is.
func ReadStream(r io.Reader, onText func(string) error) (finish string, u *Usage, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxEventBytes)
	for sc.Scan() {
		// SSE: "data:" with or without one space; other fields (event:,
		// id:, comments) carry nothing here.
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue
		}
		data = strings.TrimPrefix(data, " ")
		if data == "[DONE]" {
			return finish, u, nil
		}
		var ev struct {
			completion
			Error *apiError `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return finish, u, fmt.Errorf("bad event %.80q: %w", data, err)
		}
		if ev.Error != nil {
			return finish, u, ev.Error
		}
		if t := ev.Text(); t != "" {
			if err := onText(t); err != nil {
				return finish, u, err
			}
		}
		if f := ev.FinishReason(); f != "" {
			finish = f
		}
		if ev.Usage != nil {
			u = ev.Usage
		}
	}
	if err := sc.Err(); err != nil {
		return finish, u, fmt.Errorf("read the stream: %w", err)
	}
	return finish, u, ErrStreamCut
}
