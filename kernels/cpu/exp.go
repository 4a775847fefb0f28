package cpu

import "math"

// expf is exp for float32 in a few nanoseconds (the softmax in attention
// takes T*T/2 of them per head): Cephes' expf, a range reduction
// x = n*ln2 + r with |r| <= ln2/2 and a degree-6 polynomial, accurate to
// about 2 ulp. Below -87.3 it returns 0 (the float32 result underflows);
// above 88.7, +Inf.
func expf(x float32) float32 {
	switch {
	case x < -87.33654:
		return 0
	case x > 88.72283:
		return float32(math.Inf(1))
	case x != x:
		return x
	}
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	// floor(x*log2e + 0.5) without a data-dependent branch (a random sign
	// would mispredict half the time): shift into positive range, where
	// truncation is floor. x*log2e is within [-126, 128] here.
	n := int32(x*log2e+0.5+256) - 256
	nf := float32(n)
	r := x - nf*ln2hi - nf*ln2lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	// 2^n as float32 bits; n is in [-126, 128] here, and 2^128 is built
	// in two steps so it does not overflow the exponent field.
	if n > 127 {
		return y * 2 * math.Float32frombits(uint32(n-1+127)<<23)
	}
	if n < -126 {
		return y * math.Float32frombits(uint32(n+126+127)<<23) * 0x1p-126
	}
	return y * math.Float32frombits(uint32(n+127)<<23)
}
