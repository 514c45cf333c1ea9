/// SplitMix64: a small, fast, well-mixed 64-bit generator. Crucible seeds one per tensor from
/// (recipe seed, tensor name), so random merges never depend on thread order or on which other
/// tensors exist.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for one named stream (a tensor, a model within a tensor…), independent of all others.
    public init(seed: UInt64, stream: String) {
        state = seed ^ stableHash(stream) &* 0x9E37_79B9_7F4A_7C15
        _ = next()
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The stream of one parent model of one tensor: what random merge methods (DARE, DELLA masks) draw from. This key
    /// is the reproducibility contract: the same seed, tensor name and model index give the same draws on any
    /// machine, thread count or block size.
    public init(seed: UInt64, tensor: String, model: Int) {
        self.init(seed: seed, stream: "\(tensor)#\(model)")
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    @inline(__always)
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    @inline(__always)
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal (Box–Muller).
    public mutating func nextGaussian() -> Float {
        var u1 = nextUnitDouble()
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = nextUnitDouble()
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }
}

/// FNV-1a 64-bit hash of a string's UTF-8 bytes: stable across runs and platforms (unlike `Hasher`).
public func stableHash(_ s: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01B3
    }
    return h
}

import Foundation
@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
