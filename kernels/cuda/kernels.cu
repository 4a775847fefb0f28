// Ark's CUDA kernels, compiled at run time by NVRTC for the device's
// architecture (see compile.go). No headers: NVRTC provides the device math
// functions and atomics. Every kernel is extern "C" so the driver finds it by
// name. These are simple, correct-first kernels (one thread per row or element,
// 16x16 shared-memory tiles for the fallback matmul), not tuned ones.
//
// Conventions match kernels.Device: row-major, backward kernels add into
// gradients, a null pointer means "absent" where the Go side allows nil.

#define TILE 16

extern "C" __global__ void matmul_tiled(float *c, const float *a, const float *b, const float *bias,
                                        int M, int N, int K, int transA, int transB, float alpha, float beta) {
    __shared__ float as[TILE][TILE];
    __shared__ float bs[TILE][TILE + 1];
    int row = blockIdx.y * TILE + threadIdx.y;
    int col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.f;
    for (int k0 = 0; k0 < K; k0 += TILE) {
        int ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
        float av = 0.f, bv = 0.f;
        if (row < M && ka < K) av = transA ? a[(long)ka * M + row] : a[(long)row * K + ka];
        if (col < N && kb < K) bv = transB ? b[(long)col * K + kb] : b[(long)kb * N + col];
        as[threadIdx.y][threadIdx.x] = av;
        bs[threadIdx.y][threadIdx.x] = bv;
        __syncthreads();
        for (int p = 0; p < TILE; p++) acc += as[threadIdx.y][p] * bs[p][threadIdx.x];
        __syncthreads();
    }
    if (row < M && col < N) {
        long i = (long)row * N + col;
        float v = alpha * acc;
        if (beta != 0.f) v += beta * c[i];
        if (bias) v += bias[col];
        c[i] = v;
    }
}

extern "C" __global__ void add_bias_rows(float *c, const float *bias, int M, int N) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (long)M * N) c[i] += bias[i % N];
}

extern "C" __global__ void colsum(float *out, const float *in, int rows, int cols) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float s = 0.f;
    for (int r = 0; r < rows; r++) s += in[(long)r * cols + c];
    out[c] += s;
}

// block_sum reduces v over the block (blockDim.x a power of two <= 1024).
__device__ float block_sum(float v, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

// One block of 256 threads per row.
extern "C" __global__ void layernorm_fwd(float *out, float *mean, float *rstd, const float *in, const float *w,
                                         const float *b, int rows, int cols, float eps) {
    __shared__ float sh[256];
    int r = blockIdx.x;
    const float *x = in + (long)r * cols;
    float s = 0.f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) s += x[i];
    float m = block_sum(s, sh) / cols;
    float v = 0.f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) v += (x[i] - m) * (x[i] - m);
    float rs = rsqrtf(block_sum(v, sh) / cols + eps);
    float *o = out + (long)r * cols;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) o[i] = (x[i] - m) * rs * w[i] + b[i];
    if (threadIdx.x == 0) { mean[r] = m; rstd[r] = rs; }
}

// One block of 256 threads per row.
extern "C" __global__ void layernorm_bwd_din(float *din, const float *dout, const float *in, const float *w,
                                             const float *mean, const float *rstd, int rows, int cols) {
    __shared__ float sh[256];
    int r = blockIdx.x;
    const float *x = in + (long)r * cols, *g = dout + (long)r * cols;
    float m = mean[r], rs = rstd[r], s1 = 0.f, s2 = 0.f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        float wg = w[i] * g[i];
        s1 += wg;
        s2 += wg * (x[i] - m) * rs;
    }
    float m1 = block_sum(s1, sh) / cols, m2 = block_sum(s2, sh) / cols;
    float *d = din + (long)r * cols;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        float xh = (x[i] - m) * rs;
        d[i] += rs * (w[i] * g[i] - m1 - xh * m2);
    }
}

extern "C" __global__ void layernorm_bwd_dw(float *dw, float *db, const float *dout, const float *in,
                                            const float *mean, const float *rstd, int rows, int cols) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float sw = 0.f, sb = 0.f;
    for (int r = 0; r < rows; r++) {
        float g = dout[(long)r * cols + c];
        sw += g * (in[(long)r * cols + c] - mean[r]) * rstd[r];
        sb += g;
    }
    dw[c] += sw;
    db[c] += sb;
}

#define GELU_K 0.7978845608028654f

extern "C" __global__ void gelu_fwd(float *out, const float *in, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = in[i];
    out[i] = 0.5f * x * (1.f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
}

extern "C" __global__ void gelu_bwd(float *din, const float *in, const float *dout, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = in[i];
    float t = tanhf(GELU_K * (x + 0.044715f * x * x * x));
    float g = 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * GELU_K * (1.f + 3.f * 0.044715f * x * x);
    din[i] += g * dout[i];
}

// One thread per (b, h, t) query row.
extern "C" __global__ void attention_fwd(float *out, float *probs, const float *qkv, int B, int T, int C, int H) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= B * H * T) return;
    int t = idx % T, h = (idx / T) % H, b = idx / (T * H);
    int hs = C / H;
    float scale = rsqrtf((float)hs);
    const float *q = qkv + ((long)b * T + t) * 3 * C + h * hs;
    float *p = probs + ((long)(b * H + h) * T + t) * T;
    float mx = -3.402823466e38f;
    for (int t2 = 0; t2 <= t; t2++) {
        const float *k = qkv + ((long)b * T + t2) * 3 * C + C + h * hs;
        float d = 0.f;
        for (int i = 0; i < hs; i++) d += q[i] * k[i];
        p[t2] = d * scale;
        mx = fmaxf(mx, p[t2]);
    }
    float sum = 0.f;
    for (int t2 = 0; t2 <= t; t2++) { p[t2] = expf(p[t2] - mx); sum += p[t2]; }
    float inv = 1.f / sum;
    for (int t2 = 0; t2 <= t; t2++) p[t2] *= inv;
    for (int t2 = t + 1; t2 < T; t2++) p[t2] = 0.f;
    float *o = out + ((long)b * T + t) * C + h * hs;
    for (int i = 0; i < hs; i++) {
        float s = 0.f;
        for (int t2 = 0; t2 <= t; t2++) s += p[t2] * qkv[((long)b * T + t2) * 3 * C + 2 * C + h * hs + i];
        o[i] = s;
    }
}

// One thread per (b, h, t); keys and values of earlier positions receive
// contributions from many threads, so they are added atomically.
extern "C" __global__ void attention_bwd(float *dqkv, const float *dout, const float *qkv, const float *probs,
                                         int B, int T, int C, int H) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= B * H * T) return;
    int t = idx % T, h = (idx / T) % H, b = idx / (T * H);
    int hs = C / H;
    float scale = rsqrtf((float)hs);
    const float *p = probs + ((long)(b * H + h) * T + t) * T;
    const float *g = dout + ((long)b * T + t) * C + h * hs;
    const float *q = qkv + ((long)b * T + t) * 3 * C + h * hs;
    float *dq = dqkv + ((long)b * T + t) * 3 * C + h * hs;
    float s = 0.f;
    for (int t2 = 0; t2 <= t; t2++) {
        const float *v = qkv + ((long)b * T + t2) * 3 * C + 2 * C + h * hs;
        float d = 0.f;
        for (int i = 0; i < hs; i++) d += v[i] * g[i];
        s += p[t2] * d;
    }
    for (int t2 = 0; t2 <= t; t2++) {
        long kofs = ((long)b * T + t2) * 3 * C + C + h * hs;
        const float *k = qkv + kofs, *v = qkv + kofs + C;
        float d = 0.f;
        for (int i = 0; i < hs; i++) d += v[i] * g[i];
        float dpre = p[t2] * (d - s) * scale;
        for (int i = 0; i < hs; i++) {
            dq[i] += dpre * k[i];
            atomicAdd(dqkv + kofs + i, dpre * q[i]);
            atomicAdd(dqkv + kofs + C + i, p[t2] * g[i]);
        }
    }
}

extern "C" __global__ void embedding_fwd(float *out, const int *ids, const float *wte, const float *wpe,
                                         int B, int T, int C) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)B * T * C) return;
    int c = i % C;
    long r = i / C;
    float v = wte[(long)ids[r] * C + c];
    if (wpe) v += wpe[(r % T) * C + c];
    out[i] = v;
}

extern "C" __global__ void embedding_bwd(float *dwte, float *dwpe, const float *dout, const int *ids,
                                         int B, int T, int C) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)B * T * C) return;
    int c = i % C;
    long r = i / C;
    atomicAdd(dwte + (long)ids[r] * C + c, dout[i]);
    if (dwpe) atomicAdd(dwpe + (r % T) * C + c, dout[i]);
}

// One block of 256 threads per row.
extern "C" __global__ void cross_entropy(float *losses, float *dlogits, const float *logits, const int *targets,
                                         int rows, int V, float dscale) {
    __shared__ float sh[256];
    int r = blockIdx.x;
    int t = targets[r];
    if (t < 0) {
        if (threadIdx.x == 0) losses[r] = 0.f;
        return;
    }
    const float *x = logits + (long)r * V;
    float mx = -3.402823466e38f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, x[i]);
    sh[threadIdx.x] = mx;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    mx = sh[0];
    __syncthreads();
    float s = 0.f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) s += expf(x[i] - mx);
    float sum = block_sum(s, sh);
    if (threadIdx.x == 0) losses[r] = logf(sum) + mx - x[t];
    if (!dlogits) return;
    float *g = dlogits + (long)r * V;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float d = expf(x[i] - mx) / sum;
        if (i == t) d -= 1.f;
        g[i] += dscale * d;
    }
}

extern "C" __global__ void adamw(float *p, const float *g, float *m, float *v, long n, float lr, float b1, float b2,
                                 float eps, float wd, float c1, float c2) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float gi = g[i];
    float mi = b1 * m[i] + (1.f - b1) * gi;
    float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * ((mi / c1) / (sqrtf(vi / c2) + eps) + wd * p[i]);
}

extern "C" __global__ void add(float *dst, const float *a, const float *b, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = a[i] + b[i];
}

extern "C" __global__ void scale(float *dst, const float *x, float alpha, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = alpha * x[i];
}

// Blocks of 256 threads, a grid-stride loop, one atomic per block.
extern "C" __global__ void sum_squares(float *acc, const float *x, long n) {
    __shared__ float sh[256];
    float s = 0.f;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        s += x[i] * x[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) atomicAdd(acc, s);
}

extern "C" __global__ void to_bf16(unsigned short *dst, const float *src, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned u = __float_as_uint(src[i]);
    if ((u & 0x7fffffffu) > 0x7f800000u) dst[i] = (unsigned short)((u >> 16) | 0x40u);
    else dst[i] = (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

extern "C" __global__ void from_bf16(float *dst, const unsigned short *src, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __uint_as_float(((unsigned)src[i]) << 16);
}

// Gathered multi-adapter LoRA (kernels.GatheredLoRA): row i of a batch adds
// scales[s]·(x[i]·A[s]ᵀ)·Bt[s] into y[i] through its own slot s = slots[i];
// A is Slots x rank x in, Bt Slots x rank x out (each adapter's B
// transposed, zero-padded past its own rank). A row with a negative slot is
// the base alone; a slot >= nslots is skipped too (the GPU cannot return an
// error without a copy to the host; the CPU backend reports it), so a bad
// slot never reads outside the stacked factors.
//
// Shape: Punica's BGMV, two launches (shrink, then expand through a
// rows x rank scratch u), not one fused kernel or a grouped GEMM. At decode
// time every row is one token and a batch is 1-64 rows across many
// adapters, so there is no larger GEMM per adapter to form (SGMV's segment
// GEMMs pay off for prefills, where a run of rows shares an adapter); the
// work is reading each row's factors, rank·(in+out) floats, and rows that
// share an adapter find them in L2. Splitting shrink and expand lets each
// take the parallel axis it has: the shrink's rank (8-64) dot products of
// length in, one warp each; the expand's out columns, one thread each. A
// fused kernel would either leave the expand's columns to one block per row
// (1-64 blocks for a 132-SM GPU) or recompute the shrink in every column
// block. Sums are float32 in a fixed order: a row's result does not depend
// on what else is in its batch. See lora.go for the launch geometry and
// lora_sim_test.go for a Go port of these loops checked against the CPU
// backend.

#define LORA_WARPS 8     // warps per shrink block: one rank index each
#define LORA_EXPAND 256  // threads per expand block: one output column each

// Grid (rows, ceil(rank/LORA_WARPS)), LORA_WARPS*32 threads. Warp w of
// block (i, g) computes u[i, g*LORA_WARPS+w] = scale·(x[i] · A[s][k]): its
// lanes read x and A's row in coalesced 128-byte strides and the partial
// sums meet in a shuffle tree. Whole warps exit together (s is the block's,
// k the warp's), so the full-mask shuffle sees every lane it names.
extern "C" __global__ void lora_shrink(float *u, const float *x, const float *a, const int *slots,
                                       const float *scales, int in, int rank, int nslots) {
    int i = blockIdx.x;
    int k = blockIdx.y * LORA_WARPS + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    int s = slots[i];
    if (s < 0 || s >= nslots || k >= rank) return;
    const float *xr = x + (long)i * in;
    const float *ar = a + ((long)s * rank + k) * in;
    float acc = 0.f;
    for (int j = lane; j < in; j += 32) acc += xr[j] * ar[j];
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
    if (lane == 0) u[(long)i * rank + k] = scales[s] * acc;
}

// Grid (rows, ceil(out/LORA_EXPAND)), LORA_EXPAND threads. Thread o of row
// i adds sum over k of u[i,k]·Bt[s][k,o] into y[i,o]: consecutive threads
// read consecutive columns of each Bt row (coalesced), u[i,k] is the same
// address for the whole block (a broadcast from L1). Each y element has
// one writer, so no atomics.
extern "C" __global__ void lora_expand(float *y, const float *u, const float *bt, const int *slots,
                                       int out, int rank, int nslots) {
    int i = blockIdx.x;
    int o = blockIdx.y * LORA_EXPAND + threadIdx.x;
    int s = slots[i];
    if (s < 0 || s >= nslots || o >= out) return;
    const float *ur = u + (long)i * rank;
    const float *b = bt + (long)s * rank * out + o;
    float acc = 0.f;
    for (int k = 0; k < rank; k++) acc += ur[k] * b[(long)k * out];
    y[(long)i * out + o] += acc;
}
