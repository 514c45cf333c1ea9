import CQuantKernels
import Checkpoints
import Dispatch
import Foundation

/// Matrix-vector products over GGUF weights in their stored block format (Q8_0, Q4_0/Q4_1, Q5_0/Q5_1, Q4_K, Q5_K,
/// Q6_K, F16, BF16), read in place from the mapping by the AVX2/FMA kernels of `CQuantKernels`: one-token decoding
/// reads each weight once per token, so reading the blocks costs far less memory traffic than a float32 copy.
///
/// Each output is the dot product of the row's dequantized values (ggml's formulas, as `dequantize` computes them)
/// with the input, summed per block in 8 float32 lanes: the same products as dequantize-then-multiply, added in
/// another order, so results differ from the float32 path by rounding only. Used only where the CPU has the kernels
/// (checked at run time); elsewhere the caller keeps its float32 path.
enum StoredMatVec {
    /// `CRUCIBLE_PORTABLE_KERNELS=1` turns the kernels off (the float32 path everywhere), to compare or test that path.
    static let disabled = ProcessInfo.processInfo.environment["CRUCIBLE_PORTABLE_KERNELS"].map { $0 != "0" && !$0.isEmpty } ?? false

    /// Whether rows of `type` have a kernel on this CPU.
    static func supports(_ type: GGMLType) -> Bool {
        !disabled && cq_supports(type.rawValue) != 0
    }

    /// `y[r] = row r · x` for every served row of `m` (`cols` columns), the rows split over `threads` cores when the
    /// matrix is large enough to pay for the hand-off. `permuted` (m.rows floats) holds the stored-order outputs of a
    /// row-permuted matrix. Returns false when the type has no kernel here (nothing written).
    static func apply(_ m: GGUFStoredRows, cols: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                      threads: Int, permuted: ScratchBuffer) -> Bool {
        guard supports(m.type) else { return false }
        let out = m.permutedHeads == nil ? y : permuted.reserve(m.rows)
        let rows = m.rows
        // About 64k weights per core before a second core helps (a wake-up costs a few microseconds).
        let parts = max(1, min(threads, rows * cols / (1 << 16)))
        if parts == 1 {
            _ = cq_matvec(m.type.rawValue, m.base, m.rowBytes, Int64(cols), x, out, 0, Int64(rows))
        } else {
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let r0 = rows * part / parts, r1 = rows * (part + 1) / parts
                _ = cq_matvec(m.type.rawValue, m.base, m.rowBytes, Int64(cols), x, out + r0, Int64(r0), Int64(r1))
            }
        }
        if m.permutedHeads != nil {
            for r in 0..<rows { y[r] = out[m.storedRow(r)] }
        }
        return true
    }
}
