package train

import "math"

// Constants of fastExp: exp(x) = 2^n * exp(r), n = round(x/ln2), with
// x - n*ln2 taken in two steps (ln2Hi has few significant bits, so n*ln2Hi
// is exact in float32 for the n a float32 exp can use) so that r keeps its
// low bits. The polynomial is Cephes' expf minimax fit of (exp(r)-1-r)/r^2
// on |r| <= ln2/2.
const (
	expLog2e = 1.44269504088896341
	expLn2Hi = 0.693359375
	expLn2Lo = -2.12194440e-4
	expP0    = 1.9875691500e-4
	expP1    = 1.3981999507e-3
	expP2    = 8.3334519073e-3
	expP3    = 4.1665795894e-2
	expP4    = 1.6666665459e-1
	expP5    = 5.0000001201e-1
	// expMin is the lowest x whose exp is a normal float32 (ln of
	// 2^-126, rounded up): below it fastExp returns 0. A softmax loses
	// nothing there: its terms are at most 1 after subtracting the max,
	// and one that small is below float32's resolution of the sum.
	expMin = -87.33654
)

// expShifter is 1.5*2^23: adding it to a float32 of magnitude under 2^22
// rounds it to an integer that lands in the low mantissa bits.
const expShifter = 12582912

// fastExp is exp for the float32 softmax of sampling, where math.Exp in float64 was a fifth of a batched step. Its
// relative error is about 1.2e-7 on [expMin, 88]; below expMin it is 0,
// above 88 it is math.Exp's (+Inf past float32's range), and NaN stays NaN.
func fastExp(x float32) float32 {
	switch {
	case x != x:
		return x
	case x < expMin:
		return 0
	case x > 88: // 2^n would overflow the exponent field: rare, so exact
		return float32(math.Exp(float64(x)))
	}
	return expCore(x)
}

// expCore is exp for x in [expMin, 88], without fastExp's edge cases, for
// the softmax loops that check the low end themselves. n = round(x/ln2)
// comes from the shifter (no branch, no conversion); 2^n is a float32
// built from its exponent bits. (Over the inliner's budget; writing it
// out in expSoftmax measured no faster.)
func expCore(x float32) float32 {
	t := x*expLog2e + expShifter
	fn := t - expShifter
	n := int32(math.Float32bits(t) - math.Float32bits(expShifter))
	r := x - fn*expLn2Hi - fn*expLn2Lo
	// Estrin's scheme: the same polynomial as Horner's with a shorter
	// chain of dependent operations, which is what bounds this loop.
	r2 := r * r
	p := ((expP0*r+expP1)*r2+(expP2*r+expP3))*r2 + (expP4*r + expP5)
	return (1 + r + r2*p) * math.Float32frombits(uint32(n+127)<<23)
}

// expSoftmax sets dst[i] = exp((src[i]-top)*scale) and returns their sum:
// the numerators of a softmax whose largest input is top (scale is 1, or
// 1/temperature). Terms whose exponent is below expMin are 0.
func expSoftmax(dst, src []float32, top, scale float32) float32 {
	dst = dst[:len(src)]
	var sum float32
	for i, v := range src {
		var e float32
		if x := (v - top) * scale; x >= expMin {
			e = expCore(x)
		}
		dst[i] = e
		sum += e
	}
	return sum
}
