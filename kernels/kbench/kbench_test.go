package kbench

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/kernels"
)

func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	res, err := Run(Config{Sizes: []int{33, 64}, Threads: []int{1, 2}, MinTime: time.Millisecond, Naive: true, OpenBLAS: true,
		Layer: kernels.AttnShape{B: 2, T: 9, C: 12, Heads: 3}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"33x1t", "33x2t", "64x1t", "64x2t"} {
		if res.SGEMMGFLOPS[k] <= 0 {
			t.Errorf("sgemm_gflops[%s] = %v", k, res.SGEMMGFLOPS[k])
		}
	}
	// One batch row and one head: the sampled checks must stay in range.
	if _, err := Run(Config{Sizes: []int{5}, Threads: []int{1}, MinTime: time.Millisecond,
		Layer: kernels.AttnShape{B: 1, T: 4, C: 8, Heads: 1}}); err != nil {
		t.Fatal(err)
	}
	var md, js bytes.Buffer
	if err := WriteMarkdown(&md, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| cpu | matmul | 64x64x64 | 2 |") || !strings.Contains(md.String(), "attention backward") {
		t.Errorf("markdown:\n%s", md.String())
	}
	if err := WriteJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if _, ok := back["sgemm_gflops"].(map[string]any); !ok {
		t.Errorf("json has no sgemm_gflops object: %s", js.String())
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{Sizes: []int{0}}, {Threads: []int{-1}}, {Layer: kernels.AttnShape{B: 1, T: 1, C: 5, Heads: 2}}} {
		if _, err := Run(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", c, err)
		}
	}
}
