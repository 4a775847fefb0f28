package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/ark-sched/ark/internal/jsonstr"
)

// sseWriter writes a stream's Server-Sent Events into one reused buffer and
// hands them to the connection with one Write and one Flush per batch of
// events ready together (a flush is a write system call per stream, a
// seventh of the server's CPU at 32 streams). A text chunk, one a token,
// is the stream's fixed JSON around the text, made once with
// encoding/json, so a token costs the text's escaping and no reflection
// or allocation; other events (the role, the finish, usage, an error) go
// through json.Marshal.
type sseWriter struct {
	w       io.Writer
	flusher http.Flusher
	buf     []byte
	// head and tail are a text chunk's JSON before and after the text's
	// quoted string.
	head, tail []byte
}

// newSSEWriter returns a writer of chunks of c (c.Choices unset), those of
// a chat stream when chat is set.
func newSSEWriter(w http.ResponseWriter, c completion, chat bool) (*sseWriter, error) {
	flusher, _ := w.(http.Flusher)
	empty := ""
	ch := choice{}
	field := []byte(`"text":""`)
	if chat {
		ch.Delta = &chatContent{Content: &empty}
		field = []byte(`"content":""`)
	} else {
		ch.Text = &empty
	}
	c.Choices = []choice{ch}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	// The choice follows every string of c (usage, after it, is unset),
	// and a string's quotes are escaped inside it, so the last match is
	// the text's.
	i := bytes.LastIndex(b, field)
	if i < 0 {
		return nil, fmt.Errorf("serve: no %s in a stream chunk %s", field, b)
	}
	i += len(field) - 2 // the empty string's quotes: jsonstr.Append writes them
	return &sseWriter{w: w, flusher: flusher, head: b[:i], tail: b[i+2:], buf: make([]byte, 0, 512)}, nil
}

// text adds a chunk carrying s.
func (s *sseWriter) text(t string) {
	s.buf = append(s.buf, "data: "...)
	s.buf = append(s.buf, s.head...)
	s.buf = jsonstr.Append(s.buf, t)
	s.buf = append(s.buf, s.tail...)
	s.buf = append(s.buf, "\n\n"...)
}

// value adds a chunk of v as JSON.
func (s *sseWriter) value(v any) {
	b, _ := json.Marshal(v)
	s.buf = append(s.buf, "data: "...)
	s.buf = append(s.buf, b...)
	s.buf = append(s.buf, "\n\n"...)
}

// done adds the stream's end.
func (s *sseWriter) done() { s.buf = append(s.buf, "data: [DONE]\n\n"...) }

// flush sends what was added. The stream's last batch (last set) is
// written but not flushed: net/http flushes it as the handler returns,
// with the chunked body's end in the same write, so the client reads
// [DONE] and the end of the body in one read (flushed here, the end went
// out in a second write system call a moment later).
func (s *sseWriter) flush(last bool) {
	if len(s.buf) > 0 {
		_, _ = s.w.Write(s.buf)
		s.buf = s.buf[:0]
	}
	if s.flusher != nil && !last {
		s.flusher.Flush()
	}
}

// pump hands each event of events to add (which reports whether the
// stream ended) and calls flush once per batch: an event with the ones
// already waiting behind it (the stream's goroutine ran late), never
// holding one for an event not yet sent; flush's argument says the batch
// is the stream's last. It returns when add reports the end or events
// closes.
func pump(events <-chan Event, add func(Event) bool, flush func(last bool)) {
	for ev := range events {
		end := add(ev)
	drain:
		for !end {
			select {
			case ev, ok := <-events:
				end = !ok || add(ev)
			default:
				break drain
			}
		}
		flush(end)
		if end {
			return
		}
	}
}
