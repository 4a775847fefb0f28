package jsonstr

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// Append writes what encoding/json writes: every single byte,
// HTML characters, invalid UTF-8, the JavaScript line separators, and
// random byte strings.
func TestAppendIsMarshal(t *testing.T) {
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
		if got := Append(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, json.Marshal %s", s, got, want)
		}
	}
}
