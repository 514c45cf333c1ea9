import Foundation
import Host

/// Small float32 kernels of the forward pass. Matrix products go through OpenBLAS (`BLAS`); these are
/// the element-wise pieces around them.
typealias V8 = SIMD8<Float>

// Lane-wise max/min through masks; the stdlib's generic `pointwiseMax` is not always inlined across modules.
@inline(__always) func lanewiseMax(_ a: V8, _ b: V8) -> V8 { a.replacing(with: b, where: a .< b) }
@inline(__always) func lanewiseMin(_ a: V8, _ b: V8) -> V8 { a.replacing(with: b, where: b .< a) }

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

    /// e^x for 8 lanes: Cephes' `expf` scheme (x = n·ln2 + r with ln2 split in two parts, a degree-6
    /// polynomial for e^r, 2^n put in the exponent bits), within 2e-7 relative of `expf` for x in
    /// [-87, 88]; inputs below are clamped (e^-87 ≈ 1.6e-38, nothing a softmax sum can see).
    /// Written with explicit broadcasts and mask selects: Swift lowers these to vector code, while the
    /// generic `clamped` and scalar-operand forms fall back to per-lane loops.
    @inline(__always)
    static func exp8(_ x0: V8) -> V8 {
        let x = lanewiseMin(lanewiseMax(x0, V8(repeating: -87)), V8(repeating: 88))
        // Round x·log2(e) with the 1.5·2^23 trick: the integer lands in the low mantissa bits.
        let shifted = x * V8(repeating: 1.442_695_04) + V8(repeating: 12_582_912)
        let n = shifted - V8(repeating: 12_582_912)
        let r = x - n * V8(repeating: 0.693_359_375) + n * V8(repeating: 2.121_944_4e-4)
        var p = V8(repeating: 1.987_569_15e-4)
        p = p * r + V8(repeating: 1.398_199_95e-3)
        p = p * r + V8(repeating: 8.333_451_9e-3)
        p = p * r + V8(repeating: 4.166_579_59e-2)
        p = p * r + V8(repeating: 1.666_666_55e-1)
        p = p * r + V8(repeating: 5.000_000_12e-1)
        p = p * (r * r) + r + V8(repeating: 1)
        let bits = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- SIMD8<Int32>(repeating: 0x4B40_0000 - 127))
            &* SIMD8<Int32>(repeating: 1 << 23)
        return p * unsafeBitCast(bits, to: V8.self)
    }

    /// SwiGLU gate: `gate = silu(gate) * up` in place (transformers: `act_fn(gate_proj(x)) * up_proj(x)`).
    static func siluMultiply(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int, threads: Int = 1) {
        split(count, cost: count * 8, threads: threads) { range in
            var i = range.lowerBound
            let raw = UnsafeMutableRawPointer(gate), upRaw = UnsafeRawPointer(up)
            let one = V8(repeating: 1)
            while i + 8 <= range.upperBound {
                let g = raw.loadUnaligned(fromByteOffset: i * 4, as: V8.self)
                let u = upRaw.loadUnaligned(fromByteOffset: i * 4, as: V8.self)
                raw.storeBytes(of: g / (one + exp8(-g)) * u, toByteOffset: i * 4, as: V8.self)
                i += 8
            }
            while i < range.upperBound {
                let g = gate[i]
                gate[i] = g / (1 + exp(-g)) * up[i]
                i += 1
            }
        }
    }

    /// GeGLU gate with the tanh approximation: `gate = gelu_tanh(gate) * up` in place, where
    /// `gelu_tanh(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (PyTorch's `gelu(approximate="tanh")`).
    static func geluTanhMultiply(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int, threads: Int = 1) {
        let beta = Float((2 / Double.pi).squareRoot()), kappa: Float = 0.044715
        split(count, cost: count * 8, threads: threads) { range in
            for i in range {
                let x = gate[i]
                gate[i] = 0.5 * x * (1 + tanhf(beta * (x + kappa * x * x * x))) * up[i]
            }
        }
    }

    /// In-place softmax of `count` floats in float32 (max-subtracted).
    static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        let raw = UnsafeMutableRawPointer(x)
        var m = x[0]
        var i = 0
        if count >= 8 {
            var mv = V8(repeating: x[0])
            while i + 8 <= count {
                mv = lanewiseMax(mv, raw.loadUnaligned(fromByteOffset: i * 4, as: V8.self))
                i += 8
            }
            m = mv.max()
        }
        while i < count { m = max(m, x[i]); i += 1 }
        var sumv = V8()
        let mv = V8(repeating: m)
        i = 0
        while i + 8 <= count {
            let e = exp8(raw.loadUnaligned(fromByteOffset: i * 4, as: V8.self) - mv)
            raw.storeBytes(of: e, toByteOffset: i * 4, as: V8.self)
            sumv += e
            i += 8
        }
        var sum = sumv.sum()
        while i < count {
            let e = exp(x[i] - m)
            x[i] = e
            sum += e
            i += 1
        }
        let inv = 1 / sum
        for j in 0..<count { x[j] *= inv }
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
