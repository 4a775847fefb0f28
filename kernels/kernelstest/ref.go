package kernelstest

import (
	"math"

	"github.com/ark-sched/ark/kernels"
)

// The reference ops: float64, one obvious loop nest each, no blocking, no
// threads. Names mirror kernels.Device.

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// refMatMul returns alpha*op(A)*op(B) + beta*c0 + bias (bias and c0 may be nil).
func refMatMul(a, b, bias, c0 []float64, p kernels.MatMulArgs) []float64 {
	c := make([]float64, p.M*p.N)
	for i := 0; i < p.M; i++ {
		for j := 0; j < p.N; j++ {
			var s float64
			for k := 0; k < p.K; k++ {
				av := a[i*p.K+k]
				if p.TransA {
					av = a[k*p.M+i]
				}
				bv := b[k*p.N+j]
				if p.TransB {
					bv = b[j*p.K+k]
				}
				s += av * bv
			}
			v := float64(p.Alpha) * s
			if p.Beta != 0 && c0 != nil {
				v += float64(p.Beta) * c0[i*p.N+j]
			}
			if bias != nil {
				v += bias[j]
			}
			c[i*p.N+j] = v
		}
	}
	return c
}

func refLayerNorm(in, w, b []float64, rows, cols int, eps float64) (out, mean, rstd []float64) {
	out, mean, rstd = make([]float64, rows*cols), make([]float64, rows), make([]float64, rows)
	for r := 0; r < rows; r++ {
		x := in[r*cols : (r+1)*cols]
		var m, v float64
		for _, e := range x {
			m += e
		}
		m /= float64(cols)
		for _, e := range x {
			v += (e - m) * (e - m)
		}
		v /= float64(cols)
		rs := 1 / math.Sqrt(v+eps)
		for i, e := range x {
			out[r*cols+i] = (e-m)*rs*w[i] + b[i]
		}
		mean[r], rstd[r] = m, rs
	}
	return out, mean, rstd
}

func refLayerNormBackward(dout, in, w []float64, rows, cols int, eps float64) (din, dw, db []float64) {
	_, mean, rstd := refLayerNorm(in, w, make([]float64, cols), rows, cols, eps)
	din, dw, db = make([]float64, rows*cols), make([]float64, cols), make([]float64, cols)
	n := float64(cols)
	for r := 0; r < rows; r++ {
		var s1, s2 float64
		for i := 0; i < cols; i++ {
			xh := (in[r*cols+i] - mean[r]) * rstd[r]
			g := dout[r*cols+i]
			dw[i] += g * xh
			db[i] += g
			s1 += w[i] * g
			s2 += w[i] * g * xh
		}
		for i := 0; i < cols; i++ {
			xh := (in[r*cols+i] - mean[r]) * rstd[r]
			din[r*cols+i] = rstd[r] * (w[i]*dout[r*cols+i] - s1/n - xh*s2/n)
		}
	}
	return din, dw, db
}

const geluC = 0.7978845608028654 // sqrt(2/pi)

func refGELU(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(geluC*(x+0.044715*x*x*x)))
}

func refGELUGrad(x float64) float64 {
	t := math.Tanh(geluC * (x + 0.044715*x*x*x))
	return 0.5*(1+t) + 0.5*x*(1-t*t)*geluC*(1+3*0.044715*x*x)
}

func refAttention(qkv []float64, s kernels.AttnShape) (out, probs []float64) {
	T, C, H := s.T, s.C, s.Heads
	hs := C / H
	out, probs = make([]float64, s.B*T*C), make([]float64, s.B*H*T*T)
	at := func(b, t, part, h, i int) float64 { return qkv[(b*T+t)*3*C+part*C+h*hs+i] }
	for b := 0; b < s.B; b++ {
		for h := 0; h < H; h++ {
			for t := 0; t < T; t++ {
				p := probs[((b*H+h)*T+t)*T:][:T]
				mx := math.Inf(-1)
				for t2 := 0; t2 <= t; t2++ {
					var d float64
					for i := 0; i < hs; i++ {
						d += at(b, t, 0, h, i) * at(b, t2, 1, h, i)
					}
					p[t2] = d / math.Sqrt(float64(hs))
					mx = math.Max(mx, p[t2])
				}
				var sum float64
				for t2 := 0; t2 <= t; t2++ {
					p[t2] = math.Exp(p[t2] - mx)
					sum += p[t2]
				}
				for t2 := 0; t2 <= t; t2++ {
					p[t2] /= sum
					for i := 0; i < hs; i++ {
						out[(b*T+t)*C+h*hs+i] += p[t2] * at(b, t2, 2, h, i)
					}
				}
			}
		}
	}
	return out, probs
}

func refAttentionBackward(dout, qkv []float64, s kernels.AttnShape) []float64 {
	T, C, H := s.T, s.C, s.Heads
	hs := C / H
	scale := 1 / math.Sqrt(float64(hs))
	_, probs := refAttention(qkv, s)
	dqkv := make([]float64, len(qkv))
	idx := func(b, t, part, h, i int) int { return (b*T+t)*3*C + part*C + h*hs + i }
	for b := 0; b < s.B; b++ {
		for h := 0; h < H; h++ {
			for t := 0; t < T; t++ {
				p := probs[((b*H+h)*T+t)*T:][:T]
				g := dout[(b*T+t)*C+h*hs:][:hs]
				datt := make([]float64, t+1)
				var sum float64
				for t2 := 0; t2 <= t; t2++ {
					for i := 0; i < hs; i++ {
						datt[t2] += qkv[idx(b, t2, 2, h, i)] * g[i]
						dqkv[idx(b, t2, 2, h, i)] += p[t2] * g[i]
					}
					sum += p[t2] * datt[t2]
				}
				for t2 := 0; t2 <= t; t2++ {
					dpre := p[t2] * (datt[t2] - sum) * scale
					for i := 0; i < hs; i++ {
						dqkv[idx(b, t, 0, h, i)] += dpre * qkv[idx(b, t2, 1, h, i)]
						dqkv[idx(b, t2, 1, h, i)] += dpre * qkv[idx(b, t, 0, h, i)]
					}
				}
			}
		}
	}
	return dqkv
}

func refEmbedding(ids []int32, wte, wpe []float64, b, t, c int) []float64 {
	out := make([]float64, b*t*c)
	for r, id := range ids {
		for i := 0; i < c; i++ {
			out[r*c+i] = wte[int(id)*c+i]
			if wpe != nil {
				out[r*c+i] += wpe[(r%t)*c+i]
			}
		}
	}
	return out
}

func refEmbeddingBackward(dout []float64, ids []int32, vocab, t, c int) (dwte, dwpe []float64) {
	dwte, dwpe = make([]float64, vocab*c), make([]float64, t*c)
	for r, id := range ids {
		for i := 0; i < c; i++ {
			dwte[int(id)*c+i] += dout[r*c+i]
			dwpe[(r%t)*c+i] += dout[r*c+i]
		}
	}
	return dwte, dwpe
}

func refCrossEntropy(logits []float64, targets []int32, vocab int, dscale float64) (losses, dlogits []float64) {
	rows := len(targets)
	losses, dlogits = make([]float64, rows), make([]float64, rows*vocab)
	for r, t := range targets {
		if t < 0 {
			continue
		}
		x := logits[r*vocab : (r+1)*vocab]
		mx := math.Inf(-1)
		for _, e := range x {
			mx = math.Max(mx, e)
		}
		var sum float64
		for _, e := range x {
			sum += math.Exp(e - mx)
		}
		losses[r] = math.Log(sum) + mx - x[t]
		for i, e := range x {
			dlogits[r*vocab+i] = dscale * math.Exp(e-mx) / sum
		}
		dlogits[r*vocab+int(t)] -= dscale
	}
	return losses, dlogits
}

func refAdamW(p, g, m, v []float64, a kernels.AdamWArgs) (np, nm, nv []float64) {
	np, nm, nv = make([]float64, len(p)), make([]float64, len(p)), make([]float64, len(p))
	b1, b2 := float64(a.Beta1), float64(a.Beta2)
	c1 := 1 - math.Pow(b1, float64(a.Step))
	c2 := 1 - math.Pow(b2, float64(a.Step))
	for i := range p {
		nm[i] = b1*m[i] + (1-b1)*g[i]
		nv[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		upd := (nm[i]/c1)/(math.Sqrt(nv[i]/c2)+float64(a.Eps)) + float64(a.WeightDecay)*p[i]
		np[i] = p[i] - float64(a.LR)*upd
	}
	return np, nm, nv
}
