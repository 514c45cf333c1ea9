#ifndef CQUANTKERNELS_H
#define CQUANTKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Matrix-vector products that read ggml's block formats in place (no float32 copy of the weights).
/// Each product is the dot of a dequantized row with a float32 vector: the same values as dequantizing the row
/// (ggml's formulas) and multiplying, summed in another order (8 lanes, per block).
///
/// The kernels need AVX2 and FMA (and F16C for the half-precision scales); `cq_supports` answers 0 on CPUs
/// without them, and callers then use their portable path (a float32 copy and BLAS).

/// 1 when this CPU has AVX2, FMA and F16C (checked once at run time), else 0.
int cq_cpu_has_kernels(void);

/// 1 when rows of ggml type `type` (its GGUF id) have a direct kernel on this CPU.
int cq_supports(uint32_t type);

/// y[r - r0] = row r · x for rows r0 ..< r1 of a matrix of `cols` columns stored as ggml type `type`,
/// rows `row_bytes` apart from `w`. `cols` must be a whole number of the type's blocks.
/// Returns 0, or -1 when the type has no kernel on this CPU (nothing is written then).
int cq_matvec(uint32_t type, const void *w, size_t row_bytes, int64_t cols, const float *x,
              float *y, int64_t r0, int64_t r1);

#endif
