import Foundation

/// `karcher`: the Riemannian (Karcher) mean of the parents' directions on the unit sphere, equal weights,
/// rescaled by the mean norm. Implements mergekit's `karcher` (docs/methods.md).
public struct KarcherMerge: MergeMethod {
    public init() {}
    public var name: String { "karcher" }
    public var prettyName: String { "Karcher Mean" }
    public var referenceURL: String? { "https://en.wikipedia.org/wiki/Karcher_mean" }
    public var globalParameters: [ParameterDefinition] {
        [ParameterDefinition("max_iter", default: .number(10), minimum: 0), ParameterDefinition("tol", default: .number(1e-5))]
    }
    public var perModelParameters: [ParameterDefinition] { [] }
    public var baseModel: BaseModelUse { .unused }

    public func validate(inputCount: Int, hasBase: Bool) throws {
        try requireInputCount(name, inputCount, 1...Int.max, what: "at least one model")
    }

}

/// Karcher mean streamed: the iterate and the tangent are whole-tensor float32 buffers (two copies); every
/// iteration reads the inputs block by block for the dot products and the tangent, with per-chunk partials added
/// in chunk order.
extension KarcherMerge: StreamingMergeMethod {
    public func streamingScratchBytes(count: Int, inputCount: Int) -> Int { 8 * count }

    public func mergeStreaming(_ stream: StreamingMergeRequest, inputs reader: any MergeInputReader,
                               output writer: any MergeOutputWriter) throws -> [String] {
        let request = stream.parameterView
        let n = stream.count
        let ws = stream.workspace
        let cap = min(n, stream.block)
        let out = stream.blockBuffer(WorkspaceSlot.output)
        let count = stream.inputs.count
        if count == 1 { return try stream.copyThrough(0, inputs: reader, output: writer) }
        let maxIter = try request.number(self, "max_iter")
        let tol = try request.number(self, "tol")
        guard maxIter >= 0 else { throw MergeMethodError.tensor(name, request, "max_iter must be >= 0, got \(maxIter)") }
        let threads = stream.threads
        let chunks = max(1, (n + Chunking.size - 1) / Chunking.size)
        let blocks = MultiBlockReader(reader, inputs: Array(0..<count), of: stream)
        let p = blocks.pointers
        let partial = ws.buffer(WorkspaceSlot.scratch, count: chunks * count, of: Double.self)
        func total(_ j: Int, width: Int) -> Double {
            var s = 0.0
            for c in 0..<chunks { s += partial[c * width + j] }
            return s
        }
        // Squared norm of a whole-tensor buffer, per chunk in chunk order.
        func squaredNorm(_ v: UnsafeMutablePointer<Float>) -> Double {
            StreamingChunks.forEach(0..<n, threads: threads) { c, r in
                var s = 0.0
                for i in r { s += Double(v[i]) * Double(v[i]) }
                partial[c] = s
            }
            return total(0, width: 1)
        }
        for blk in stream.blocks {
            try blocks.read(blk)
            StreamingChunks.forEach(blk, threads: threads) { c, r in
                for k in 0..<count {
                    var s = 0.0
                    for i in r { s += Double(p[k][i]) * Double(p[k][i]) }
                    partial[c * count + k] = s
                }
            }
        }
        let norms = (0..<count).map { total($0, width: count).squareRoot() }
        let alpha = 1.0 / Double(count)
        let valid = (0..<count).filter { norms[$0] > tol }
        guard !valid.isEmpty else {
            out.initialize(repeating: 0, count: cap)
            for blk in stream.blocks { try writer.write(range: blk, values: out) }
            return []
        }
        let a = valid.map { _ in Float(1.0 / Double(valid.count)) }
        let nf = norms.map { Float($0) }
        let iterate = ws.buffer(WorkspaceSlot.keys, count: n, of: Float.self)
        let tangent = ws.buffer(WorkspaceSlot.scratch + 1, count: n, of: Float.self)
        try valid.withUnsafeBufferPointer { vp in
            try a.withUnsafeBufferPointer { ap in
                try nf.withUnsafeBufferPointer { np in
                    let validCount = valid.count
                    for blk in stream.blocks {
                        try blocks.read(blk)
                        StreamingChunks.forEach(blk, threads: threads) { _, r in
                            for i in r {
                                var m: Float = 0
                                for j in 0..<validCount { let k = vp[j]; m += ap[j] * (p[k][i] / np[k]) }
                                iterate[i] = m
                            }
                        }
                    }
                    let startNorm = squaredNorm(iterate).squareRoot()
                    if startNorm < tol {
                        let k = vp[0]
                        for blk in stream.blocks {
                            try blocks.read(blk)
                            StreamingChunks.forEach(blk, threads: threads) { _, r in for i in r { iterate[i] = p[k][i] / np[k] } }
                        }
                    } else {
                        let s = Float(startNorm)
                        StreamingChunks.forEach(0..<n, threads: threads) { _, r in for i in r { iterate[i] /= s } }
                    }

                    for _ in 0..<Int(min(maxIter, 1_000_000)) {
                        for blk in stream.blocks {
                            try blocks.read(blk)
                            StreamingChunks.forEach(blk, threads: threads) { c, r in
                                for j in 0..<validCount {
                                    let k = vp[j]
                                    var s = 0.0
                                    for i in r { s += Double(iterate[i]) * Double(p[k][i] / np[k]) }
                                    partial[c * validCount + j] = s
                                }
                            }
                        }
                        var coefficients: [(k: Int, c: Float, dot: Float)] = []
                        for j in 0..<validCount {
                            let dot = min(max(total(j, width: validCount), -1), 1)
                            let theta = acos(dot)
                            if theta < tol { continue }
                            coefficients.append((vp[j], Float(Double(ap[j]) * theta / sin(theta)), Float(dot)))
                        }
                        try coefficients.withUnsafeBufferPointer { cp in
                            for blk in stream.blocks {
                                try blocks.read(blk)
                                StreamingChunks.forEach(blk, threads: threads) { _, r in
                                    for i in r {
                                        var s: Float = 0
                                        for c in cp { s += c.c * (p[c.k][i] / np[c.k] - c.dot * iterate[i]) }
                                        tangent[i] = s
                                    }
                                }
                            }
                        }
                        let tn = squaredNorm(tangent).squareRoot()
                        if tn < tol { break }
                        let ct = Float(cos(tn)), st = Float(sin(tn) / tn)
                        StreamingChunks.forEach(0..<n, threads: threads) { _, r in
                            for i in r { iterate[i] = ct * iterate[i] + st * tangent[i] }
                        }
                        let un = squaredNorm(iterate).squareRoot()
                        if un > tol {
                            let u = Float(un)
                            StreamingChunks.forEach(0..<n, threads: threads) { _, r in for i in r { iterate[i] /= u } }
                        }
                    }
                }
            }
        }
        var scale = 0.0
        for k in 0..<count { scale += alpha * norms[k] }
        let sf = Float(scale)
        for blk in stream.blocks {
            for i in blk { out[i - blk.lowerBound] = iterate[i] * sf }
            try writer.write(range: blk, values: out)
        }
        return []
    }
}
