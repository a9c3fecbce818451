/* tc.cuh - the async-copy and tensor-core primitives the GEMM and attention
 * kernels share: cp.async into shared memory, ldmatrix, mma.sync bf16, bf16
 * packing, and the warpgroup (wgmma) fences with the K-major 128-byte-swizzle
 * shared-memory descriptor. Thin wrappers around single PTX instructions. */
#pragma once
#include "common.cuh"

KL_DEV uint32_t kl_smem(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

/* 16 bytes global -> shared; bytes < 16 zero-fill the rest (0: a zero chunk) */
KL_DEV void kl_cp16(void *dst, const void *src, int bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(kl_smem(dst)), "l"(src),
                 "r"(bytes));
}
/* the same to a shared address already converted with kl_smem */
KL_DEV void kl_cp16_at(uint32_t dst, const void *src, int bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(bytes));
}
KL_DEV void kl_cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
/* until at most N committed groups of this thread are still in flight */
template <int N> KL_DEV void kl_cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

KL_DEV void kl_ldm4(uint32_t *r, const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(kl_smem(p)));
}
KL_DEV void kl_ldm2(uint32_t *r, const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(kl_smem(p)));
}
KL_DEV void kl_ldm4t(uint32_t *r, const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(kl_smem(p)));
}

/* d += a (16x16, row) * b (16x8, col), bf16 in, fp32 accumulate */
KL_DEV void kl_mma_bf16(float *d, const uint32_t *a, uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* two floats as one bf16x2 register (lo in the low half), round to nearest */
KL_DEV uint32_t kl_pack_bf16(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* eight floats as eight bf16 in one 16-byte chunk */
KL_DEV uint4 kl_pack_bf16x8(float4 a, float4 b)
{
    return make_uint4(kl_pack_bf16(a.x, a.y), kl_pack_bf16(a.z, a.w), kl_pack_bf16(b.x, b.y),
                      kl_pack_bf16(b.z, b.w));
}

/* Shared-memory matrix descriptor for wgmma: K-major, 128-byte swizzle, 8-row
 * groups 1024 bytes apart (tile base 1024-aligned). */
KL_DEV uint64_t kl_wg_desc(const void *p)
{
    return ((uint64_t)(kl_smem(p) & 0x3FFFF) >> 4) | (1ull << 16) |
           ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}

/* Warpgroup fences: they exist from sm_90a on; other targets compile the
 * kernels that use them but never launch those (KL_WGMMA unset). */
#ifdef KL_WGMMA
KL_DEV void kl_wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
KL_DEV void kl_wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> KL_DEV void kl_wg_wait()
{
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* the tensor cores read shared memory through the async proxy */
KL_DEV void kl_proxy_fence() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
#else
KL_DEV void kl_wg_fence() {}
KL_DEV void kl_wg_commit() {}
template <int N> KL_DEV void kl_wg_wait() {}
KL_DEV void kl_proxy_fence() {}
#endif
