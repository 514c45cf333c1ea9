import Foundation
import Tensors

/// Reads one block of several inputs into workspace slots and hands out pointers addressed by indices of the
/// whole tensor (`pointer[i]` for i in the block), for methods that combine every input at once.
struct MultiBlockReader {
    let reader: any MergeInputReader
    let inputs: [Int]
    let buffers: [UnsafeMutablePointer<Float>]
    /// Pointers of the current block, in `inputs` order.
    let pointers: UnsafeMutablePointer<UnsafePointer<Float>>

    init(_ reader: any MergeInputReader, inputs: [Int], workspace: MergeWorkspace, capacity: Int, firstSlot: Int) {
        self.reader = reader
        self.inputs = inputs
        buffers = inputs.indices.map { workspace.buffer(firstSlot + $0, count: capacity, of: Float.self) }
        pointers = workspace.buffer(firstSlot + inputs.count, count: inputs.count, of: UnsafePointer<Float>.self)
    }

    func read(_ blk: Range<Int>) throws {
        for (k, input) in inputs.enumerated() {
            try reader.read(input, range: blk, into: buffers[k])
            pointers[k] = UnsafePointer(buffers[k] - blk.lowerBound)
        }
    }
}

/// Multi-SLERP streamed: the weighted mean of unit vectors is the one whole-tensor float32 buffer; norms, the mean's
/// norm, the projections and the tangent norm come from blockwise passes over every input with per-chunk partials
/// (added in chunk order, as the whole-tensor kernel adds them), and a last pass writes the output.
extension MultiSlerpMerge: StreamingMergeMethod {
    public func streamingScratchBytes(count: Int, inputCount: Int) -> Int { 4 * count }

    public func mergeStreaming(_ stream: StreamingMergeRequest, inputs reader: any MergeInputReader,
                               output writer: any MergeOutputWriter) throws -> [String] {
        let request = stream.parameterView
        let n = stream.count
        let ws = stream.workspace
        let cap = min(n, stream.block)
        let others = stream.inputs.indices.filter { $0 != stream.baseIndex }
        let out = ws.buffer(WorkspaceSlot.output, count: cap, of: Float.self)
        if others.count <= 1 {
            let source = others.first ?? 0
            for blk in stream.blocks {
                try reader.read(source, range: blk, into: out)
                try writer.write(range: blk, values: out)
            }
            return []
        }
        let normalizeWeights = try request.flag(name, "normalize_weights", default: true)
        let eps = try request.number(name, "eps", default: 1e-8)
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
        let blocks = MultiBlockReader(reader, inputs: others + (stream.baseIndex.map { [$0] } ?? []), workspace: ws,
                                      capacity: cap, firstSlot: WorkspaceSlot.inputs)
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
                    "the weighted unit vectors cancel out (antipodal inputs with balancing weights); multislerp cannot pick a direction for \(models) models; change the weights")
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
        let out = ws.buffer(WorkspaceSlot.output, count: cap, of: Float.self)
        let count = stream.inputs.count
        if count == 1 {
            for blk in stream.blocks {
                try reader.read(0, range: blk, into: out)
                try writer.write(range: blk, values: out)
            }
            return []
        }
        let maxIter = try request.number(name, "max_iter", default: 10)
        let tol = try request.number(name, "tol", default: 1e-5)
        guard maxIter >= 0 else { throw MergeMethodError.tensor(name, request, "max_iter must be >= 0, got \(maxIter)") }
        let threads = stream.threads
        let chunks = max(1, (n + Chunking.size - 1) / Chunking.size)
        let blocks = MultiBlockReader(reader, inputs: Array(0..<count), workspace: ws, capacity: cap, firstSlot: WorkspaceSlot.inputs)
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
