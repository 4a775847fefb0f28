package tokenizer

import (
	"slices"
	"strings"
	"testing"
)

// The expected splits are what GPT-2's pattern gives under Python's regex
// module (worked by hand from the pattern's alternation order, and for
// the common cases the well-known GPT-2 tokenizations).
func TestPretokenize(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Hello world", []string{"Hello", " world"}},
		{"I'm", []string{"I", "'m"}},
		{"don't you'll we've they're he'd she's", []string{"don", "'t", " you", "'ll", " we", "'ve", " they", "'re", " he", "'d", " she", "'s"}},
		{"DON'T", []string{"DON", "'", "T"}}, // the contractions are lower case only
		{"Hello  world", []string{"Hello", " ", " world"}},
		{"Hello   ", []string{"Hello", "   "}},
		{"  hello", []string{" ", " hello"}},
		{" ", []string{" "}},
		{"a\n\nb", []string{"a", "\n", "\n", "b"}},
		{"a\n\n", []string{"a", "\n\n"}},
		{"x  \ty", []string{"x", "  ", "\t", "y"}},
		{"abc123def", []string{"abc", "123", "def"}},
		{"in 2024, 3.14", []string{"in", " 2024", ",", " 3", ".", "14"}},
		{"héllo wörld", []string{"héllo", " wörld"}},
		{"日本語 テキスト", []string{"日本語", " テキスト"}},
		{"Hi 👋!", []string{"Hi", " 👋!"}},
		{"a--b", []string{"a", "--", "b"}},
		{"' s", []string{"'", " s"}},
		{"'", []string{"'"}},
		{"x's", []string{"x", "'s"}},
		{"ROMEO:\nBut", []string{"ROMEO", ":", "\n", "But"}},
		{"²½", []string{"²½"}},                     // \p{N} includes No
		{"a\u00a0b", []string{"a", "\u00a0", "b"}}, // NBSP is \s
		{"\xff\xfeab", []string{"\xff\xfe", "ab"}}, // invalid UTF-8: neither space, letter nor number
	}
	for _, tt := range tests {
		got := Pretokenize(tt.in)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Pretokenize(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Join(got, "") != tt.in {
			t.Errorf("Pretokenize(%q) pieces do not concatenate back", tt.in)
		}
	}
}

func TestByteSymbols(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{[]byte("Hello"), "Hello"},
		{[]byte(" world"), "Ġworld"}, // GPT-2's space
		{[]byte("\n"), "Ċ"},
		{[]byte{0}, "Ā"},
		{[]byte{0x7f}, "ġ"},
		{[]byte{0xad}, "Ń"}, // soft hyphen, the last remapped byte
		{[]byte("é"), "Ã©"}, // UTF-8 C3 A9, both printable Latin-1
		{[]byte{'!', '~', 0xa1, 0xac, 0xae, 0xff}, "!~¡¬®ÿ"},
	}
	for _, tt := range tests {
		if got := ByteSymbols(tt.in); got != tt.want {
			t.Errorf("ByteSymbols(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	seen := map[rune]bool{}
	for b := range 256 {
		r := byteToRune[b]
		if seen[r] {
			t.Fatalf("byte %d maps to %q, already taken", b, r)
		}
		seen[r] = true
	}
}
