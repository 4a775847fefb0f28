package tokenizer

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestPretokenizeMatchesPerl checks the hand-written matcher against the
// pattern itself, run by Perl's regex engine (lookahead, \p{L}, \p{N},
// Unicode \s), on random strings over characters that exercise every
// alternative: contractions, spaces of several kinds before letters,
// numbers and punctuation, runs at the end.
func TestPretokenizeMatchesPerl(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but no perl (Debian's perl-base is essential)")
		}
		t.Skip("no perl: the differential check of the pre-tokenizer is not run")
	}
	pool := []string{
		"a", "Z", "é", "ß", "日本", "x", "I", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2028", "\u3000",
		"\v", "\f", "\u0085", "\x1c", "'", "s", "t", "re", "ve", "ll", "d", "m", "S", "0", "7", "42", "²", "½",
		"Ⅻ", "!", ".", ",", "-", "_", "👋", "€", "\"", "é", // the last is e + combining acute (Mn: neither L nor N)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var inputs []string
	for range 3000 {
		var b strings.Builder
		for range 1 + rng.IntN(12) {
			b.WriteString(pool[rng.IntN(len(pool))])
		}
		inputs = append(inputs, b.String())
	}
	var in bytes.Buffer
	for _, s := range inputs {
		in.WriteString(hex.EncodeToString([]byte(s)) + "\n")
	}
	cmd := exec.Command(perl, "testdata/pretokenize.pl")
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("perl: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(inputs) {
		t.Fatalf("perl answered %d lines for %d strings", len(lines), len(inputs))
	}
	bad := 0
	for i, s := range inputs {
		var want []string
		for _, h := range strings.Split(lines[i], ",") {
			if h == "" {
				continue
			}
			p, err := hex.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, string(p))
		}
		if got := Pretokenize(s); !slices.Equal(got, want) {
			t.Errorf("Pretokenize(%q) = %q, perl %q", s, got, want)
			if bad++; bad > 10 {
				t.FailNow()
			}
		}
	}
}
