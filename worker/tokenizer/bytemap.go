package tokenizer

// byteToRune is GPT-2's bytes_to_unicode: the printable Latin-1 bytes
// ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves, the other 68 bytes
// take the code points 256, 257, ... in byte order. BPE then works on
// strings of printable characters with no whitespace or control bytes.
var byteToRune [256]rune

// runeToByte inverts byteToRune.
var runeToByte = map[rune]byte{}

func init() {
	printable := func(b int) bool {
		return b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF
	}
	n := 0
	for b := range 256 {
		r := rune(b)
		if !printable(b) {
			r = rune(256 + n)
			n++
		}
		byteToRune[b] = r
		runeToByte[r] = byte(b)
	}
}

// ByteSymbols returns the byte-level string of b: one character per byte.
func ByteSymbols(b []byte) string {
	rs := make([]rune, len(b))
	for i, c := range b {
		rs[i] = byteToRune[c]
	}
	return string(rs)
}

// symbolBytes maps a byte-level string back to its bytes; ok is false when
// a character is not one of the 256 byte characters.
func symbolBytes(dst []byte, s string) ([]byte, bool) {
	for _, r := range s {
		b, ok := runeToByte[r]
		if !ok {
			return dst, false
		}
		dst = append(dst, b)
	}
	return dst, true
}
