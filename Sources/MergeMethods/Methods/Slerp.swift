import Foundation

/// `slerp`: spherical interpolation from the base (t = 0) to the other model (t = 1), the whole tensor
/// flattened into one vector, float32 arithmetic with double-precision norms and dot product.
/// Implements mergekit's `slerp` (docs/methods.md): nearly (anti-)colinear inputs (|cos| > 0.9995)
/// fall back to linear interpolation; the un-normalised inputs are combined, so magnitudes carry over.
public struct SlerpMerge: MergeMethod {
    public init() {}
    public var name: String { "slerp" }
    public var prettyName: String { "SLERP" }
    public var referenceURL: String? { "https://en.wikipedia.org/wiki/Slerp" }
    public var globalParameters: [ParameterDefinition] { [ParameterDefinition("t", required: true)] }
    public var perModelParameters: [ParameterDefinition] { [] }
    public var baseModel: BaseModelUse { .required }
    public var baseIsEndpoint: Bool { true }

    /// mergekit's colinearity threshold on the normalised dot product.
    public static let colinearThreshold = 0.9995

    public func validate(inputCount: Int, hasBase: Bool) throws {
        guard hasBase else { throw MergeMethodError("slerp needs base_model (the t = 0 end)") }
        try requireInputCount(name, inputCount, 2...2, what: "exactly two models: base_model and one other")
    }

}

/// SLERP streamed: one blockwise pass accumulates ‖v₀‖², ‖v₁‖² and v₀·v₁ per `Chunking` chunk (added in chunk
/// order, so the sums do not depend on block size or threads), a second pass writes c₀v₀ + c₁v₁ block by block.
extension SlerpMerge: StreamingMergeMethod {
    public func streamingScratchBytes(count: Int, inputCount: Int) -> Int { 0 }

    public func mergeStreaming(_ stream: StreamingMergeRequest, inputs reader: any MergeInputReader,
                               output writer: any MergeOutputWriter) throws -> [String] {
        let request = stream.parameterView
        let n = stream.count
        let a = stream.blockBuffer(WorkspaceSlot.inputs)
        let blocks = stream.blocks
        if stream.inputs.count == 1 { return try stream.copyThrough(0, inputs: reader, output: writer) }
        _ = try request.requireBase(name)
        guard stream.inputs.count == 2 else {
            throw MergeMethodError.tensor(name, request, "needs exactly two inputs (base and one other), got \(stream.inputs.count)")
        }
        let t = try request.requireNumber(name, "t")
        let i0 = stream.baseIndex!, i1 = 1 - i0
        let b = stream.blockBuffer(WorkspaceSlot.inputs + 1)
        let threads = stream.threads
        let chunks = max(1, (n + Chunking.size - 1) / Chunking.size)
        var partial = [Double](repeating: 0, count: chunks * 3)
        try partial.withUnsafeMutableBufferPointer { pp in
            let p = pp.baseAddress!
            for blk in blocks {
                try reader.read(i0, range: blk, into: a)
                try reader.read(i1, range: blk, into: b)
                let v0 = UnsafePointer(a - blk.lowerBound), v1 = UnsafePointer(b - blk.lowerBound)
                StreamingChunks.forEach(blk, threads: threads) { c, r in
                    var s00 = 0.0, s11 = 0.0, s01 = 0.0
                    for i in r {
                        let x = Double(v0[i]), y = Double(v1[i])
                        s00 += x * x
                        s11 += y * y
                        s01 += x * y
                    }
                    p[c] = s00
                    p[chunks + c] = s11
                    p[2 * chunks + c] = s01
                }
            }
        }
        // Same order as `Chunking.sum`: chunk partials added left to right from zero.
        let n0 = partial[0..<chunks].reduce(0, +).squareRoot()
        let n1 = partial[chunks..<(2 * chunks)].reduce(0, +).squareRoot()
        let d0 = n0 > 1e-8 ? n0 : 1, d1 = n1 > 1e-8 ? n1 : 1
        let dot = partial[(2 * chunks)...].reduce(0, +) / (d0 * d1)
        let (c0, c1) = SlerpMerge.coefficients(dot: dot, t: t)
        let o = stream.blockBuffer(WorkspaceSlot.output)
        for blk in blocks {
            try reader.read(i0, range: blk, into: a)
            try reader.read(i1, range: blk, into: b)
            let s = blk.lowerBound
            let v0 = UnsafePointer(a - s), v1 = UnsafePointer(b - s), ov = o - s
            StreamingChunks.forEach(blk, threads: threads) { _, r in
                for i in r { ov[i] = c0 * v0[i] + c1 * v1[i] }
            }
            try writer.write(range: blk, values: o)
        }
        return []
    }

    /// The interpolation coefficients for a normalised dot product (linear when nearly colinear).
    static func coefficients(dot: Double, t: Double) -> (Float, Float) {
        if abs(dot) > SlerpMerge.colinearThreshold { return (Float(1 - t), Float(t)) }
        let theta = acos(dot)
        let s = sin(theta)
        return (Float(sin(theta - theta * t) / s), Float(sin(theta * t) / s))
    }
}
