package main

import (
	"strings"
	"testing"
)

// TestServeWeightsFlag: --weights names float32 or bf16; anything else is
// a usage error naming it, before a checkpoint is read or a port taken.
func TestServeWeightsFlag(t *testing.T) {
	for _, args := range [][]string{
		{"task", "serve", "--base", "file:///nowhere", "--listen", "127.0.0.1:0", "--weights", "fp8"},
		{"bench", "serve", "--weights", "fp8", "--concurrency", "1", "--adapters", "0"},
	} {
		code, out, _ := runArk(t, args...)
		if code != exitUsage || !strings.Contains(out, `--weights "fp8": want float32 or bf16`) {
			t.Errorf("%v: exit %d, %q; want %d and the flag named", args, code, out, exitUsage)
		}
	}
}
