package serve

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"testing"
)

// A streamed text chunk is byte for byte the json.Marshal of the chunk,
// for completions and chat, whatever the id and model hold.
func TestSSEWriterTextChunk(t *testing.T) {
	for _, chat := range []bool{false, true} {
		for _, model := range []string{"base", `m"text":""`, "<&>", `"content":""`} {
			c := completion{ID: "cmpl-1", Object: "text_completion", Created: 1700000000, Model: model}
			rec := httptest.NewRecorder()
			sse, err := newSSEWriter(rec, c, chat)
			if err != nil {
				t.Fatal(err)
			}
			for _, text := range []string{"a", "\"<\n", "é"} {
				ch := choice{}
				if chat {
					ch.Delta = &chatContent{Content: &text}
				} else {
					ch.Text = &text
				}
				c.Choices = []choice{ch}
				b, _ := json.Marshal(c)
				want := "data: " + string(b) + "\n\n"
				sse.text(text)
				if got := string(sse.buf); got != want {
					t.Fatalf("chat %v, model %q, text %q:\n got %s\nwant %s", chat, model, text, got, want)
				}
				sse.flush(false)
			}
			if !rec.Flushed {
				t.Errorf("chat %v: flush did not flush the response", chat)
			}
		}
	}
}

// A text chunk allocates nothing once the buffer has grown.
func TestSSEWriterTextAllocs(t *testing.T) {
	sse, err := newSSEWriter(httptest.NewRecorder(), completion{ID: "cmpl-1", Object: "text_completion", Model: "base"}, false)
	if err != nil {
		t.Fatal(err)
	}
	sse.text("warm")
	sse.buf = sse.buf[:0]
	if n := testing.AllocsPerRun(100, func() {
		sse.text("tok")
		sse.buf = sse.buf[:0]
	}); n != 0 {
		t.Errorf("%v allocations per text chunk, want 0", n)
	}
}

// pump flushes the events already waiting together, flushes a lone event
// before the next exists, and stops at the end.
func TestPump(t *testing.T) {
	events := make(chan Event, 8)
	for _, s := range []string{"a", "b", "c"} {
		events <- Event{Text: s}
	}
	var got []string
	var lasts []bool
	batches := make(chan []string, 8)
	add := func(ev Event) bool {
		got = append(got, ev.Text)
		return ev.Done
	}
	flush := func(last bool) {
		lasts = append(lasts, last)
		batches <- got
		got = nil
	}
	done := make(chan struct{})
	go func() {
		pump(events, add, flush)
		close(done)
	}()
	if b := <-batches; len(b) != 3 {
		t.Fatalf("first flush carried %q, want the 3 waiting events", b)
	}
	// A lone event is flushed before another is sent.
	events <- Event{Text: "d"}
	if b := <-batches; len(b) != 1 || b[0] != "d" {
		t.Fatalf("lone event: flush carried %q, want [d]", b)
	}
	events <- Event{Text: "e", Done: true}
	events <- Event{Text: "after the end"}
	if b := <-batches; len(b) != 1 || b[0] != "e" {
		t.Fatalf("last event: flush carried %q, want [e]", b)
	}
	<-done
	if len(events) != 1 {
		t.Errorf("pump read past the end: %d events left, want 1", len(events))
	}
	if want := []bool{false, false, true}; !slices.Equal(lasts, want) {
		t.Errorf("flushes marked last %v, want %v: only the end's", lasts, want)
	}
}
