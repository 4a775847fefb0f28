#include "textflag.h"

// The arguments of the one-row kernels (k in CX, a in SI with its stride in
// bytes in R8, b in DI, c in DX, k again in R9 for the prefetch distance)
// and of the 12x32 kernels (k in CX, a in SI, b in DI, c in DX, ldc in
// bytes in R8), shared by their float32 and bfloat16 forms. Defined before
// any TEXT: vet reads an FP reference by the function it stands in.
#define ROWARGS \
	MOVQ k+0(FP), CX; \
	MOVQ a+8(FP), SI; \
	MOVQ lda+16(FP), R8; \
	SHLQ $2, R8; \
	MOVQ b+24(FP), DI; \
	MOVQ c+32(FP), DX; \
	MOVQ CX, R9

#define KERNARGS \
	MOVQ k+0(FP), CX; \
	MOVQ a+8(FP), SI; \
	MOVQ b+16(FP), DI; \
	MOVQ c+24(FP), DX; \
	MOVQ ldc+32(FP), R8; \
	SHLQ $2, R8

// The AVX2 kernels' parts, shared by the 6x16 and its 4x16 edge and by
// their float32 and bfloat16 forms: zero the accumulators (Y0-Y7, then
// Y8-Y11 for 6 rows); one k step's FMAs of the A column at SI (broadcasts
// alternating Y14/Y15) by the B row in Y12/Y13, rows 0-3 then 4-5; add the
// accumulators into C's rows at DX (stride R8); prefetch C's rows (R10);
// load one B row of 16 floats, or of 16 bfloat16 widened (zero-extended,
// shifted into the high half).
#define ZERO4Y \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	VXORPS Y4, Y4, Y4; \
	VXORPS Y5, Y5, Y5; \
	VXORPS Y6, Y6, Y6; \
	VXORPS Y7, Y7, Y7

#define ZERO6Y \
	ZERO4Y; \
	VXORPS Y8, Y8, Y8; \
	VXORPS Y9, Y9, Y9; \
	VXORPS Y10, Y10, Y10; \
	VXORPS Y11, Y11, Y11

#define FMA4Y \
	VBROADCASTSS (SI), Y14; \
	VFMADD231PS  Y12, Y14, Y0; \
	VFMADD231PS  Y13, Y14, Y1; \
	VBROADCASTSS 4(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y2; \
	VFMADD231PS  Y13, Y15, Y3; \
	VBROADCASTSS 8(SI), Y14; \
	VFMADD231PS  Y12, Y14, Y4; \
	VFMADD231PS  Y13, Y14, Y5; \
	VBROADCASTSS 12(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y6; \
	VFMADD231PS  Y13, Y15, Y7

#define FMA6Y \
	FMA4Y; \
	VBROADCASTSS 16(SI), Y14; \
	VFMADD231PS  Y12, Y14, Y8; \
	VFMADD231PS  Y13, Y14, Y9; \
	VBROADCASTSS 20(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y10; \
	VFMADD231PS  Y13, Y15, Y11

#define STORE4Y \
	VADDPS  (DX), Y0, Y0; \
	VMOVUPS Y0, (DX); \
	VADDPS  32(DX), Y1, Y1; \
	VMOVUPS Y1, 32(DX); \
	ADDQ    R8, DX; \
	VADDPS  (DX), Y2, Y2; \
	VMOVUPS Y2, (DX); \
	VADDPS  32(DX), Y3, Y3; \
	VMOVUPS Y3, 32(DX); \
	ADDQ    R8, DX; \
	VADDPS  (DX), Y4, Y4; \
	VMOVUPS Y4, (DX); \
	VADDPS  32(DX), Y5, Y5; \
	VMOVUPS Y5, 32(DX); \
	ADDQ    R8, DX; \
	VADDPS  (DX), Y6, Y6; \
	VMOVUPS Y6, (DX); \
	VADDPS  32(DX), Y7, Y7; \
	VMOVUPS Y7, 32(DX)

#define STORE6Y \
	STORE4Y; \
	ADDQ    R8, DX; \
	VADDPS  (DX), Y8, Y8; \
	VMOVUPS Y8, (DX); \
	VADDPS  32(DX), Y9, Y9; \
	VMOVUPS Y9, 32(DX); \
	ADDQ    R8, DX; \
	VADDPS  (DX), Y10, Y10; \
	VMOVUPS Y10, (DX); \
	VADDPS  32(DX), Y11, Y11; \
	VMOVUPS Y11, 32(DX)

#define PREFETCHC4 \
	MOVQ DX, R10; \
	PREFETCHT0 (R10); \
	ADDQ R8, R10; \
	PREFETCHT0 (R10); \
	ADDQ R8, R10; \
	PREFETCHT0 (R10); \
	ADDQ R8, R10; \
	PREFETCHT0 (R10)

#define PREFETCHC6 \
	MOVQ DX, R10; \
	PREFETCHT0 (R10); \
	ADDQ R8, R10; \
	PREFETCHT0 (R10); \
	ADDQ R8, R10; \
	PREFETCHT0 (R10); \
	ADDQ R8, R10; \
	PREFETCHT0 (R10); \
	ADDQ R8, R10; \
	PREFETCHT0 (R10); \
	ADDQ R8, R10; \
	PREFETCHT0 (R10)

#define LOADB16 \
	VMOVUPS (DI), Y12; \
	VMOVUPS 32(DI), Y13

#define LOADB16H \
	VPMOVZXWD (DI), Y12; \
	VPMOVZXWD 16(DI), Y13; \
	VPSLLD    $16, Y12, Y12; \
	VPSLLD    $16, Y13, Y13

// func kern6x16avx2(k int, a, b, c *float32, ldc int)
// C[6x16] (row stride ldc floats) += A[6 x k] * B[k x 16], with A packed
// column by column (6 floats per step) and B row by row (16 floats per step).
TEXT ·kern6x16avx2(SB), NOSPLIT, $0-40
	KERNARGS
	ZERO6Y
	TESTQ CX, CX
	JEQ   store

loop:
	LOADB16
	FMA6Y
	ADDQ $24, SI
	ADDQ $64, DI
	DECQ CX
	JNE  loop

store:
	STORE6Y
	VZEROUPPER
	RET

// func kern6x16pfavx2(k int, a, b, c *float32, ldc int)
// kern6x16avx2 with prefetches, for blocks of at least 6 rows (see
// microKernel.short): the 6 rows of C the store reads (a decode step's C
// is not in L1 by then), and, along the loop, the next B panel: packed
// panels are contiguous, so it starts k*64 bytes on.
TEXT ·kern6x16pfavx2(SB), NOSPLIT, $0-40
	KERNARGS
	PREFETCHC6
	MOVQ CX, R9
	SHLQ $6, R9
	ZERO6Y
	TESTQ CX, CX
	JEQ   storepf

looppf:
	PREFETCHT0 (DI)(R9*1)
	LOADB16
	FMA6Y
	ADDQ $24, SI
	ADDQ $64, DI
	DECQ CX
	JNE  looppf

storepf:
	STORE6Y
	VZEROUPPER
	RET

// func kern6x16avx2bf16(k int, a *float32, b *uint16, c *float32, ldc int)
// kern6x16pfavx2 on a bfloat16 B panel (32 bytes a step, the next panel
// k*32 bytes on), each row widened in registers (microKernel.fnHalf).
TEXT ·kern6x16avx2bf16(SB), NOSPLIT, $0-40
	KERNARGS
	PREFETCHC6
	MOVQ CX, R9
	SHLQ $5, R9
	ZERO6Y
	TESTQ CX, CX
	JEQ   storeh

looph:
	PREFETCHT0 (DI)(R9*1)
	LOADB16H
	FMA6Y
	ADDQ $24, SI
	ADDQ $32, DI
	DECQ CX
	JNE  looph

storeh:
	STORE6Y
	VZEROUPPER
	RET

// The 12x32 AVX-512 kernel's parts, shared by its float32 and bfloat16
// forms: zero the 24 accumulators (Z0-Z23); one k step's FMAs of the A
// column at SI (12 broadcasts rotating through Z26-Z30, leaving Z31 to the
// bfloat16 form's zeros) by the B row in Z24/Z25; add the accumulators
// into C's 12 rows at DX (stride R8).
#define ZERO12X32 \
	VPXORD Z0, Z0, Z0; \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z2, Z2, Z2; \
	VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPXORD Z6, Z6, Z6; \
	VPXORD Z7, Z7, Z7; \
	VPXORD Z8, Z8, Z8; \
	VPXORD Z9, Z9, Z9; \
	VPXORD Z10, Z10, Z10; \
	VPXORD Z11, Z11, Z11; \
	VPXORD Z12, Z12, Z12; \
	VPXORD Z13, Z13, Z13; \
	VPXORD Z14, Z14, Z14; \
	VPXORD Z15, Z15, Z15; \
	VPXORD Z16, Z16, Z16; \
	VPXORD Z17, Z17, Z17; \
	VPXORD Z18, Z18, Z18; \
	VPXORD Z19, Z19, Z19; \
	VPXORD Z20, Z20, Z20; \
	VPXORD Z21, Z21, Z21; \
	VPXORD Z22, Z22, Z22; \
	VPXORD Z23, Z23, Z23

#define FMA12X32 \
	VBROADCASTSS 0(SI), Z26; \
	VFMADD231PS Z24, Z26, Z0; \
	VFMADD231PS Z25, Z26, Z1; \
	VBROADCASTSS 4(SI), Z27; \
	VFMADD231PS Z24, Z27, Z2; \
	VFMADD231PS Z25, Z27, Z3; \
	VBROADCASTSS 8(SI), Z28; \
	VFMADD231PS Z24, Z28, Z4; \
	VFMADD231PS Z25, Z28, Z5; \
	VBROADCASTSS 12(SI), Z29; \
	VFMADD231PS Z24, Z29, Z6; \
	VFMADD231PS Z25, Z29, Z7; \
	VBROADCASTSS 16(SI), Z30; \
	VFMADD231PS Z24, Z30, Z8; \
	VFMADD231PS Z25, Z30, Z9; \
	VBROADCASTSS 20(SI), Z26; \
	VFMADD231PS Z24, Z26, Z10; \
	VFMADD231PS Z25, Z26, Z11; \
	VBROADCASTSS 24(SI), Z27; \
	VFMADD231PS Z24, Z27, Z12; \
	VFMADD231PS Z25, Z27, Z13; \
	VBROADCASTSS 28(SI), Z28; \
	VFMADD231PS Z24, Z28, Z14; \
	VFMADD231PS Z25, Z28, Z15; \
	VBROADCASTSS 32(SI), Z29; \
	VFMADD231PS Z24, Z29, Z16; \
	VFMADD231PS Z25, Z29, Z17; \
	VBROADCASTSS 36(SI), Z30; \
	VFMADD231PS Z24, Z30, Z18; \
	VFMADD231PS Z25, Z30, Z19; \
	VBROADCASTSS 40(SI), Z26; \
	VFMADD231PS Z24, Z26, Z20; \
	VFMADD231PS Z25, Z26, Z21; \
	VBROADCASTSS 44(SI), Z27; \
	VFMADD231PS Z24, Z27, Z22; \
	VFMADD231PS Z25, Z27, Z23

#define STORE12X32 \
	VADDPS (DX), Z0, Z0; \
	VMOVUPS Z0, (DX); \
	VADDPS 64(DX), Z1, Z1; \
	VMOVUPS Z1, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z2, Z2; \
	VMOVUPS Z2, (DX); \
	VADDPS 64(DX), Z3, Z3; \
	VMOVUPS Z3, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z4, Z4; \
	VMOVUPS Z4, (DX); \
	VADDPS 64(DX), Z5, Z5; \
	VMOVUPS Z5, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z6, Z6; \
	VMOVUPS Z6, (DX); \
	VADDPS 64(DX), Z7, Z7; \
	VMOVUPS Z7, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z8, Z8; \
	VMOVUPS Z8, (DX); \
	VADDPS 64(DX), Z9, Z9; \
	VMOVUPS Z9, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z10, Z10; \
	VMOVUPS Z10, (DX); \
	VADDPS 64(DX), Z11, Z11; \
	VMOVUPS Z11, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z12, Z12; \
	VMOVUPS Z12, (DX); \
	VADDPS 64(DX), Z13, Z13; \
	VMOVUPS Z13, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z14, Z14; \
	VMOVUPS Z14, (DX); \
	VADDPS 64(DX), Z15, Z15; \
	VMOVUPS Z15, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z16, Z16; \
	VMOVUPS Z16, (DX); \
	VADDPS 64(DX), Z17, Z17; \
	VMOVUPS Z17, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z18, Z18; \
	VMOVUPS Z18, (DX); \
	VADDPS 64(DX), Z19, Z19; \
	VMOVUPS Z19, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z20, Z20; \
	VMOVUPS Z20, (DX); \
	VADDPS 64(DX), Z21, Z21; \
	VMOVUPS Z21, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z22, Z22; \
	VMOVUPS Z22, (DX); \
	VADDPS 64(DX), Z23, Z23; \
	VMOVUPS Z23, 64(DX)

// func kern12x32avx512(k int, a, b, c *float32, ldc int)
// C[12x32] += A[12 x k] * B[k x 32]: 24 zmm accumulators (Z0-Z23), the B
// row in Z24/Z25, broadcasts of A rotating through Z26-Z31.
TEXT ·kern12x32avx512(SB), NOSPLIT, $0-40
	KERNARGS
	ZERO12X32
	TESTQ CX, CX
	JEQ   store512

loop512:
	VMOVUPS (DI), Z24
	VMOVUPS 64(DI), Z25
	FMA12X32
	ADDQ $48, SI
	ADDQ $128, DI
	DECQ CX
	JNE  loop512

store512:
	STORE12X32
	VZEROUPPER
	RET

// func kern12x32avx512bf16(k int, a *float32, b *uint16, c *float32, ldc int)
// kern12x32avx512 on a bfloat16 B panel (64 bytes a step, in the
// interleaved order of halfInterleave): each 16-bit weight goes into the
// high half of a zero (VPUNPCKLWD/VPUNPCKHWD with Z31 = 0), which is its
// float32, so Z24/Z25 hold the B row's 32 floats in order after one
// instruction each; then the same FMAs, each element's chain the float32
// kernel's on the widened panel.
TEXT ·kern12x32avx512bf16(SB), NOSPLIT, $0-40
	KERNARGS
	ZERO12X32
	VPXORD Z31, Z31, Z31
	TESTQ  CX, CX
	JEQ    store512h

loop512h:
	VPUNPCKLWD (DI), Z31, Z24
	VPUNPCKHWD (DI), Z31, Z25
	FMA12X32
	ADDQ $48, SI
	ADDQ $64, DI
	DECQ CX
	JNE  loop512h

store512h:
	STORE12X32
	VZEROUPPER
	RET

// func kern4x16avx2(k int, a, b, c *float32, ldc int)
// C[4x16] += A[4 x k] * B[k x 16]: the 6x16 kernel's edge (see
// microKernel.edge), on the same B panels, with A packed 4 floats per
// step; 8 ymm accumulators, the same prefetches.
TEXT ·kern4x16avx2(SB), NOSPLIT, $0-40
	KERNARGS
	PREFETCHC4
	MOVQ CX, R9
	SHLQ $6, R9
	ZERO4Y
	TESTQ CX, CX
	JEQ   store4

loop4:
	PREFETCHT0 (DI)(R9*1)
	LOADB16
	FMA4Y
	ADDQ $16, SI
	ADDQ $64, DI
	DECQ CX
	JNE  loop4

store4:
	STORE4Y
	VZEROUPPER
	RET

// func kern4x16avx2bf16(k int, a *float32, b *uint16, c *float32, ldc int)
// kern4x16avx2 on a bfloat16 B panel, as kern6x16avx2bf16.
TEXT ·kern4x16avx2bf16(SB), NOSPLIT, $0-40
	KERNARGS
	PREFETCHC4
	MOVQ CX, R9
	SHLQ $5, R9
	ZERO4Y
	TESTQ CX, CX
	JEQ   store4h

loop4h:
	PREFETCHT0 (DI)(R9*1)
	LOADB16H
	FMA4Y
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNE  loop4h

store4h:
	STORE4Y
	VZEROUPPER
	RET

// func kern1x16avx2(k int, a *float32, lda int, b, c *float32)
// The one-row kernels' stores, shared by their float32 and bfloat16
// forms: add the two accumulators into c.
#define STORE1X16 \
	VADDPS  (DX), Y0, Y0; \
	VMOVUPS Y0, (DX); \
	VADDPS  32(DX), Y1, Y1; \
	VMOVUPS Y1, 32(DX)

#define STORE1X32 \
	VADDPS  (DX), Z0, Z0; \
	VMOVUPS Z0, (DX); \
	VADDPS  64(DX), Z1, Z1; \
	VMOVUPS Z1, 64(DX)

// C[1x16] += a[0], a[lda], ..., a[(k-1)*lda] times B[k x 16]: one row of
// A (a column of a packed panel, hence the stride) on the 6x16 kernel's B
// panels (microKernel.row). Each element's FMA chain over k is the 6x16
// kernel's. Bound by reading B, it prefetches the next panel (k*64 bytes
// on) along the loop.
TEXT ·kern1x16avx2(SB), NOSPLIT, $0-40
	ROWARGS
	SHLQ $6, R9

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	TESTQ CX, CX
	JEQ   store1x16

loop1x16:
	PREFETCHT0   (DI)(R9*1)
	VBROADCASTSS (SI), Y14
	VFMADD231PS  (DI), Y14, Y0
	VFMADD231PS  32(DI), Y14, Y1
	ADDQ         R8, SI
	ADDQ         $64, DI
	DECQ         CX
	JNE          loop1x16

store1x16:
	STORE1X16
	VZEROUPPER
	RET

// func kern1x32avx512(k int, a *float32, lda int, b, c *float32)
// The same on the 12x32 kernel's B panels: two zmm accumulators, the next
// panel (k*128 bytes on) prefetched along the loop.
TEXT ·kern1x32avx512(SB), NOSPLIT, $0-40
	ROWARGS
	SHLQ $7, R9

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	TESTQ  CX, CX
	JEQ    store1x32

loop1x32:
	PREFETCHT0   (DI)(R9*1)
	PREFETCHT0   64(DI)(R9*1)
	VBROADCASTSS (SI), Z26
	VFMADD231PS  (DI), Z26, Z0
	VFMADD231PS  64(DI), Z26, Z1
	ADDQ         R8, SI
	ADDQ         $128, DI
	DECQ         CX
	JNE          loop1x32

store1x32:
	STORE1X32
	VZEROUPPER
	RET

// func kern1x16avx2bf16(k int, a *float32, lda int, b *uint16, c *float32)
// kern1x16avx2 on a bfloat16 panel (32 bytes a step): each element widened
// (zero-extended to 32 bits, shifted into the high half), then the same
// FMA; the next panel (k*32 bytes on) prefetched along the loop.
TEXT ·kern1x16avx2bf16(SB), NOSPLIT, $0-40
	ROWARGS
	SHLQ $5, R9

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	TESTQ CX, CX
	JEQ   store1x16h

loop1x16h:
	PREFETCHT0   (DI)(R9*1)
	VBROADCASTSS (SI), Y14
	VPMOVZXWD    (DI), Y2
	VPMOVZXWD    16(DI), Y3
	VPSLLD       $16, Y2, Y2
	VPSLLD       $16, Y3, Y3
	VFMADD231PS  Y2, Y14, Y0
	VFMADD231PS  Y3, Y14, Y1
	ADDQ         R8, SI
	ADDQ         $32, DI
	DECQ         CX
	JNE          loop1x16h

store1x16h:
	STORE1X16
	VZEROUPPER
	RET

// func kern1x32avx512bf16(k int, a *float32, lda int, b *uint16, c *float32)
// kern1x32avx512 on a bfloat16 panel (64 bytes, one cache line, a step),
// widened as kern12x32avx512bf16 widens it (Z4 = 0).
TEXT ·kern1x32avx512bf16(SB), NOSPLIT, $0-40
	ROWARGS
	SHLQ $6, R9

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z4, Z4, Z4
	TESTQ  CX, CX
	JEQ    store1x32h

loop1x32h:
	PREFETCHT0   (DI)(R9*1)
	VBROADCASTSS (SI), Z26
	VPUNPCKLWD   (DI), Z4, Z2
	VPUNPCKHWD   (DI), Z4, Z3
	VFMADD231PS  Z2, Z26, Z0
	VFMADD231PS  Z3, Z26, Z1
	ADDQ         R8, SI
	ADDQ         $64, DI
	DECQ         CX
	JNE          loop1x32h

store1x32h:
	STORE1X32
	VZEROUPPER
	RET

// func widenBF16avx2(dst *float32, src *uint16, n int)
// n a multiple of 16: 16 values (32 bytes in, 64 out) a step.
TEXT ·widenBF16avx2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JEQ  widendone

widenloop:
	VPMOVZXWD (SI), Y0
	VPMOVZXWD 16(SI), Y1
	VPSLLD    $16, Y0, Y0
	VPSLLD    $16, Y1, Y1
	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, 32(DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	DECQ      CX
	JNE       widenloop

widendone:
	VZEROUPPER
	RET
