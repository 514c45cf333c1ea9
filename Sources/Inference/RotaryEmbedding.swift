import Architectures
import Foundation

/// Rotary position embedding (Su et al., "RoFormer", 2021) with the Hugging Face rotate-half pairing:
/// dimension i is rotated together with dimension i + headDim/2 by angle position · invFreq[i].
public struct RotaryEmbedding: Sendable {
    /// The inverse frequencies actually used, after any scaling ([rotaryDimensions / 2]); LongRoPE's short table.
    public let inverseFrequencies: [Float]
    /// LongRoPE: the table of a forward call whose sequence (last position + 1) is longer than `longAfter`.
    public var longInverseFrequencies: [Float]? = nil
    public var longAfter = Int.max
    /// cos and sin are multiplied by this (LongRoPE's attention factor; 1 otherwise).
    public var attentionScaling: Float = 1
    /// The leading dimensions of each head that are rotated (rotate-half within them); the rest pass through.
    public var rotaryDimensions: Int

    public init(config: ModelConfig) {
        let rotary = config.rotaryDimensions > 0 ? config.rotaryDimensions : config.headDim
        self.init(theta: config.ropeTheta, rotaryDimensions: rotary, scaling: config.ropeScaling)
    }

    public init(theta: Double, rotaryDimensions: Int, scaling: ModelConfig.RopeScaling) {
        self.rotaryDimensions = rotaryDimensions
        inverseFrequencies = Self.inverseFrequencies(theta: theta, headDim: rotaryDimensions, scaling: scaling)
        if case let .longRope(_, long, original, attention) = scaling {
            longInverseFrequencies = Self.inverseFrequencies(theta: theta, headDim: rotaryDimensions, scaling: .none).enumerated()
                .map { i, f in f / Float(long[i]) }
            longAfter = original
            attentionScaling = Float(attention)
        }
    }

    /// invFreq[i] = theta^(-2i/d), then rescaled: `linear` divides by the factor; `llama3` keeps
    /// short wavelengths, divides long ones by the factor and interpolates in between
    /// (transformers `_compute_llama3_parameters`).
    public static func inverseFrequencies(theta: Double, headDim: Int, scaling: ModelConfig.RopeScaling) -> [Float] {
        let half = headDim / 2
        // Computed in float32 like transformers: base ** (arange(0, d, 2).float() / d).
        let base: [Float] = (0..<half).map { i in
            let exponent = Float(2 * i) / Float(headDim)
            return 1 / Float(pow(theta, Double(exponent)))
        }
        switch scaling {
        case .none:
            return base
        case let .frequencyDivisors(divisors):
            return base.enumerated().map { i, f in i < divisors.count && divisors[i] > 0 ? f / divisors[i] : f }
        case let .linear(factor):
            return base.map { $0 / Float(factor) }
        case let .longRope(short, _, _, _):
            return base.enumerated().map { i, f in f / Float(short[i]) }
        case let .llama3(factor, low, high, original):
            let lowWavelength = Double(original) / low
            let highWavelength = Double(original) / high
            return base.map { f in
                let fd = Double(f)
                let wavelength = 2 * Double.pi / fd
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return Float(fd / factor) }
                let s = (Double(original) / wavelength - low) / (high - low)
                return Float((1 - s) * fd / factor + s * fd)
            }
        }
    }

    /// Rotates `rows` vectors in place. Row r holds `heads` heads of `headDim` values at stride
    /// `rowStride` and sits at absolute position `firstPosition + r`. `sequenceEnd` (last position of the call + 1)
    /// picks LongRoPE's table, as transformers does per forward call.
    func apply(_ data: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, heads: Int, headDim: Int, firstPosition: Int,
               sequenceEnd: Int = 0, threads: Int = 1) {
        let half = rotaryDimensions / 2
        let inverseFrequencies = sequenceEnd > longAfter ? (longInverseFrequencies ?? self.inverseFrequencies) : self.inverseFrequencies
        let scaling = attentionScaling
        Kernels.split(rows, cost: rows * heads * headDim * 4, threads: threads) { range in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * half) { table in
            let cosTable = table.baseAddress!, sinTable = table.baseAddress! + half
            for r in range {
                let position = Float(firstPosition + r)
                for i in 0..<half {
                    // float32 angle, as transformers forms position · invFreq in float32.
                    let angle = position * inverseFrequencies[i]
                    cosTable[i] = cos(angle) * scaling
                    sinTable[i] = sin(angle) * scaling
                }
                let row = data + r * rowStride
                for h in 0..<heads {
                    let x = row + h * headDim
                    for i in 0..<half {
                        let a = x[i], b = x[i + half]
                        x[i] = a * cosTable[i] - b * sinTable[i]
                        x[i + half] = b * cosTable[i] + a * sinTable[i]
                    }
                }
            }
        }
        }
    }
}
