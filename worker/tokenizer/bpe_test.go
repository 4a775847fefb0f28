package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// testVocab is the 256 byte symbols (ids 0..255 in byte order) followed
// by one id per merge result, in merge order.
func testVocab(merges [][2]string) map[string]int32 {
	v := map[string]int32{}
	for b := range 256 {
		v[string(byteToRune[b])] = int32(b)
	}
	for _, m := range merges {
		if _, ok := v[m[0]+m[1]]; !ok {
			v[m[0]+m[1]] = int32(len(v))
		}
	}
	return v
}

var testMerges = [][2]string{
	{"l", "l"},    // 256
	{"h", "e"},    // 257
	{"he", "ll"},  // 258
	{"hell", "o"}, // 259
	{"Ġ", "w"},    // 260
	{"o", "r"},    // 261
	{"Ġw", "or"},  // 262
	{"e", "l"},    // 263: ranked below l+l, so "ell" is e + ll
	{"Ġ", "Ġ"},    // 264
	{"ĠĠ", "ĠĠ"},  // 265
	{"'", "m"},    // 266
}

func newTestBPE(t testing.TB) *BPE {
	t.Helper()
	b, err := NewBPE(testVocab(testMerges), testMerges)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBPEEncode(t *testing.T) {
	b := newTestBPE(t)
	tests := []struct {
		in   string
		want []string // symbols
	}{
		{"hello", []string{"hello"}},
		{"hello world", []string{"hello", "Ġwor", "l", "d"}},
		{"yell", []string{"y", "e", "ll"}},       // l+l outranks e+l
		{"yel", []string{"y", "el"}},             // no l+l: e+l applies
		{"hellllo", []string{"hell", "ll", "o"}}, // l+l twice, h+e, he+ll; hell+o never meets o
		{"     x", []string{"ĠĠĠĠ", "Ġ", "x"}},   // "    " + " x"; the spaces merge pairwise
		{"I'm", []string{"I", "'m"}},
		{"é", []string{"Ã", "©"}},
		{"", nil},
	}
	for _, tt := range tests {
		ids := b.Encode([]byte(tt.in))
		var got []string
		for _, id := range ids {
			got = append(got, b.tokens[id])
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Encode(%q) = %q, want %q", tt.in, got, tt.want)
		}
		back, err := b.Decode(ids)
		if err != nil || string(back) != tt.in {
			t.Errorf("Decode(Encode(%q)) = %q, %v", tt.in, back, err)
		}
	}
}

func TestNewBPERefuses(t *testing.T) {
	full := testVocab(testMerges)
	without := func(sym string) map[string]int32 {
		v := testVocab(testMerges)
		id := v[sym]
		delete(v, sym)
		for s, i := range v { // keep ids dense
			if i > id {
				v[s] = i - 1
			}
		}
		return v
	}
	with := func(sym string, id int32) map[string]int32 {
		v := testVocab(testMerges)
		v[sym] = id
		return v
	}
	tests := []struct {
		name   string
		vocab  map[string]int32
		merges [][2]string
		want   string
	}{
		{"missing byte", without("Ġ"), nil, `byte 0x20 ("Ġ") has no token`},
		{"merge part missing", full, [][2]string{{"q", "zz"}}, `merges[0] "q" "zz": "zz" is not in the vocab`},
		{"merge result missing", full, [][2]string{{"q", "z"}}, `"qz" is not in the vocab`},
		{"repeated merge", full, [][2]string{{"l", "l"}, {"l", "l"}}, `merges[1] "l" "l" repeats merges[0]`},
		{"not byte-level", with(" plain space", int32(len(full))), nil, `" plain space" (id 267) is not a byte-level symbol`},
		{"hole in ids", with("Ġx", 500), nil, "ids run to 500 but there are 268 entries"},
		{"negative id", with("Ġx", -1), nil, `"Ġx" has id -1`},
	}
	for _, tt := range tests {
		_, err := NewBPE(tt.vocab, tt.merges)
		if !errors.Is(err, ErrTokenizer) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestDecodeOutOfRange(t *testing.T) {
	b := newTestBPE(t)
	if _, err := b.Decode([]int32{1, 267}); err == nil || !strings.Contains(err.Error(), "token 267 (at 1) is outside the vocabulary of 267") {
		t.Fatalf("err = %v", err)
	}
}

// mergeStrings writes merges as tokenizer.json's older "a b" strings.
func mergeStrings(ms [][2]string) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m[0] + " " + m[1]
	}
	return out
}

func TestLoadFormats(t *testing.T) {
	vocab := testVocab(testMerges)
	vocabJSON, _ := json.Marshal(vocab)
	strJSON, _ := json.Marshal(map[string]any{
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": mergeStrings(testMerges)},
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true},
	})
	pairJSON, _ := json.Marshal(map[string]any{"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": testMerges}})
	mergesTxt := "#version: 0.2\n" + strings.Join(mergeStrings(testMerges), "\n") + "\n"

	ref := newTestBPE(t)
	text := []byte("hello world, I'm yelling     x\n\n\xff")
	want := ref.Encode(text)
	load := map[string]func() (*BPE, error){
		"tokenizer.json strings": func() (*BPE, error) { return ParseTokenizerJSON(strJSON) },
		"tokenizer.json pairs":   func() (*BPE, error) { return ParseTokenizerJSON(pairJSON) },
		"vocab.json+merges.txt":  func() (*BPE, error) { return ParseVocabMerges(vocabJSON, []byte(mergesTxt)) },
		"marshalled": func() (*BPE, error) {
			data, err := json.Marshal(ref)
			if err != nil {
				return nil, err
			}
			return ParseTokenizerJSON(data)
		},
	}
	for name, f := range load {
		b, err := f()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := b.Encode(text); !slices.Equal(got, want) {
			t.Errorf("%s: Encode = %v, want %v", name, got, want)
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	vocab := testVocab(testMerges)
	doc := func(model, pre any) []byte {
		m := map[string]any{"model": model}
		if pre != nil {
			m["pre_tokenizer"] = pre
		}
		b, _ := json.Marshal(m)
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"not json", []byte("{"), "tokenizer.json"},
		{"wordpiece", doc(map[string]any{"type": "WordPiece", "vocab": vocab}, nil), `model.type "WordPiece": only BPE`},
		{"no vocab", doc(map[string]any{"type": "BPE"}, nil), "model.vocab is missing"},
		{"bad merge string", doc(map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{"ab"}}, nil), `model.merges[0] "ab": want "a b"`},
		{"bad merge pair", doc(map[string]any{"type": "BPE", "vocab": vocab, "merges": [][]string{{"a"}}}, nil), `model.merges[0] ["a"]`},
		{"prefix space", doc(map[string]any{"type": "BPE", "vocab": vocab}, map[string]any{"type": "ByteLevel", "add_prefix_space": true}), "add_prefix_space true"},
		{"other pre-tokenizer", doc(map[string]any{"type": "BPE", "vocab": vocab}, map[string]any{"type": "Whitespace"}), "pre_tokenizer Whitespace"},
	}
	for _, tt := range tests {
		_, err := ParseTokenizerJSON(tt.data)
		if !errors.Is(err, ErrTokenizer) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	vocabJSON, _ := json.Marshal(vocab)
	if _, err := ParseVocabMerges(vocabJSON, []byte("#version: 0.2\nl l\nbad\n")); err == nil || !strings.Contains(err.Error(), `merges.txt:3: "bad"`) {
		t.Errorf("merges.txt: err = %v", err)
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "hello world", "I'm  here\n\n", "héllo 👋!", "\xff\x00ab 12", "     x"} {
		f.Add([]byte(s))
	}
	b := newTestBPE(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if got := strings.Join(Pretokenize(string(in)), ""); got != string(in) {
			t.Fatalf("Pretokenize(%q) joins to %q", in, got)
		}
		ids := b.Encode(in)
		back, err := b.Decode(ids)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, in) {
			t.Fatalf("Decode(Encode(%q)) = %q (ids %v)", in, back, ids)
		}
	})
}
