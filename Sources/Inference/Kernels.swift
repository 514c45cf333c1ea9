import Foundation
import Tensors

/// Small float32 kernels of the forward pass. Matrix products go through OpenBLAS (`BLAS`); these are
/// the element-wise pieces around them.
enum Kernels {
    /// Runs `body(range)` over `0..<count` in one contiguous piece per core when the work is large
    /// enough to pay for the hand-off (`cost` ≈ elements touched); otherwise inline.
    static func split(_ count: Int, cost: Int, threads: Int, _ body: (Range<Int>) -> Void) {
        let parts = cost >= 1 << 15 ? min(threads, count) : 1
        if parts <= 1 { body(0..<count); return }
        parallelFor(parts, threads: parts) { part in
            body((count * part / parts)..<(count * (part + 1) / parts))
        }
    }

    /// RMSNorm (Zhang & Sennrich, 2019): `x * rsqrt(mean(x²) + eps) * weight`, per row, in float32.
    static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float,
                        rows: Int, width: Int, into out: UnsafeMutablePointer<Float>, threads: Int = 1) {
        split(rows, cost: rows * width, threads: threads) { range in for r in range {
            let src = x + r * width, dst = out + r * width
            var sum: Float = 0
            for i in 0..<width { sum += src[i] * src[i] }
            let scale = 1 / (sum / Float(width) + eps).squareRoot()
            for i in 0..<width { dst[i] = weight[i] * (src[i] * scale) }
        } }
    }

    /// SwiGLU gate: `gate = silu(gate) * up` in place (transformers: `act_fn(gate_proj(x)) * up_proj(x)`).
    static func siluMultiply(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int, threads: Int = 1) {
        split(count, cost: count * 8, threads: threads) { range in
            for i in range {
                let g = gate[i]
                gate[i] = g / (1 + exp(-g)) * up[i]
            }
        }
    }

    /// In-place softmax of `count` floats in float32 (max-subtracted).
    static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        var m = x[0]
        for i in 1..<count where x[i] > m { m = x[i] }
        var sum: Float = 0
        for i in 0..<count {
            let e = exp(x[i] - m)
            x[i] = e
            sum += e
        }
        let inv = 1 / sum
        for i in 0..<count { x[i] *= inv }
    }

    /// `y[r, :] += bias` for every row.
    static func addBias(_ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, width: Int, stride: Int) {
        for r in 0..<rows {
            let row = y + r * stride
            for i in 0..<width { row[i] += bias[i] }
        }
    }

    /// `a += b` element-wise.
    static func add(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { a[i] += b[i] }
    }
}
