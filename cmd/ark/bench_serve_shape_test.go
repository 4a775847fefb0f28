package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/ark-sched/ark/worker/train"
)

// parseModelShape sets the fields it is given over the preset's, and an
// error names the field at fault.
func TestParseModelShape(t *testing.T) {
	t.Parallel()
	tiny, err := train.Preset("gpt-tiny")
	if err != nil {
		t.Fatal(err)
	}
	gpt2 := train.Config{Layers: 12, Heads: 12, Width: 768, Context: 256, Vocab: train.ByteVocab}
	for _, c := range []struct {
		in        string
		want      train.Config
		errField  string // "" with errIn: an item with no field
		errIn     string // in the error's text
		wantError bool
	}{
		{in: "layers=12,heads=12,width=768,context=256", want: gpt2},
		{in: " layers = 12 , heads=12,width=768, context=256 ", want: gpt2},
		{in: "layers=6,width=384", want: train.Config{Layers: 6, Heads: 4, Width: 384, Context: 64, Vocab: train.ByteVocab}},
		{in: "context=128", want: train.Config{Layers: 2, Heads: 4, Width: 64, Context: 128, Vocab: train.ByteVocab}},
		{in: "layers=0", errField: "layers", errIn: "whole number", wantError: true},
		{in: "heads=-2", errField: "heads", errIn: "whole number", wantError: true},
		{in: "width=wide", errField: "width", errIn: "whole number", wantError: true},
		{in: "width=100,heads=3", errField: "width", errIn: "divisible by heads 3", wantError: true},
		{in: "depth=12", errField: "depth", errIn: "unknown field", wantError: true},
		{in: "vocab=50257", errField: "vocab", errIn: "byte tokenizer", wantError: true},
		{in: "layers=2,layers=4", errField: "layers", errIn: "given twice", wantError: true},
		{in: "layers", errIn: "key=value", wantError: true},
		{in: "layers=2,", errIn: "key=value", wantError: true},
		{in: "=3", errIn: "key=value", wantError: true},
		{in: "layers=1000,width=8192", errIn: "parameters", wantError: true},
		{in: "width=4000000000", errIn: "parameters", wantError: true},
	} {
		got, err := parseModelShape(c.in, tiny)
		if !c.wantError {
			if err != nil || got != c.want {
				t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
			}
			continue
		}
		var se *modelShapeError
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v, want a modelShapeError", c.in, err)
			continue
		}
		if se.Field != c.errField || !strings.Contains(err.Error(), c.errIn) || !strings.Contains(err.Error(), "--model-shape") {
			t.Errorf("%q: error %q (field %q), want field %q and %q", c.in, err, se.Field, c.errField, c.errIn)
		}
	}
}

// benchModel keeps --model's preset and name without a shape, and names
// a shape of its own gpt-LxW.
func TestBenchModel(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		model, shape, name string
		layers, width      int
	}{
		{"gpt-small", "", "gpt-small", 4, 128},
		{"", "layers=12,heads=12,width=768,context=256", "gpt-12x768", 12, 768},
		{"gpt-small", "layers=6", "gpt-6x128", 6, 128},
		{"", "layers=2", "gpt-tiny", 2, 64}, // gpt-tiny's own shape keeps its name
	} {
		cfg, name, err := benchModel(c.model, c.shape)
		if err != nil || name != c.name || cfg.Layers != c.layers || cfg.Width != c.width {
			t.Errorf("benchModel(%q, %q) = %+v, %q, %v; want %q, %d x %d", c.model, c.shape, cfg, name, err, c.name, c.layers, c.width)
		}
	}
	var ue usageError
	if _, _, err := benchModel("gpt-huge", ""); !errors.As(err, &ue) {
		t.Errorf("unknown --model: %v, want a usage error", err)
	}
	if _, _, err := benchModel("", "layers=x"); !errors.As(err, &ue) {
		t.Errorf("bad --model-shape: %v, want a usage error", err)
	}
}
