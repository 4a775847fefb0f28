package train

import (
	"context"
	"errors"
	"testing"

	"github.com/ark-sched/ark/kernels/cpu"
)

// TestLoadModelForwardOnly: a model LoadModel builds holds its parameters
// and nothing a training step needs (the gradients and the two AdamW
// moments were three more copies of the weights: 1 GiB for a GPT-2-small
// shape), still generates and evaluates exactly as a trainable copy of it
// does, and refuses a backward pass with an error that says why.
func TestLoadModelForwardOnly(t *testing.T) {
	ctx := context.Background()
	uri := trainBase(t, t.TempDir())
	m, _, err := LoadModel(ctx, cpu.New(1), uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.grads != nil || m.gradAll != nil || m.m != nil || m.v != nil {
		t.Fatal("a forward-only model allocated gradients or optimizer moments")
	}
	full, err := NewModel(cpu.New(1), m.Cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenCheckpoint(ctx, uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := full.loadBase(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := m.Generate([]byte("the "), 16, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	want, err := full.Generate([]byte("the "), 16, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("forward-only model generated %q, the trainable one %q", got, want)
	}
	ds := NewDataset(testText, 0.5)
	ev, err := m.Eval(ds, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	evFull, err := full.Eval(ds, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	if ev != evFull {
		t.Errorf("forward-only eval %+v, trainable %+v", ev, evFull)
	}
	a, err := m.actsFor(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.backward(a, func(int) error { return nil }); !errors.Is(err, errForwardOnly) {
		t.Errorf("backward on a forward-only model: %v, want errForwardOnly", err)
	}
}
