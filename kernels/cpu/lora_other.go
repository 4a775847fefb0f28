//go:build !amd64

package cpu

func dot(x, y []float32) float32 { return dotGo(x, y) }

func axpy(y, x []float32, alpha float32) { axpyGo(y, x, alpha) }

func down(u, x, a []float32) {
	in := len(x)
	for k := range u {
		u[k] = dotGo(x, a[k*in:(k+1)*in])
	}
}

func up(y, bt, u []float32) {
	out := len(y)
	for k, uk := range u {
		axpyGo(y, bt[k*out:(k+1)*out], uk)
	}
}

func loraRow(y, x, a, bt, u []float32, scale float32) { loraRowGo(y, x, a, bt, u, scale) }
