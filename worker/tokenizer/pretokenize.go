package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Pretokenize splits text as GPT-2's pattern does:
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// Go's regexp has no lookahead, so the alternatives are tried by hand in
// the pattern's order at each position. \s is Unicode White_Space (what
// unicode.IsSpace reports), \p{L} letters, \p{N} numbers. Bytes that are not
// valid UTF-8 count as neither space, letter nor number (Python never sees
// them: its strings are decoded; here they must survive the round trip).
// The pieces are substrings of text and concatenate back to it.
func Pretokenize(text string) []string {
	var out []string
	for i := 0; i < len(text); {
		n := matchAt(text, i)
		out = append(out, text[i:i+n])
		i += n
	}
	return out
}

type class uint8

const (
	classOther class = iota
	classSpace
	classLetter
	classNumber
)

// at returns the class and byte width of the character at i.
func at(s string, i int) (class, int) {
	r, w := utf8.DecodeRuneInString(s[i:])
	switch {
	case r == utf8.RuneError && w <= 1:
		return classOther, 1
	case unicode.IsSpace(r):
		return classSpace, w
	case unicode.IsLetter(r):
		return classLetter, w
	case unicode.IsNumber(r):
		return classNumber, w
	}
	return classOther, w
}

// run returns the end of the run of characters of class c starting at i.
func run(s string, i int, c class) int {
	for i < len(s) {
		k, w := at(s, i)
		if k != c {
			break
		}
		i += w
	}
	return i
}

// matchAt returns the byte length of the pattern's match at i (always >= 1).
func matchAt(s string, i int) int {
	// 's|'t|'re|'ve|'m|'ll|'d: case-sensitive, as in GPT-2.
	if s[i] == '\'' && i+1 < len(s) {
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2] == 'e' {
				return 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2] == 'l' {
				return 3
			}
		}
	}
	// ' ?X+' for letters, numbers and the rest: an optional space, then a
	// run of one class.
	j := i
	if s[j] == ' ' {
		j++
	}
	if j < len(s) {
		if c, _ := at(s, j); c != classSpace {
			return run(s, j, c) - i
		}
	}
	// \s+(?!\S): the whitespace run, less its last character when a
	// non-space follows (that character then leads the next piece, as " "
	// does in " world"); \s+ when the run is one character.
	end := run(s, i, classSpace)
	if end == len(s) {
		return end - i
	}
	if _, w := utf8.DecodeLastRuneInString(s[i:end]); end-w > i {
		return end - w - i
	}
	return end - i
}
