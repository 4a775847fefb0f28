package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// fileJSON is the part of a Hugging Face tokenizer.json this package reads
// and writes.
type fileJSON struct {
	Model struct {
		Type   string            `json:"type"`
		Vocab  map[string]int32  `json:"vocab"`
		Merges []json.RawMessage `json:"merges"`
	} `json:"model"`
	PreTokenizer *struct {
		Type           string `json:"type"`
		AddPrefixSpace bool   `json:"add_prefix_space"`
	} `json:"pre_tokenizer"`
}

// ParseTokenizerJSON reads a Hugging Face tokenizer.json of a byte-level
// BPE model (GPT-2's). Merges may be "a b" strings (older files) or [a, b]
// pairs (newer ones, which allow spaces inside symbols).
func ParseTokenizerJSON(data []byte) (*BPE, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: tokenizer.json: %w", ErrTokenizer, err)
	}
	if f.Model.Type != "" && f.Model.Type != "BPE" {
		return nil, fmt.Errorf("%w: tokenizer.json: model.type %q: only BPE is supported", ErrTokenizer, f.Model.Type)
	}
	if len(f.Model.Vocab) == 0 {
		return nil, fmt.Errorf("%w: tokenizer.json: model.vocab is missing or empty", ErrTokenizer)
	}
	if pt := f.PreTokenizer; pt != nil {
		// add_prefix_space would put a space before every text: GPT-2's
		// own files say false, and that is the only behaviour Encode has.
		if pt.Type != "ByteLevel" || pt.AddPrefixSpace {
			return nil, fmt.Errorf("%w: tokenizer.json: pre_tokenizer %s with add_prefix_space %v: only ByteLevel without a prefix space (GPT-2's) is supported",
				ErrTokenizer, pt.Type, pt.AddPrefixSpace)
		}
	}
	merges := make([][2]string, len(f.Model.Merges))
	for i, raw := range f.Model.Merges {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			a, b, ok := strings.Cut(s, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("%w: tokenizer.json: model.merges[%d] %q: want \"a b\"", ErrTokenizer, i, s)
			}
			merges[i] = [2]string{a, b}
			continue
		}
		var p []string
		if err := json.Unmarshal(raw, &p); err != nil || len(p) != 2 {
			return nil, fmt.Errorf("%w: tokenizer.json: model.merges[%d] %s: want \"a b\" or [\"a\", \"b\"]", ErrTokenizer, i, raw)
		}
		merges[i] = [2]string{p[0], p[1]}
	}
	return NewBPE(f.Model.Vocab, merges)
}

// ParseVocabMerges reads GPT-2's original files: vocab.json (symbol -> id)
// and merges.txt (an optional "#version" line, then one "a b" per line).
func ParseVocabMerges(vocabJSON, mergesTxt []byte) (*BPE, error) {
	var vocab map[string]int32
	if err := json.Unmarshal(vocabJSON, &vocab); err != nil {
		return nil, fmt.Errorf("%w: vocab.json: %w", ErrTokenizer, err)
	}
	var merges [][2]string
	sc := bufio.NewScanner(bytes.NewReader(mergesTxt))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimRight(sc.Text(), "\r")
		if s == "" || line == 1 && strings.HasPrefix(s, "#version") {
			continue
		}
		a, b, ok := strings.Cut(s, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("%w: merges.txt:%d: %q: want \"a b\"", ErrTokenizer, line, s)
		}
		merges = append(merges, [2]string{a, b})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: merges.txt: %w", ErrTokenizer, err)
	}
	return NewBPE(vocab, merges)
}

// MarshalJSON writes the tokenizer as a minimal tokenizer.json (a BPE model
// with pair merges and the ByteLevel pre-tokenizer) that ParseTokenizerJSON
// reads back.
func (t *BPE) MarshalJSON() ([]byte, error) {
	type pre struct {
		Type           string `json:"type"`
		AddPrefixSpace bool   `json:"add_prefix_space"`
	}
	type model struct {
		Type   string           `json:"type"`
		Vocab  map[string]int32 `json:"vocab"`
		Merges [][2]string      `json:"merges"`
	}
	merges := make([][2]string, len(t.merges))
	for i, m := range t.merges {
		merges[i] = [2]string{m.a, m.b}
	}
	return json.Marshal(struct {
		Model        model `json:"model"`
		PreTokenizer pre   `json:"pre_tokenizer"`
	}{model{"BPE", t.vocab, merges}, pre{Type: "ByteLevel"}})
}
