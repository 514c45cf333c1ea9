import Architectures
import Foundation

/// Rotary position embedding (Su et al., "RoFormer", 2021) with the Hugging Face rotate-half pairing:
/// dimension i is rotated together with dimension i + headDim/2 by angle position · invFreq[i].
public struct RotaryEmbedding: Sendable {
    /// The inverse frequencies actually used, after any scaling ([headDim / 2]).
    public let inverseFrequencies: [Float]

    public init(config: ModelConfig) {
        inverseFrequencies = Self.inverseFrequencies(theta: config.ropeTheta, headDim: config.headDim, scaling: config.ropeScaling)
    }

    public init(inverseFrequencies: [Float]) {
        self.inverseFrequencies = inverseFrequencies
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
    /// `rowStride` and sits at absolute position `firstPosition + r`.
    func apply(_ data: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, heads: Int, headDim: Int, firstPosition: Int,
               threads: Int = 1) {
        let half = headDim / 2
        Kernels.split(rows, cost: rows * heads * headDim * 4, threads: threads) { range in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * half) { table in
            let cosTable = table.baseAddress!, sinTable = table.baseAddress! + half
            for r in range {
                let position = Float(firstPosition + r)
                for i in 0..<half {
                    // float32 angle, as transformers forms position · invFreq in float32.
                    let angle = position * inverseFrequencies[i]
                    cosTable[i] = cos(angle)
                    sinTable[i] = sin(angle)
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
