#include "textflag.h"

// func kvScoresAVX2(sc, q, keys *float32, n, hs int, scale float32)
// sc[t] = scale * q·keys[t*hs:(t+1)*hs] for t < n, n a multiple of 4 (> 0)
// and hs of 8 (> 0): four keys per pass over q, their four 8-lane products
// reduced together by three horizontal adds.
TEXT ·kvScoresAVX2(SB), NOSPLIT, $0-44
	MOVQ         sc+0(FP), DI
	MOVQ         q+8(FP), SI
	MOVQ         keys+16(FP), DX
	MOVQ         n+24(FP), CX
	MOVQ         hs+32(FP), R9
	VBROADCASTSS scale+40(FP), X15
	SHLQ         $2, R9 // bytes per key
	SHRQ         $2, CX // groups of four keys
	JEQ          scoresdone

scoresgroup:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	LEAQ   (DX)(R9*1), R10
	LEAQ   (R10)(R9*1), R11
	LEAQ   (R11)(R9*1), R12
	XORQ   AX, AX

scoreschunk:
	VMOVUPS     (SI)(AX*1), Y4
	VFMADD231PS (DX)(AX*1), Y4, Y0
	VFMADD231PS (R10)(AX*1), Y4, Y1
	VFMADD231PS (R11)(AX*1), Y4, Y2
	VFMADD231PS (R12)(AX*1), Y4, Y3
	ADDQ        $32, AX
	CMPQ        AX, R9
	JLT         scoreschunk

	// Each 128-bit half: [k0 k0 k1 k1], [k2 k2 k3 k3], then [k0 k1 k2 k3];
	// the two halves add to the four sums.
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMULPS       X15, X0, X0
	VMOVUPS      X0, (DI)
	ADDQ         $16, DI
	LEAQ         (R12)(R9*1), DX
	DECQ         CX
	JNE          scoresgroup

scoresdone:
	VZEROUPPER
	RET

// func kvWeightedAVX2(out, w, vals *float32, n, hs int, scale float32)
// out[j] = scale * sum over t < n of w[t]*vals[t*hs+j], n > 0 and hs a
// multiple of 8 (> 0): eight columns at a time, the rows in four
// independent accumulators.
TEXT ·kvWeightedAVX2(SB), NOSPLIT, $0-44
	MOVQ         out+0(FP), DI
	MOVQ         w+8(FP), SI
	MOVQ         vals+16(FP), DX
	MOVQ         n+24(FP), CX
	MOVQ         hs+32(FP), R9
	VBROADCASTSS scale+40(FP), Y15
	SHLQ         $2, R9 // bytes per row
	XORQ         AX, AX // byte offset of the column block

weightedcol:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	LEAQ   (DX)(AX*1), R10
	MOVQ   SI, R11
	MOVQ   CX, BX
	CMPQ   BX, $4
	JLT    weightedtail

weightedquad:
	VBROADCASTSS (R11), Y4
	VFMADD231PS  (R10), Y4, Y0
	VBROADCASTSS 4(R11), Y5
	VFMADD231PS  (R10)(R9*1), Y5, Y1
	LEAQ         (R10)(R9*2), R12
	VBROADCASTSS 8(R11), Y6
	VFMADD231PS  (R12), Y6, Y2
	VBROADCASTSS 12(R11), Y7
	VFMADD231PS  (R12)(R9*1), Y7, Y3
	LEAQ         (R12)(R9*2), R10
	ADDQ         $16, R11
	SUBQ         $4, BX
	CMPQ         BX, $4
	JGE          weightedquad

weightedtail:
	TESTQ BX, BX
	JEQ   weightedsum

weightedone:
	VBROADCASTSS (R11), Y4
	VFMADD231PS  (R10), Y4, Y0
	ADDQ         R9, R10
	ADDQ         $4, R11
	DECQ         BX
	JNE          weightedone

weightedsum:
	VADDPS  Y1, Y0, Y0
	VADDPS  Y3, Y2, Y2
	VADDPS  Y2, Y0, Y0
	VMULPS  Y15, Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, R9
	JLT     weightedcol
	VZEROUPPER
	RET

// func kvWeighted64AVX2(out, w, vals *float32, n, hs int, scale float32)
// kvWeightedAVX2 for hs a multiple of 64 (> 0) and n > 0: 64 columns at a
// time in eight accumulators, walking the rows in order, so each row of
// values is read once, front to back (the 8-column form walks them hs/8
// times with a stride of a row, which the hardware prefetchers follow
// worse on a cache that comes from memory).
TEXT ·kvWeighted64AVX2(SB), NOSPLIT, $0-44
	MOVQ         out+0(FP), DI
	MOVQ         w+8(FP), SI
	MOVQ         vals+16(FP), DX
	MOVQ         n+24(FP), CX
	MOVQ         hs+32(FP), R9
	VBROADCASTSS scale+40(FP), Y15
	SHLQ         $2, R9 // bytes per row
	XORQ         AX, AX // byte offset of the column block

w64col:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	LEAQ   (DX)(AX*1), R10
	MOVQ   SI, R11
	MOVQ   CX, BX

w64row:
	VBROADCASTSS (R11), Y8
	VFMADD231PS  (R10), Y8, Y0
	VFMADD231PS  32(R10), Y8, Y1
	VFMADD231PS  64(R10), Y8, Y2
	VFMADD231PS  96(R10), Y8, Y3
	VFMADD231PS  128(R10), Y8, Y4
	VFMADD231PS  160(R10), Y8, Y5
	VFMADD231PS  192(R10), Y8, Y6
	VFMADD231PS  224(R10), Y8, Y7
	ADDQ         R9, R10
	ADDQ         $4, R11
	DECQ         BX
	JNE          w64row

	VMULPS  Y15, Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	VMULPS  Y15, Y1, Y1
	VMOVUPS Y1, 32(DI)(AX*1)
	VMULPS  Y15, Y2, Y2
	VMOVUPS Y2, 64(DI)(AX*1)
	VMULPS  Y15, Y3, Y3
	VMOVUPS Y3, 96(DI)(AX*1)
	VMULPS  Y15, Y4, Y4
	VMOVUPS Y4, 128(DI)(AX*1)
	VMULPS  Y15, Y5, Y5
	VMOVUPS Y5, 160(DI)(AX*1)
	VMULPS  Y15, Y6, Y6
	VMOVUPS Y6, 192(DI)(AX*1)
	VMULPS  Y15, Y7, Y7
	VMOVUPS Y7, 224(DI)(AX*1)
	ADDQ    $256, AX
	CMPQ    AX, R9
	JLT     w64col
	VZEROUPPER
	RET
