import Foundation
import Numerics

/// How a task vector δ = X − B is thinned before it is combined (mergekit's `sparsify`; docs/methods.md).
public enum Sparsifier: String, Sendable {
    /// Keep everything (task arithmetic).
    case none
    /// Keep the k = max(1, ⌊density·n⌋) largest |δ| of the whole tensor (TIES).
    case magnitude
    /// Keep each entry with probability `density` (DARE).
    case random
    /// Drop the ⌊gamma·n⌋ largest |δ| and the smallest, keeping ⌊density·n⌋ in between (Model Breadcrumbs).
    case magnitudeOutliers = "magnitude_outliers"
    /// Per row, keep with probability rising linearly with the |δ| rank from density−ε to density+ε (DELLA).
    case dellaMagprune = "della_magprune"
}

/// Per-model sparsification settings, resolved for one tensor.
struct SparsifySettings {
    var density: Double
    var gamma: Double
    var epsilon: Double
    var rescale: Bool
}

/// The sparsifiers' per-chunk kernels (L1 sums, Bernoulli masks, DELLA keep probabilities), shared by every pass of
/// `StreamingSparsifier`, which holds the policy (densities, windows, warnings).
enum SparsifyKernels {
    /// ‖mask⊙δ‖₁ over one chunk `r` (indices of the whole tensor; `x` and `base` are addressed by them).
    static func maskedL1(x: UnsafePointer<Float>, base: UnsafePointer<Float>, words: UnsafePointer<UInt64>, range r: Range<Int>) -> Double {
        var acc = (0.0, 0.0, 0.0, 0.0)
        var i = r.lowerBound
        while i < r.upperBound {
            let word = words[i >> 6]
            let end = min(i + 64, r.upperBound)
            var bit: UInt64 = 0
            while i + 4 <= end {
                @inline(__always) func term(_ k: UInt64, _ j: Int) -> Double {
                    let keep = UInt32(truncatingIfNeeded: (word >> (bit + k)) & 1) &* 0xFFFF_FFFF
                    return Double(Float(bitPattern: abs(x[j] - base[j]).bitPattern & keep))
                }
                acc.0 += term(0, i); acc.1 += term(1, i + 1); acc.2 += term(2, i + 2); acc.3 += term(3, i + 3)
                i += 4
                bit += 4
            }
            while i < end {
                if (word >> bit) & 1 != 0 { acc.0 += Double(abs(x[i] - base[i])) }
                i += 1
                bit += 1
            }
        }
        return (acc.0 + acc.1) + (acc.2 + acc.3)
    }

    /// ‖δ‖₁ over one chunk, four accumulators to break the add latency chain.
    static func l1(x: UnsafePointer<Float>, base: UnsafePointer<Float>, range r: Range<Int>) -> Double {
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var i = r.lowerBound
        while i + 4 <= r.upperBound {
            s0 += Double(abs(x[i] - base[i]))
            s1 += Double(abs(x[i + 1] - base[i + 1]))
            s2 += Double(abs(x[i + 2] - base[i + 2]))
            s3 += Double(abs(x[i + 3] - base[i + 3]))
            i += 4
        }
        while i < r.upperBound {
            s0 += Double(abs(x[i] - base[i]))
            i += 1
        }
        return (s0 + s1) + (s2 + s3)
    }

    /// mergekit's L1 rescale: match the masked delta's L1 norm to the original's, unless either is below 1e-7.
    static func rescaleFactor(before: Double, after: Double) -> Float {
        if before < 1e-7 || after < 1e-7 { return 1 }
        return Float(before / after)
    }

    /// Bernoulli masks: with a constant probability p, element i keeps when half i mod 2 (low 32 bits for even i,
    /// high for odd) of draw ⌊i/2⌋ of the model's stream is below p·2³²; with per-element probabilities, when draw i
    /// (53 bits) is below p. Draws are addressed by index (SplitMix64 is counter-based), so chunks fill in parallel
    /// and the mask depends only on seed, tensor name and model index (`SplitMix64(seed:tensor:model:)`).
    static func threshold32(_ constant: Double) -> UInt64 { UInt64(min(max(constant, 0), 1) * 4_294_967_296.0) }

    /// The Bernoulli mask words and L1 sums of one chunk `r` (see above); `x`, `base`, `perElement` and
    /// `words` are addressed by indices of the whole tensor.
    static func bernoulli(words: UnsafeMutablePointer<UInt64>, x: UnsafePointer<Float>, base: UnsafePointer<Float>, range r: Range<Int>,
                          start: UInt64, threshold32: UInt64, perElement: UnsafePointer<Float>?) -> (before: Double, after: Double) {
        var before = 0.0, after = 0.0
        var i = r.lowerBound
        let draws = perElement == nil ? i / 2 : i
        var g = SplitMix64(seed: start &+ UInt64(draws) &* 0x9E37_79B9_7F4A_7C15)
        while i < r.upperBound {
            let len = min(64, r.upperBound - i)
            var word: UInt64 = 0
            if let perElement {
                for j in 0..<len {
                    let kept = Double(g.next() >> 11) * (1.0 / 9_007_199_254_740_992.0) < Double(perElement[i + j])
                    word |= (kept ? 1 : 0) << UInt64(j)
                }
            } else {
                // Built in a register without branches: a coin flip defeats branch prediction.
                for pair in 0..<((len + 1) / 2) {
                    let z = g.next()
                    let low: UInt64 = z & 0xFFFF_FFFF < threshold32 ? 1 : 0
                    let high: UInt64 = z >> 32 < threshold32 ? 1 : 0
                    word |= (low | high << 1) << UInt64(2 * pair)
                }
                if len < 64 { word &= (1 << UInt64(len)) - 1 }
            }
            words[i >> 6] |= word
            let l1 = SparsifyKernels.maskedL1(x: x + i, base: base + i, count: len, word: word)
            before += l1.before
            after += l1.after
            i += len
        }
        return (before, after)
    }

    /// ‖δ‖₁ and ‖mask⊙δ‖₁ over up to 64 elements whose mask bits are `word`, with 8-lane float vectors
    /// (exact enough for a rescale factor; totals are accumulated in double by the caller).
    @inline(__always)
    static func maskedL1(x: UnsafePointer<Float>, base: UnsafePointer<Float>, count: Int, word: UInt64)
        -> (before: Double, after: Double) {
        if count < 64 {
            var before = 0.0, after = 0.0
            for j in 0..<count {
                let d = Double(abs(x[j] - base[j]))
                before += d
                after += (word >> UInt64(j)) & 1 != 0 ? d : 0
            }
            return (before, after)
        }
        var vb = SIMD8<Float>(), va = SIMD8<Float>()
        for group in 0..<8 {
            let xv = UnsafeRawPointer(x + group * 8).loadUnaligned(as: SIMD8<Float>.self)
            let bv = UnsafeRawPointer(base + group * 8).loadUnaligned(as: SIMD8<Float>.self)
            let diff: SIMD8<Float> = xv - bv
            let d = unsafeBitCast(unsafeBitCast(diff, to: SIMD8<UInt32>.self) & SIMD8<UInt32>(repeating: 0x7FFF_FFFF),
                                  to: SIMD8<Float>.self)
            vb += d
            let byte = UInt32(truncatingIfNeeded: word >> UInt64(group * 8))
            let lanes = SIMD8<UInt32>(repeating: byte) &>> SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7) & SIMD8<UInt32>(repeating: 1)
            let keep = SIMD8<UInt32>(repeating: 0) &- lanes
            va += unsafeBitCast(unsafeBitCast(d, to: SIMD8<UInt32>.self) & keep, to: SIMD8<Float>.self)
        }
        return (Double(vb.sum()), Double(va.sum()))
    }

    /// DELLA's MagPrune: within each row (the tensor viewed as [shape[0], rest]; 1-D tensors are one row), rank |δ|
    /// ascending (ties by position) and keep with probability (density − ε) + 2ε·rank/(rowLength − 1), clamped to
    /// [0, 1].
    /// DELLA keep probabilities of the row of `length` elements starting at `start` (indices of the whole tensor).
    /// Ranks come from a stable LSD radix sort of the 32-bit magnitude keys (four byte passes, a pass skipped when
    /// every key shares that byte): with positions in ascending order to start with, that is exactly the order of
    /// sorting (key, position), i.e. ties by position.
    static func dellaRow(x: UnsafePointer<Float>, base: UnsafePointer<Float>, start lo: Int, length: Int,
                         into probabilities: UnsafeMutablePointer<Float>, density: Double, epsilon: Double) {
        guard length > 0 else { return }
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 4 * length + 4 * 256) { scratch in
            let s = scratch.baseAddress!
            var keys = s, keys2 = s + length, order = s + 2 * length, order2 = s + 3 * length
            // All four byte histograms in one pass (independent counters, no store-to-load chains between passes).
            let counts = s + 4 * length
            counts.initialize(repeating: 0, count: 4 * 256)
            for j in 0..<length {
                let k = FloatKey.magnitude(x[lo + j] - base[lo + j])
                keys[j] = k
                order[j] = UInt32(truncatingIfNeeded: j)
                counts[Int(k & 0xFF)] &+= 1
                counts[256 + Int((k >> 8) & 0xFF)] &+= 1
                counts[512 + Int((k >> 16) & 0xFF)] &+= 1
                counts[768 + Int(k >> 24)] &+= 1
            }
            for pass in 0..<4 {
                let shift = UInt32(8 * pass)
                let c = counts + 256 * pass
                if c[Int((keys[0] >> shift) & 0xFF)] == UInt32(truncatingIfNeeded: length) { continue }
                var total: UInt32 = 0
                for d in 0..<256 {
                    let n = c[d]
                    c[d] = total
                    total &+= n
                }
                for j in 0..<length {
                    let d = Int((keys[j] >> shift) & 0xFF)
                    let at = Int(c[d])
                    c[d] = UInt32(truncatingIfNeeded: at + 1)
                    keys2[at] = keys[j]
                    order2[at] = order[j]
                }
                swap(&keys, &keys2)
                swap(&order, &order2)
            }
            let low = density - epsilon, span = 2 * epsilon
            for rank in 0..<length {
                let j = Int(order[rank])
                let r = length > 1 ? Double(rank) / Double(length - 1) : 0.5
                probabilities[lo + j] = Float(min(max(low + span * r, 0), 1))
            }
        }
    }
}
