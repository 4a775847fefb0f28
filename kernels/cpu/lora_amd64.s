#include "textflag.h"

// func dotAVX2(x, y *float32, n int) float32
// The sum of x[i]*y[i] over n floats, n a multiple of 8: two 8-lane
// accumulators, reduced in a fixed order (deterministic).
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
loop16:
	CMPQ CX, $16
	JL   tail8
	VMOVUPS (SI), Y2
	VMOVUPS 32(SI), Y3
	VFMADD231PS (DI), Y2, Y0
	VFMADD231PS 32(DI), Y3, Y1
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  loop16
tail8:
	CMPQ CX, $8
	JL   reduce
	VMOVUPS (SI), Y2
	VFMADD231PS (DI), Y2, Y0
reduce:
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyAVX2(y, x *float32, n int, alpha float32)
// y[i] += alpha*x[i] over n floats, n a multiple of 8.
TEXT ·axpyAVX2(SB), NOSPLIT, $0-28
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS alpha+24(FP), Y0
loop:
	CMPQ CX, $8
	JL   done
	VMOVUPS (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  loop
done:
	VZEROUPPER
	RET

// func dot4AVX2(x, a *float32, n, lda int, u *[4]float32)
// u[k] = x·a[k*lda : k*lda+n] for k < 4, n a multiple of 8: x is read
// once for four rows of a.
TEXT ·dot4AVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ a+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ lda+24(FP), R8
	SHLQ $2, R8
	LEAQ (DI)(R8*1), R9
	LEAQ (R9)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
dot4loop:
	CMPQ CX, $8
	JL   dot4done
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS (R9), Y4, Y1
	VFMADD231PS (R10), Y4, Y2
	VFMADD231PS (R11), Y4, Y3
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R9
	ADDQ $32, R10
	ADDQ $32, R11
	SUBQ $8, CX
	JMP  dot4loop
dot4done:
	MOVQ         u+32(FP), DX
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVUPS      X0, (DX)
	VZEROUPPER
	RET

// func axpy4AVX2(y, bt *float32, n, ldb int, u *[4]float32)
// y[j] += u[0]*bt[j] + u[1]*bt[ldb+j] + u[2]*bt[2ldb+j] + u[3]*bt[3ldb+j]
// for j < n, n a multiple of 8: y is read and written once for four rows.
TEXT ·axpy4AVX2(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), DI
	MOVQ bt+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ ldb+24(FP), R8
	SHLQ $2, R8
	LEAQ (SI)(R8*1), R9
	LEAQ (R9)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	MOVQ u+32(FP), DX
	VBROADCASTSS (DX), Y0
	VBROADCASTSS 4(DX), Y1
	VBROADCASTSS 8(DX), Y2
	VBROADCASTSS 12(DX), Y3
axpy4loop:
	CMPQ CX, $8
	JL   axpy4done
	VMOVUPS (DI), Y4
	VFMADD231PS (SI), Y0, Y4
	VFMADD231PS (R9), Y1, Y4
	VFMADD231PS (R10), Y2, Y4
	VFMADD231PS (R11), Y3, Y4
	VMOVUPS Y4, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R10
	ADDQ $32, R11
	SUBQ $8, CX
	JMP  axpy4loop
axpy4done:
	VZEROUPPER
	RET

// func loraRowAVX512(y, x, a, bt *float32, in, out, rank int, scale float32)
// One row of GatherLoRA on 16 lanes, fused: for each group of four rank
// rows k, u[k] = scale * x·a[k] (x read once for the four), then
// y += sum of u[k]*bt[k] (y read and written once for the four). in and
// out are multiples of 16, rank a multiple of 4 (the caller does the rest).
TEXT ·loraRowAVX512(SB), NOSPLIT, $0-60
	MOVQ y+0(FP), DX
	MOVQ x+8(FP), SI
	MOVQ a+16(FP), DI
	MOVQ bt+24(FP), BX
	MOVQ in+32(FP), R8
	SHLQ $2, R8
	MOVQ out+40(FP), R12
	SHLQ $2, R12
	MOVQ rank+48(FP), R13
	VBROADCASTSS scale+56(FP), X15

group:
	CMPQ R13, $4
	JLT  done
	LEAQ (DI)(R8*1), R9
	LEAQ (R9)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	XORQ CX, CX

downloop:
	VMOVUPS     (SI)(CX*1), Z4
	VFMADD231PS (DI)(CX*1), Z4, Z0
	VFMADD231PS (R9)(CX*1), Z4, Z1
	VFMADD231PS (R10)(CX*1), Z4, Z2
	VFMADD231PS (R11)(CX*1), Z4, Z3
	ADDQ $64, CX
	CMPQ CX, R8
	JLT  downloop

	// Four 16-lane sums to X0 = [u0 u1 u2 u3], times scale.
	VEXTRACTF64X4 $1, Z0, Y4
	VADDPS        Y4, Y0, Y0
	VEXTRACTF64X4 $1, Z1, Y4
	VADDPS        Y4, Y1, Y1
	VEXTRACTF64X4 $1, Z2, Y4
	VADDPS        Y4, Y2, Y2
	VEXTRACTF64X4 $1, Z3, Y4
	VADDPS        Y4, Y3, Y3
	VHADDPS       Y1, Y0, Y0
	VHADDPS       Y3, Y2, Y2
	VHADDPS       Y2, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VMULPS        X15, X0, X0
	VBROADCASTSS  X0, Z4
	VSHUFPS       $0x55, X0, X0, X1
	VBROADCASTSS  X1, Z5
	VSHUFPS       $0xAA, X0, X0, X1
	VBROADCASTSS  X1, Z6
	VSHUFPS       $0xFF, X0, X0, X1
	VBROADCASTSS  X1, Z7

	LEAQ (BX)(R12*1), R9
	LEAQ (R9)(R12*1), R10
	LEAQ (R10)(R12*1), R11
	XORQ CX, CX

uploop:
	VMOVUPS     (DX)(CX*1), Z0
	VFMADD231PS (BX)(CX*1), Z4, Z0
	VFMADD231PS (R9)(CX*1), Z5, Z0
	VFMADD231PS (R10)(CX*1), Z6, Z0
	VFMADD231PS (R11)(CX*1), Z7, Z0
	VMOVUPS     Z0, (DX)(CX*1)
	ADDQ $64, CX
	CMPQ CX, R12
	JLT  uploop

	LEAQ (DI)(R8*4), DI
	LEAQ (BX)(R12*4), BX
	SUBQ $4, R13
	JMP  group

done:
	VZEROUPPER
	RET
