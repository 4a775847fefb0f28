// Package bf16 is Ark's one bfloat16 conversion, used by the kernels,
// the collectives and the checkpoint importer alike: a bfloat16 is the
// upper 16 bits of an IEEE float32, so widening is exact and narrowing
// rounds to the nearest value, ties to even.
package bf16

import "math"

// FromFloat32 rounds f to the nearest bfloat16, ties to even; a NaN stays
// a (quiet) NaN and never rounds into an infinity.
func FromFloat32(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// ToFloat32 widens h exactly.
func ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
