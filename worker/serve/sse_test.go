package serve

import (
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
)

// appendJSONString writes what encoding/json writes: every single byte,
// HTML characters, invalid UTF-8, the JavaScript line separators, and
// random byte strings.
func TestAppendJSONString(t *testing.T) {
	cases := []string{"", "plain", `q"uote\back`, "<a href='x'>&amp;</a>", "\u2028\u2029", "\xff\xfe", "é😀\x00\x1f\x7f", "a\tb\nc\rd\be\ff"}
	for b := range 256 {
		cases = append(cases, string([]byte{byte(b)}), "x"+string([]byte{byte(b)})+"y")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, json.Marshal %s", s, got, want)
		}
	}
}

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
				sse.flush()
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
