package kbench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the result as one indented JSON object.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the environment and one table of measurements.
func WriteMarkdown(w io.Writer, r *Result) error {
	var b strings.Builder
	b.WriteString("## ark bench kernels\n\n| environment | |\n| --- | --- |\n")
	for _, kv := range [][2]string{
		{"cpu", r.Env.CPU}, {"cores / GOMAXPROCS", fmt.Sprintf("%d / %d", r.Env.Cores, r.Env.GOMAXPROCS)},
		{"cpu backend", r.Env.Kernel}, {"openblas baseline", orDash(r.Env.OpenBLAS)}, {"gpu", r.Env.GPU}, {"go", r.Env.GoVersion}, {"commit", orDash(r.Env.Commit)},
	} {
		fmt.Fprintf(&b, "| %s | %s |\n", kv[0], kv[1])
	}
	b.WriteString("\n| device | op | shape | threads | time | rate | vs naive | vs OpenBLAS |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range r.Rows {
		th, vs, vb := "-", "-", "-"
		if row.Threads > 0 {
			th = fmt.Sprint(row.Threads)
		}
		if row.VsNaive > 0 {
			vs = fmt.Sprintf("%.1fx", row.VsNaive)
		}
		if row.VsOpenBLAS > 0 {
			vb = fmt.Sprintf("%.0f%%", 100*row.VsOpenBLAS)
		}
		rate := fmt.Sprintf("%.2f GFLOP/s", row.GFLOPS)
		if row.GElems > 0 {
			rate = fmt.Sprintf("%.2f Gelem/s", row.GElems)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", row.Device, row.Op, row.Shape, th, dur(row.Seconds), rate, vs, vb)
	}
	b.WriteString("\nTimes are the best of several calls. Attention GFLOP/s count the causal QK^T and PV products " +
		"(backward twice that); layernorm, GELU and cross-entropy are memory-bound and shown in elements per second. " +
		"\"vs naive\" divides by the naive triple-loop matmul measured in the same run on one thread; " +
		"\"vs OpenBLAS\" by cblas_sgemm at the same size and threads, also in this run.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dur(s float64) string {
	switch {
	case s >= 1:
		return fmt.Sprintf("%.2f s", s)
	case s >= 1e-3:
		return fmt.Sprintf("%.2f ms", s*1e3)
	}
	return fmt.Sprintf("%.1f µs", s*1e6)
}
