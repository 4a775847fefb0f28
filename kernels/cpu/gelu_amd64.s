#include "textflag.h"

// Constants of the vectorised GELU: sqrt(2/pi), 0.044715, log2(e), -ln2 (hi and
// lo parts), the Cephes expf polynomial, 1, the exp argument clamp, 2*sqrt(2/pi),
// 3*0.044715.
DATA geluC<>+0(SB)/4, $0x3f4c422a
DATA geluC<>+4(SB)/4, $0x3d372713
DATA geluC<>+8(SB)/4, $0x3fb8aa3b
DATA geluC<>+12(SB)/4, $0xbf318000
DATA geluC<>+16(SB)/4, $0x395e8083
DATA geluC<>+20(SB)/4, $0x39506967
DATA geluC<>+24(SB)/4, $0x3ab743ce
DATA geluC<>+28(SB)/4, $0x3c088908
DATA geluC<>+32(SB)/4, $0x3d2aa9c1
DATA geluC<>+36(SB)/4, $0x3e2aaaaa
DATA geluC<>+40(SB)/4, $0x3f000000
DATA geluC<>+44(SB)/4, $0x3f800000
DATA geluC<>+48(SB)/4, $0xc2ae0000
DATA geluC<>+52(SB)/4, $0x42b00000
DATA geluC<>+56(SB)/4, $0x3fcc422a
DATA geluC<>+60(SB)/4, $0x3e095d4f
GLOBL geluC<>(SB), RODATA|NOPTR, $64

// func geluAVX512(dst, src *float32, n int)
// dst[i] = gelu(src[i]) = src[i] * sigmoid(2u), u = sqrt(2/pi)(x + 0.044715x^3),
// for n a multiple of 16.
TEXT ·geluAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JEQ  geludone
	VBROADCASTSS geluC<>+0(SB), Z16
	VBROADCASTSS geluC<>+4(SB), Z17
	VBROADCASTSS geluC<>+8(SB), Z18
	VBROADCASTSS geluC<>+12(SB), Z19
	VBROADCASTSS geluC<>+16(SB), Z20
	VBROADCASTSS geluC<>+20(SB), Z21
	VBROADCASTSS geluC<>+24(SB), Z22
	VBROADCASTSS geluC<>+28(SB), Z23
	VBROADCASTSS geluC<>+32(SB), Z24
	VBROADCASTSS geluC<>+36(SB), Z25
	VBROADCASTSS geluC<>+40(SB), Z26
	VBROADCASTSS geluC<>+44(SB), Z27
	VBROADCASTSS geluC<>+48(SB), Z28
	VBROADCASTSS geluC<>+52(SB), Z29
	VBROADCASTSS geluC<>+56(SB), Z30
	VBROADCASTSS geluC<>+60(SB), Z31
geluloop:
	VMOVUPS     (SI), Z0
	VMULPS      Z0, Z0, Z1
	VFMADD213PS Z27, Z17, Z1
	VMULPS      Z30, Z0, Z2
	VMULPS      Z1, Z2, Z2
	VMAXPS      Z28, Z2, Z2
	VMINPS      Z29, Z2, Z2
	VMULPS      Z18, Z2, Z3
	VRNDSCALEPS $0, Z3, Z3
	VMOVAPS     Z2, Z4
	VFMADD231PS Z19, Z3, Z4
	VFMADD231PS Z20, Z3, Z4
	VMOVAPS     Z21, Z5
	VFMADD213PS Z22, Z4, Z5
	VFMADD213PS Z23, Z4, Z5
	VFMADD213PS Z24, Z4, Z5
	VFMADD213PS Z25, Z4, Z5
	VFMADD213PS Z26, Z4, Z5
	VMULPS      Z4, Z4, Z6
	VADDPS      Z27, Z4, Z7
	VFMADD231PS Z6, Z5, Z7
	VSCALEFPS   Z3, Z7, Z7
	VADDPS      Z27, Z7, Z8
	VDIVPS      Z8, Z7, Z9
	VMULPS      Z9, Z0, Z9
	VMOVUPS     Z9, (DI)
	ADDQ        $64, SI
	ADDQ        $64, DI
	DECQ        CX
	JNE         geluloop
geludone:
	VZEROUPPER
	RET

// func geluBackAVX512(din, src, dout *float32, n int)
// din[i] += dout[i] * gelu'(src[i]), with s = sigmoid(2u):
// gelu'(x) = s + 2x s(1-s) sqrt(2/pi)(1 + 3*0.044715x^2); n a multiple of 16.
TEXT ·geluBackAVX512(SB), NOSPLIT, $0-32
	MOVQ din+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ dout+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $4, CX
	JEQ  gelubdone
	VBROADCASTSS geluC<>+0(SB), Z16
	VBROADCASTSS geluC<>+4(SB), Z17
	VBROADCASTSS geluC<>+8(SB), Z18
	VBROADCASTSS geluC<>+12(SB), Z19
	VBROADCASTSS geluC<>+16(SB), Z20
	VBROADCASTSS geluC<>+20(SB), Z21
	VBROADCASTSS geluC<>+24(SB), Z22
	VBROADCASTSS geluC<>+28(SB), Z23
	VBROADCASTSS geluC<>+32(SB), Z24
	VBROADCASTSS geluC<>+36(SB), Z25
	VBROADCASTSS geluC<>+40(SB), Z26
	VBROADCASTSS geluC<>+44(SB), Z27
	VBROADCASTSS geluC<>+48(SB), Z28
	VBROADCASTSS geluC<>+52(SB), Z29
	VBROADCASTSS geluC<>+56(SB), Z30
	VBROADCASTSS geluC<>+60(SB), Z31
gelubloop:
	VMOVUPS     (SI), Z0
	VMULPS      Z0, Z0, Z1
	VFMADD213PS Z27, Z17, Z1
	VMULPS      Z30, Z0, Z2
	VMULPS      Z1, Z2, Z2
	VMAXPS      Z28, Z2, Z2
	VMINPS      Z29, Z2, Z2
	VMULPS      Z18, Z2, Z3
	VRNDSCALEPS $0, Z3, Z3
	VMOVAPS     Z2, Z4
	VFMADD231PS Z19, Z3, Z4
	VFMADD231PS Z20, Z3, Z4
	VMOVAPS     Z21, Z5
	VFMADD213PS Z22, Z4, Z5
	VFMADD213PS Z23, Z4, Z5
	VFMADD213PS Z24, Z4, Z5
	VFMADD213PS Z25, Z4, Z5
	VFMADD213PS Z26, Z4, Z5
	VMULPS      Z4, Z4, Z6
	VADDPS      Z27, Z4, Z7
	VFMADD231PS Z6, Z5, Z7
	VSCALEFPS   Z3, Z7, Z7
	VADDPS      Z27, Z7, Z8
	VDIVPS      Z8, Z7, Z9
	VSUBPS      Z9, Z27, Z10
	VMULPS      Z10, Z9, Z10
	VMULPS      Z0, Z0, Z11
	VFMADD213PS Z27, Z31, Z11
	VMULPS      Z11, Z10, Z10
	VMULPS      Z0, Z10, Z10
	VMULPS      Z30, Z10, Z10
	VADDPS      Z9, Z10, Z10
	VMOVUPS     (DX), Z12
	VMOVUPS     (DI), Z13
	VFMADD231PS Z12, Z10, Z13
	VMOVUPS     Z13, (DI)
	ADDQ        $64, SI
	ADDQ        $64, DX
	ADDQ        $64, DI
	DECQ        CX
	JNE         gelubloop
gelubdone:
	VZEROUPPER
	RET

// func expShiftAVX512(dst, src *float32, n int, shift float32, lanes *[16]float32)
// dst[i] = exp(src[i] - shift) (arguments clamped to [-87, 88]) for n a multiple
// of 16; lanes receives 16 partial sums of the results.
TEXT ·expShiftAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS shift+24(FP), Z15
	MOVQ lanes+32(FP), DX
	VPXORD Z14, Z14, Z14
	SHRQ $4, CX
	JEQ  expdone
	VBROADCASTSS geluC<>+8(SB), Z18
	VBROADCASTSS geluC<>+12(SB), Z19
	VBROADCASTSS geluC<>+16(SB), Z20
	VBROADCASTSS geluC<>+20(SB), Z21
	VBROADCASTSS geluC<>+24(SB), Z22
	VBROADCASTSS geluC<>+28(SB), Z23
	VBROADCASTSS geluC<>+32(SB), Z24
	VBROADCASTSS geluC<>+36(SB), Z25
	VBROADCASTSS geluC<>+40(SB), Z26
	VBROADCASTSS geluC<>+44(SB), Z27
	VBROADCASTSS geluC<>+48(SB), Z28
	VBROADCASTSS geluC<>+52(SB), Z29
exploop:
	VMOVUPS     (SI), Z2
	VSUBPS      Z15, Z2, Z2
	VMAXPS      Z28, Z2, Z2
	VMINPS      Z29, Z2, Z2
	VMULPS      Z18, Z2, Z3
	VRNDSCALEPS $0, Z3, Z3
	VMOVAPS     Z2, Z4
	VFMADD231PS Z19, Z3, Z4
	VFMADD231PS Z20, Z3, Z4
	VMOVAPS     Z21, Z5
	VFMADD213PS Z22, Z4, Z5
	VFMADD213PS Z23, Z4, Z5
	VFMADD213PS Z24, Z4, Z5
	VFMADD213PS Z25, Z4, Z5
	VFMADD213PS Z26, Z4, Z5
	VMULPS      Z4, Z4, Z6
	VADDPS      Z27, Z4, Z7
	VFMADD231PS Z6, Z5, Z7
	VSCALEFPS   Z3, Z7, Z7
	VMOVUPS     Z7, (DI)
	VADDPS      Z7, Z14, Z14
	ADDQ        $64, SI
	ADDQ        $64, DI
	DECQ        CX
	JNE         exploop
expdone:
	VMOVUPS     Z14, (DX)
	VZEROUPPER
	RET
