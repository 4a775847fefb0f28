// Package hftest writes small random GPT-2 models in the Hugging Face
// layout (config.json, model.safetensors, tokenizer files) for tests of
// the import: no weights can be downloaded where Ark is built and tested.
package hftest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Model says what to write.
type Model struct {
	Layers, Heads, Width, Context, Vocab int
	Seed                                 uint64
	// Prefix names tensors "transformer.h.0..." as GPT2LMHeadModel saves
	// them; without it, "h.0..." as the hub's gpt2 files have.
	Prefix bool
	// BF16 stores the weights as bfloat16 (their float32 values truncated),
	// else float32.
	BF16 bool
	// Buffers adds the attention mask buffers older files carry, and the
	// tied lm_head.weight copy.
	Buffers bool
	// Tokenizer: "json" (tokenizer.json, "a b" merges), "json-pairs"
	// (tokenizer.json, [a, b] merges), "files" (vocab.json and merges.txt).
	Tokenizer string
	// Edit, when set, may change the tensors (HF names without prefix)
	// and config before they are written: to build refused models.
	Edit func(tensors map[string]Tensor, config map[string]any)
}

// Tensor is one tensor to write.
type Tensor struct {
	Shape []uint64
	Data  []float32
}

// Merges is the tokenizer's merge table: English fragments, enough that
// common words become a few tokens. Its vocabulary is the 256 byte
// symbols (ids 0..255, in byte order) then one id per merge.
var Merges = [][2]string{
	{"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"i", "n"}, {"e", "r"}, {"a", "n"},
	{"o", "u"}, {"Ġ", "a"}, {"r", "e"}, {"o", "n"}, {"Ġ", "s"}, {"e", "s"},
	{"Ġ", "w"}, {"l", "l"}, {"Ġw", "o"}, {"Ġwo", "r"}, {"Ġwor", "l"}, {"Ġworl", "d"},
	{"H", "e"}, {"He", "ll"}, {"Hell", "o"}, {"in", "g"}, {"Ġ", "c"}, {"Ġa", "n"},
	{"Ġan", "d"}, {"Ġ", "o"}, {"Ġo", "f"}, {"Ġ", "i"}, {"Ġi", "s"}, {"e", "d"},
	{"Ġ", "m"}, {"o", "r"}, {"Ġ", "b"}, {"a", "t"}, {"Ġ", "Ġ"}, {"Ġ", "f"},
}

// byteSymbol is GPT-2's bytes_to_unicode, written out here again so the
// fixture does not lean on the code it tests.
func byteSymbol(b int) string {
	if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF {
		return string(rune(b))
	}
	n := 0
	for c := range b {
		if !(c >= '!' && c <= '~' || c >= 0xA1 && c <= 0xAC || c >= 0xAE && c <= 0xFF) {
			n++
		}
	}
	return string(rune(256 + n))
}

// Vocab is the tokenizer's vocabulary.
func Vocab() map[string]int32 {
	v := map[string]int32{}
	for b := range 256 {
		v[byteSymbol(b)] = int32(b)
	}
	for _, m := range Merges {
		v[m[0]+m[1]] = int32(len(v))
	}
	return v
}

// Write writes the model into dir.
func Write(dir string, m Model) error {
	rng := rand.New(rand.NewPCG(m.Seed, 0x6866))
	C, V, T := uint64(m.Width), uint64(m.Vocab), uint64(m.Context)
	tensors := map[string]Tensor{}
	add := func(name string, scale, mean float64, shape ...uint64) {
		n := uint64(1)
		for _, s := range shape {
			n *= s
		}
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(mean + scale*rng.NormFloat64())
		}
		tensors[name] = Tensor{shape, d}
	}
	add("wte.weight", 0.3, 0, V, C)
	add("wpe.weight", 0.1, 0, T, C)
	for l := range m.Layers {
		p := fmt.Sprintf("h.%d.", l)
		add(p+"ln_1.weight", 0.1, 1, C)
		add(p+"ln_1.bias", 0.1, 0, C)
		add(p+"attn.c_attn.weight", 0.3, 0, C, 3*C)
		add(p+"attn.c_attn.bias", 0.1, 0, 3*C)
		add(p+"attn.c_proj.weight", 0.2, 0, C, C)
		add(p+"attn.c_proj.bias", 0.1, 0, C)
		add(p+"ln_2.weight", 0.1, 1, C)
		add(p+"ln_2.bias", 0.1, 0, C)
		add(p+"mlp.c_fc.weight", 0.2, 0, C, 4*C)
		add(p+"mlp.c_fc.bias", 0.1, 0, 4*C)
		add(p+"mlp.c_proj.weight", 0.1, 0, 4*C, C)
		add(p+"mlp.c_proj.bias", 0.1, 0, C)
		if m.Buffers {
			mask := make([]float32, T*T)
			for i := range T {
				for j := range i + 1 {
					mask[i*T+j] = 1
				}
			}
			tensors[p+"attn.bias"] = Tensor{[]uint64{1, 1, T, T}, mask}
			tensors[p+"attn.masked_bias"] = Tensor{nil, []float32{-1e4}}
		}
	}
	add("ln_f.weight", 0.1, 1, C)
	add("ln_f.bias", 0.1, 0, C)
	if m.Buffers {
		tensors["lm_head.weight"] = tensors["wte.weight"]
	}
	config := map[string]any{
		"model_type": "gpt2", "architectures": []string{"GPT2LMHeadModel"},
		"n_layer": m.Layers, "n_head": m.Heads, "n_embd": m.Width, "n_positions": m.Context, "n_ctx": m.Context,
		"vocab_size": m.Vocab, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
		"n_inner": nil, "scale_attn_weights": true, "tie_word_embeddings": true,
		"bos_token_id": m.Vocab - 1, "eos_token_id": m.Vocab - 1,
	}
	if m.Edit != nil {
		m.Edit(tensors, config)
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), config); err != nil {
		return err
	}
	if err := writeSafetensors(filepath.Join(dir, "model.safetensors"), tensors, m.Prefix, m.BF16); err != nil {
		return err
	}
	return writeTokenizer(dir, m.Tokenizer)
}

// writeSafetensors writes the container by hand (8-byte little-endian
// header length, JSON header, data in header order), not through the
// library the import reads with, so a shared misreading cannot hide. It
// also writes scalar (shape []) tensors, which that library's writer
// counts as empty.
func writeSafetensors(path string, tensors map[string]Tensor, prefix, bf16 bool) error {
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		names = append(names, name)
	}
	slices.Sort(names)
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, name := range names {
		t := tensors[name]
		start := len(data)
		dt := "F32"
		for _, v := range t.Data {
			if bf16 {
				data = binary.LittleEndian.AppendUint16(data, uint16(math.Float32bits(v)>>16))
			} else {
				data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
			}
		}
		if bf16 {
			dt = "BF16"
		}
		if prefix && !strings.HasPrefix(name, "lm_head.") {
			name = "transformer." + name
		}
		shape := t.Shape
		if shape == nil {
			shape = []uint64{}
		}
		header[name] = map[string]any{"dtype": dt, "shape": shape, "data_offsets": []int{start, len(data)}}
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(h)%8 != 0 { // the format pads the header with spaces to 8 bytes
		h = append(h, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(append(out, h...), data...)
	return os.WriteFile(path, out, 0o644)
}

func writeTokenizer(dir, kind string) error {
	vocab := Vocab()
	strs := make([]string, len(Merges))
	for i, m := range Merges {
		strs[i] = m[0] + " " + m[1]
	}
	pre := map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
	switch kind {
	case "", "json":
		return writeJSON(filepath.Join(dir, "tokenizer.json"), map[string]any{
			"version": "1.0", "pre_tokenizer": pre,
			"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": strs},
		})
	case "json-pairs":
		return writeJSON(filepath.Join(dir, "tokenizer.json"), map[string]any{
			"version": "1.0", "pre_tokenizer": pre,
			"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": Merges},
		})
	case "files":
		if err := writeJSON(filepath.Join(dir, "vocab.json"), vocab); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\n"+strings.Join(strs, "\n")+"\n"), 0o644)
	}
	return fmt.Errorf("hftest: tokenizer kind %q", kind)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
