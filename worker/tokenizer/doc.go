// Package tokenizer is GPT-2's byte-level BPE tokenizer, written from the
// published algorithm (openai/gpt-2 encoder.py): text is split into
// pre-tokens by GPT-2's pattern, each pre-token's UTF-8 bytes are mapped to
// printable characters (bytes_to_unicode), and adjacent symbols are merged
// by merge rank until no ranked pair is left. Decoding maps the symbols back
// to bytes, so Decode(Encode(b)) == b for every byte string, valid UTF-8 or
// not.
//
// A BPE loads from a Hugging Face tokenizer.json (model.vocab and
// model.merges, merges as "a b" strings or [a, b] pairs) or from GPT-2's
// vocab.json and merges.txt, and marshals to a minimal tokenizer.json that
// loads back to the same tokenizer: that is how a checkpoint carries it.
package tokenizer
