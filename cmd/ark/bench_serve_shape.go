package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/worker/train"
)

// The builtin presets have under a million parameters: their weights sit
// in one core's L2, so a token costs mostly the server's HTTP, streaming
// and sampling, and the batching and 1+N targets, which are about
// users sharing each matmul's weight reads, are not what such a model
// shows. --model-shape gives `ark bench serve` a seeded base of any shape
// (GPT-2 small's is layers=12,heads=12,width=768,context=256) without a
// preset that tests iterating train.Presets() would have to build.

// modelShapeError: a --model-shape field is unknown, repeated, malformed
// or out of range. Field is the key as given ("" for an item with none).
type modelShapeError struct {
	Field, Value, Reason string
}

func (e *modelShapeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("--model-shape: %q: %s", e.Value, e.Reason)
	}
	return fmt.Sprintf("--model-shape: %s=%s: %s", e.Field, e.Value, e.Reason)
}

// maxShapeParams bounds a --model-shape's parameters: the bench trains
// its base one step (the weights, their gradients and two AdamW moments:
// 16 GB of float32 at 1e9), and the server holds the weights and their
// packed copy before a KV cache; a typo's 10^12 should be an error naming
// the shape, not an OOM.
const maxShapeParams = 1_000_000_000

// parseModelShape applies "key=value,..." (keys layers, heads, width,
// context) to base, the --model preset's shape (gpt-tiny's without one);
// the vocabulary stays the byte tokenizer's 256.
func parseModelShape(s string, base train.Config) (train.Config, error) {
	c := base
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return train.Config{}, &modelShapeError{Value: item, Reason: "want key=value (keys layers, heads, width, context)"}
		}
		var field *int
		switch k {
		case "layers":
			field = &c.Layers
		case "heads":
			field = &c.Heads
		case "width":
			field = &c.Width
		case "context":
			field = &c.Context
		case "vocab":
			return train.Config{}, &modelShapeError{Field: k, Value: v, Reason: fmt.Sprintf("the vocabulary is the byte tokenizer's %d and cannot be set", train.ByteVocab)}
		default:
			return train.Config{}, &modelShapeError{Field: k, Value: v, Reason: "unknown field (want layers, heads, width or context)"}
		}
		if seen[k] {
			return train.Config{}, &modelShapeError{Field: k, Value: v, Reason: "given twice"}
		}
		seen[k] = true
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return train.Config{}, &modelShapeError{Field: k, Value: v, Reason: "want a whole number >= 1"}
		}
		*field = n
	}
	if c.Width%c.Heads != 0 {
		return train.Config{}, &modelShapeError{Field: "width", Value: strconv.Itoa(c.Width), Reason: fmt.Sprintf("not divisible by heads %d", c.Heads)}
	}
	// Counted in float64 (Config.NumParams's int overflows first): the
	// blocks' 12C²+13C each, the token and position embeddings.
	C := float64(c.Width)
	if n := float64(c.Layers)*(12*C*C+13*C) + float64(c.Vocab+c.Context)*C + 2*C; n > maxShapeParams {
		return train.Config{}, &modelShapeError{Value: s, Reason: fmt.Sprintf("%.3g parameters, over this bench's %.0e", n, float64(maxShapeParams))}
	}
	return c, nil
}
