import Foundation

/// `multislerp`: barycentric interpolation of any number of models on the hypersphere, optionally of task vectors
/// relative to a base. Implements mergekit's `multislerp` (docs/methods.md).
///
/// Note: the tangent-space step is kept as mergekit writes it, but the weighted tangent vectors sum to zero
/// analytically (the mean direction is itself the weighted sum), so the result is the normalised weighted mean
/// direction scaled by the weighted mean norm, up to rounding.
public struct MultiSlerpMerge: MergeMethod {
    public init() {}
    public var name: String { "multislerp" }
    public var prettyName: String { "Multi-SLERP" }
    public var referenceURL: String? { "https://goddard.blog/posts/multislerp-wow-what-a-cool-idea" }
    public var globalParameters: [ParameterDefinition] {
        [ParameterDefinition("normalize_weights", default: .bool(true)),
         ParameterDefinition("eps", default: .number(1e-8))]
    }
    public var perModelParameters: [ParameterDefinition] { [ParameterDefinition("weight", required: true)] }
    public var baseModel: BaseModelUse { .optional }

    public func validate(inputCount: Int, hasBase: Bool) throws {
        try requireInputCount(name, inputCount - (hasBase ? 1 : 0), 1...Int.max, what: "at least one model besides the base")
    }

}

/// Multi-SLERP streamed: the weighted mean of unit vectors is the one whole-tensor float32 buffer; norms, the mean's
/// norm, the projections and the tangent norm come from blockwise passes over every input with per-chunk partials
/// (added in chunk order), and a last pass writes the output.
extension MultiSlerpMerge: StreamingMergeMethod {
    public func streamingScratchBytes(count: Int, inputCount: Int) -> Int { 4 * count }

    public func mergeStreaming(_ stream: StreamingMergeRequest, inputs reader: any MergeInputReader,
                               output writer: any MergeOutputWriter) throws -> [String] {
        let request = stream.parameterView
        let n = stream.count
        let ws = stream.workspace
        let others = stream.inputs.indices.filter { $0 != stream.baseIndex }
        let out = stream.blockBuffer(WorkspaceSlot.output)
        if others.count <= 1 { return try stream.copyThrough(others.first ?? 0, inputs: reader, output: writer) }
        let normalizeWeights = try request.flag(self, "normalize_weights")
        let eps = try request.number(self, "eps")
        var weights = try others.map { Float(try request.modelNumber(name, request.inputs[$0], "weight")) }
        if normalizeWeights {
            var total: Float = 0
            for w in weights { total += w }
            guard abs(total) > 1e-12 else {
                throw MergeMethodError.tensor(name, request, "the weights sum to zero, so they cannot be normalised")
            }
            weights = weights.map { $0 / total }
        }
        let models = others.count
        let hasBase = stream.baseIndex != nil
        // Inputs read per block: the models, then the base when there is one.
        let blocks = MultiBlockReader(reader, inputs: others + (stream.baseIndex.map { [$0] } ?? []), of: stream)
        let p = blocks.pointers
        @inline(__always) func x(_ k: Int, _ i: Int) -> Float {
            hasBase ? p[k][i] - p[models][i] : p[k][i]
        }
        let threads = stream.threads
        let chunks = max(1, (n + Chunking.size - 1) / Chunking.size)
        let partial = ws.buffer(WorkspaceSlot.scratch, count: chunks * (models + 1), of: Double.self)
        func total(_ j: Int, width: Int) -> Double {
            var s = 0.0
            for c in 0..<chunks { s += partial[c * width + j] }
            return s
        }
        // Pass 1: norms of the task vectors.
        for blk in stream.blocks {
            try blocks.read(blk)
            StreamingChunks.forEach(blk, threads: threads) { c, r in
                for k in 0..<models {
                    var s = 0.0
                    for i in r { let v = Double(x(k, i)); s += v * v }
                    partial[c * models + k] = s
                }
            }
        }
        let norms = (0..<models).map { total($0, width: models).squareRoot() }
        let inv = norms.map { Float($0) + Float(eps) }
        // Pass 2: the weighted mean of unit vectors (whole tensor) and its squared norm.
        let mean = ws.buffer(WorkspaceSlot.keys, count: n, of: Float.self)
        try inv.withUnsafeBufferPointer { ip in
            try weights.withUnsafeBufferPointer { wp in
                for blk in stream.blocks {
                    try blocks.read(blk)
                    StreamingChunks.forEach(blk, threads: threads) { c, r in
                        for i in r {
                            var m: Float = 0
                            for k in 0..<models { m += (x(k, i) / ip[k]) * wp[k] }
                            mean[i] = m
                        }
                        var s = 0.0
                        for i in r { s += Double(mean[i]) * Double(mean[i]) }
                        partial[c] = s
                    }
                }
            }
        }
        let meanNorm = total(0, width: 1).squareRoot()
        if meanNorm < eps {
            guard models == 2 else {
                throw MergeMethodError.tensor(name, request,
                    "the weighted unit vectors cancel out (antipodal inputs with balancing weights); multislerp cannot pick a direction "
                        + "for \(models) models; change the weights")
            }
            let w0 = weights[0], w1 = weights[1]
            for blk in stream.blocks {
                try blocks.read(blk)
                let o = out - blk.lowerBound
                StreamingChunks.forEach(blk, threads: threads) { _, r in
                    for i in r {
                        let v = x(0, i) * w0 + x(1, i) * w1
                        o[i] = hasBase ? p[models][i] + v : v
                    }
                }
                try writer.write(range: blk, values: out)
            }
            return []
        }
        let mn = Float(meanNorm)
        StreamingChunks.forEach(0..<n, threads: threads) { _, r in for i in r { mean[i] /= mn } }
        // Pass 3: projection of each unit vector on the mean direction.
        try inv.withUnsafeBufferPointer { ip in
            for blk in stream.blocks {
                try blocks.read(blk)
                StreamingChunks.forEach(blk, threads: threads) { c, r in
                    for k in 0..<models {
                        var s = 0.0
                        for i in r { s += Double(x(k, i) / ip[k]) * Double(mean[i]) }
                        partial[c * models + k] = s
                    }
                }
            }
        }
        let dots = (0..<models).map { Float(total($0, width: models)) }
        // Pass 4: the tangent's norm; pass 5: the output.
        let tangentNorm: Double = try inv.withUnsafeBufferPointer { ip in
            try weights.withUnsafeBufferPointer { wp in
                try dots.withUnsafeBufferPointer { dp in
                    for blk in stream.blocks {
                        try blocks.read(blk)
                        StreamingChunks.forEach(blk, threads: threads) { c, r in
                            var s = 0.0
                            for i in r {
                                var t: Float = 0
                                for k in 0..<models { t += (x(k, i) / ip[k] - dp[k] * mean[i]) * wp[k] }
                                let v = Double(t)
                                s += v * v
                            }
                            partial[c] = s
                        }
                    }
                    return total(0, width: 1).squareRoot() + eps
                }
            }
        }
        let cosR = Float(cos(tangentNorm)), sinROverR = Float(sin(tangentNorm) / tangentNorm)
        var scale: Float = 0
        for k in 0..<models { scale += Float(norms[k]) * weights[k] }
        try inv.withUnsafeBufferPointer { ip in
            try weights.withUnsafeBufferPointer { wp in
                try dots.withUnsafeBufferPointer { dp in
                    for blk in stream.blocks {
                        try blocks.read(blk)
                        let o = out - blk.lowerBound
                        StreamingChunks.forEach(blk, threads: threads) { _, r in
                            for i in r {
                                var t: Float = 0
                                for k in 0..<models { t += (x(k, i) / ip[k] - dp[k] * mean[i]) * wp[k] }
                                let v = (mean[i] * cosR + t * sinROverR) * scale
                                o[i] = hasBase ? p[models][i] + v : v
                            }
                        }
                        try writer.write(range: blk, values: out)
                    }
                }
            }
        }
        return []
    }
}
