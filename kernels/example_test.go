package kernels_test

import (
	"fmt"

	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/kernels/cpu"
)

// A linear layer y = x·Wᵀ + b, forward and backward, then one AdamW step.
// Backward ops add into gradients, so they are zeroed first.
func Example_linearLayer() {
	d := cpu.New(1)
	defer d.Close()
	const n, in, out = 2, 3, 2 // rows, input features, output features

	x, _ := kernels.Upload(d, []float32{1, 2, 3, 4, 5, 6})
	w, _ := kernels.Upload(d, []float32{0.1, 0.2, 0.3, -0.1, -0.2, -0.3}) // out x in
	b, _ := kernels.Upload(d, []float32{1, -1})
	y, _ := d.Alloc(kernels.Float32, n*out)
	if err := d.MatMul(y, x, w, b, kernels.MatMulArgs{M: n, N: out, K: in, TransB: true, Alpha: 1}); err != nil {
		fmt.Println(err)
		return
	}
	ys, _ := kernels.Download(d, y)
	fmt.Printf("y = %.1f\n", ys)

	// Backward from dy = 1: dW += dyᵀ·x, db += column sums of dy, dx += dy·W.
	dy, _ := kernels.Upload(d, []float32{1, 1, 1, 1})
	dw, _ := d.Alloc(kernels.Float32, out*in)
	db, _ := d.Alloc(kernels.Float32, out)
	dx, _ := d.Alloc(kernels.Float32, n*in)
	_ = d.MatMul(dw, dy, x, nil, kernels.MatMulArgs{M: out, N: in, K: n, TransA: true, Alpha: 1, Beta: 1})
	_ = d.ColSum(db, dy, n, out)
	_ = d.MatMul(dx, dy, w, nil, kernels.MatMulArgs{M: n, N: in, K: out, Alpha: 1, Beta: 1})
	dws, _ := kernels.Download(d, dw)
	dbs, _ := kernels.Download(d, db)
	fmt.Printf("dW = %.0f, db = %.0f\n", dws, dbs)

	m, _ := d.Alloc(kernels.Float32, out*in)
	v, _ := d.Alloc(kernels.Float32, out*in)
	_ = d.AdamW(w, dw, m, v, kernels.AdamWArgs{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: 1})
	ws, _ := kernels.Download(d, w)
	fmt.Printf("W after one step = %.2f\n", ws)
	// Output:
	// y = [2.4 -2.4 4.2 -4.2]
	// dW = [5 7 9 5 7 9], db = [2 2]
	// W after one step = [0.09 0.19 0.29 -0.11 -0.21 -0.31]
}
