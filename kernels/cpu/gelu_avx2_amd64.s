#include "textflag.h"

// Constants of the AVX2 GELU (the same values as geluC<> in gelu_amd64.s):
// 0.044715, 1, 2*sqrt(2/pi), the exp argument clamp (-87, 88), log2(e),
// -ln2 (hi part), -ln2 (lo part), the Cephes expf polynomial, and the
// float32 exponent bias 127 (an integer).
DATA geluY<>+0(SB)/4, $0x3d372713
DATA geluY<>+4(SB)/4, $0x3f800000
DATA geluY<>+8(SB)/4, $0x3fcc422a
DATA geluY<>+12(SB)/4, $0xc2ae0000
DATA geluY<>+16(SB)/4, $0x42b00000
DATA geluY<>+20(SB)/4, $0x3fb8aa3b
DATA geluY<>+24(SB)/4, $0xbf318000
DATA geluY<>+28(SB)/4, $0x395e8083
DATA geluY<>+32(SB)/4, $0x39506967
DATA geluY<>+36(SB)/4, $0x3ab743ce
DATA geluY<>+40(SB)/4, $0x3c088908
DATA geluY<>+44(SB)/4, $0x3d2aa9c1
DATA geluY<>+48(SB)/4, $0x3e2aaaaa
DATA geluY<>+52(SB)/4, $0x3f000000
DATA geluY<>+56(SB)/4, $0x0000007f
GLOBL geluY<>(SB), RODATA|NOPTR, $60

// func geluAVX2(dst, src *float32, n int)
// dst[i] = gelu(src[i]) = src[i] * sigmoid(2u), u = sqrt(2/pi)(x + 0.044715x^3),
// for n a multiple of 8: geluAVX512's steps on 8 lanes, with 2^n built
// from its exponent bits (AVX2 has no VSCALEFPS; the clamp keeps n+127 in
// [1, 254], a normal float).
TEXT ·geluAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JEQ  geluydone
	VBROADCASTSS geluY<>+0(SB), Y8
	VBROADCASTSS geluY<>+4(SB), Y9
	VBROADCASTSS geluY<>+8(SB), Y10
	VBROADCASTSS geluY<>+12(SB), Y11
	VBROADCASTSS geluY<>+16(SB), Y12
	VBROADCASTSS geluY<>+20(SB), Y13
	VBROADCASTSS geluY<>+24(SB), Y14
	VBROADCASTSS geluY<>+28(SB), Y15
geluyloop:
	VMOVUPS      (SI), Y0
	VMULPS       Y0, Y0, Y1
	VFMADD213PS  Y9, Y8, Y1         // 1 + 0.044715x^2
	VMULPS       Y10, Y0, Y2
	VMULPS       Y1, Y2, Y2         // z = 2u
	VMAXPS       Y11, Y2, Y2
	VMINPS       Y12, Y2, Y2
	VMULPS       Y13, Y2, Y3
	VROUNDPS     $0, Y3, Y3         // n = round(z log2 e)
	VMOVAPS      Y2, Y4
	VFMADD231PS  Y14, Y3, Y4
	VFMADD231PS  Y15, Y3, Y4        // r = z - n ln2
	VBROADCASTSS geluY<>+32(SB), Y5
	VBROADCASTSS geluY<>+36(SB), Y6
	VFMADD213PS  Y6, Y4, Y5
	VBROADCASTSS geluY<>+40(SB), Y6
	VFMADD213PS  Y6, Y4, Y5
	VBROADCASTSS geluY<>+44(SB), Y6
	VFMADD213PS  Y6, Y4, Y5
	VBROADCASTSS geluY<>+48(SB), Y6
	VFMADD213PS  Y6, Y4, Y5
	VBROADCASTSS geluY<>+52(SB), Y6
	VFMADD213PS  Y6, Y4, Y5         // p(r)
	VMULPS       Y4, Y4, Y6
	VADDPS       Y9, Y4, Y7
	VFMADD231PS  Y6, Y5, Y7         // y = p r^2 + r + 1
	VCVTTPS2DQ   Y3, Y3
	VPBROADCASTD geluY<>+56(SB), Y6
	VPADDD       Y6, Y3, Y3
	VPSLLD       $23, Y3, Y3        // 2^n
	VMULPS       Y3, Y7, Y7         // e = exp(z)
	VADDPS       Y9, Y7, Y1
	VDIVPS       Y1, Y7, Y7         // e / (1 + e)
	VMULPS       Y7, Y0, Y7
	VMOVUPS      Y7, (DI)
	ADDQ         $32, SI
	ADDQ         $32, DI
	DECQ         CX
	JNE          geluyloop
geluydone:
	VZEROUPPER
	RET

// func expShiftAVX2(dst, src *float32, n int, shift float32, lanes *[8]float32)
// dst[i] = exp(src[i] - shift) (arguments clamped to [-87, 88]) for n a
// multiple of 8: expShiftAVX512's steps on 8 lanes, 2^n built from its
// exponent bits as in geluAVX2; lanes receives 8 partial sums.
TEXT ·expShiftAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS shift+24(FP), Y15
	MOVQ lanes+32(FP), DX
	VXORPS Y14, Y14, Y14
	SHRQ $3, CX
	JEQ  expydone
	VBROADCASTSS geluY<>+4(SB), Y9   // 1
	VBROADCASTSS geluY<>+12(SB), Y11 // -87
	VBROADCASTSS geluY<>+16(SB), Y12 // 88
	VBROADCASTSS geluY<>+20(SB), Y13 // log2 e
	VBROADCASTSS geluY<>+24(SB), Y10 // -ln2 hi
	VBROADCASTSS geluY<>+28(SB), Y8  // -ln2 lo
expyloop:
	VMOVUPS      (SI), Y2
	VSUBPS       Y15, Y2, Y2
	VMAXPS       Y11, Y2, Y2
	VMINPS       Y12, Y2, Y2
	VMULPS       Y13, Y2, Y3
	VROUNDPS     $0, Y3, Y3         // n = round(z log2 e)
	VMOVAPS      Y2, Y4
	VFMADD231PS  Y10, Y3, Y4
	VFMADD231PS  Y8, Y3, Y4         // r = z - n ln2
	VBROADCASTSS geluY<>+32(SB), Y5
	VBROADCASTSS geluY<>+36(SB), Y6
	VFMADD213PS  Y6, Y4, Y5
	VBROADCASTSS geluY<>+40(SB), Y6
	VFMADD213PS  Y6, Y4, Y5
	VBROADCASTSS geluY<>+44(SB), Y6
	VFMADD213PS  Y6, Y4, Y5
	VBROADCASTSS geluY<>+48(SB), Y6
	VFMADD213PS  Y6, Y4, Y5
	VBROADCASTSS geluY<>+52(SB), Y6
	VFMADD213PS  Y6, Y4, Y5         // p(r)
	VMULPS       Y4, Y4, Y6
	VADDPS       Y9, Y4, Y7
	VFMADD231PS  Y6, Y5, Y7         // y = p r^2 + r + 1
	VCVTTPS2DQ   Y3, Y3
	VPBROADCASTD geluY<>+56(SB), Y6
	VPADDD       Y6, Y3, Y3
	VPSLLD       $23, Y3, Y3        // 2^n
	VMULPS       Y3, Y7, Y7         // exp(z)
	VMOVUPS      Y7, (DI)
	VADDPS       Y7, Y14, Y14
	ADDQ         $32, SI
	ADDQ         $32, DI
	DECQ         CX
	JNE          expyloop
expydone:
	VMOVUPS      Y14, (DX)
	VZEROUPPER
	RET
