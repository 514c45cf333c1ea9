
/// `model_stock`: interpolate between the base and the average of N fine-tunes with t = N·c / (1 + (N−1)·c),
/// c the mean pairwise cosine of the fine-tunes' task vectors (per tensor, or per row with `filter_wise`).
/// Implements mergekit's `model_stock` (docs/methods.md); t is not clamped.
public struct ModelStockMerge: MergeMethod {
    public init() {}
    public var name: String { "model_stock" }
    public var prettyName: String { "Model Stock" }
    public var referenceURL: String? { "https://arxiv.org/abs/2403.19522" }
    public var globalParameters: [ParameterDefinition] { [ParameterDefinition("filter_wise", default: .bool(false))] }
    public var perModelParameters: [ParameterDefinition] { [] }
    public var baseModel: BaseModelUse { .required }

    public func validate(inputCount: Int, hasBase: Bool) throws {
        guard hasBase else { throw MergeMethodError("model_stock needs base_model") }
        try requireInputCount(name, inputCount, 3...Int.max, what: "base_model plus at least two other models")
    }

    /// Adds the Gram matrix entries (upper triangle, p ≤ q) of the offsets over elements `offset + j`, j in `range`.
    static func accumulateGram(_ xs: UnsafePointer<UnsafePointer<Float>>, base: UnsafePointer<Float>, offset: Int, range: Range<Int>,
                               models: Int, into acc: UnsafeMutablePointer<Double>) {
        for j in range {
            let i = offset + j
            let b = base[i]
            for p in 0..<models {
                let op = Double(xs[p][i] - b)
                for q in p..<models { acc[p * models + q] += op * Double(xs[q][i] - b) }
            }
        }
    }

    /// t = N·c / (1 + (N−1)·c) from a Gram matrix, c the mean pairwise cosine; (0, true) when t is undefined.
    static func interpolation(gram: [Double], models: Int) -> (Float, Bool) {
        var cosSum = 0.0
        var pairs = 0
        for p in 0..<models {
            for q in (p + 1)..<models {
                let normProduct = gram[p * models + p].squareRoot() * gram[q * models + q].squareRoot()
                cosSum += min(max(gram[p * models + q] / max(normProduct, 1e-6), -1), 1)
                pairs += 1
            }
        }
        let N = Double(models)
        let c = cosSum / Double(pairs)
        let t = N * c / (1 + (N - 1) * c)
        return t.isFinite ? (Float(t), false) : (0, true)
    }

    /// base·(1 − t) + t·mean(Xᵢ) for elements `range`.
    static func combine(_ xs: UnsafePointer<UnsafePointer<Float>>, models: Int, base: UnsafePointer<Float>, t: UnsafePointer<Float>,
                        length: Int, range: Range<Int>, into output: UnsafeMutablePointer<Float>) {
        let count = Float(models)
        for i in range {
            var sum: Float = 0
            for k in 0..<models { sum += xs[k][i] }
            let ti = t[i / length]
            output[i] = ti * (sum / count) + (1 - ti) * base[i]
        }
    }
}

/// Model Stock streamed: the Gram matrices come from blocks of every input (per chunk for a whole-tensor vector,
/// per row of whole rows with `filter_wise`), then a second blockwise pass writes the interpolation.
extension ModelStockMerge: StreamingMergeMethod {
    public func streamingScratchBytes(count: Int, inputCount: Int) -> Int { 0 }

    public func mergeStreaming(_ stream: StreamingMergeRequest, inputs reader: any MergeInputReader,
                               output writer: any MergeOutputWriter) throws -> [String] {
        let request = stream.parameterView
        let (baseIndex, others) = try stream.baseAndOthers(name)
        let n = stream.count
        if others.isEmpty || n == 0 { return try stream.copyThrough(baseIndex, inputs: reader, output: writer) }
        guard others.count >= 2 else {
            throw MergeMethodError.tensor(name, request, "needs the base plus at least two other models, got \(others.count) other")
        }
        let filterWise = try request.flag(self, "filter_wise")
        let length = filterWise && stream.shape.count >= 2 ? max(1, stream.shape[stream.shape.count - 1]) : n
        guard n % length == 0 else {
            throw MergeMethodError.tensor(name, request, "shape \(stream.shape) does not match \(n) elements")
        }
        let rows = n / length
        let models = others.count
        let threads = stream.threads
        let width = models * models
        // Row groups for filter_wise (whole rows per read), chunk-aligned blocks for one whole-tensor vector.
        let ranges: [Range<Int>]
        let cap: Int
        if rows > 1 {
            let rowsPerBlock = max(1, stream.block / length)
            ranges = stride(from: 0, to: rows, by: rowsPerBlock).map { ($0 * length)..<(min(rows, $0 + rowsPerBlock) * length) }
            cap = min(n, max(stream.block, length))
        } else {
            ranges = stream.blocks
            cap = min(n, stream.block)
        }
        // The fine-tunes' blocks, then the base's.
        let blocks = MultiBlockReader(reader, inputs: others + [baseIndex], of: stream, capacity: cap)
        let xs = UnsafePointer(blocks.pointers)
        func readBlock(_ r: Range<Int>) throws -> UnsafePointer<Float> {
            try blocks.read(r)
            return blocks.pointers[models]
        }

        var ts = [Float](repeating: 0, count: rows)
        var degenerate = 0
        if rows > 1 {
            for r in ranges {
                let b = try readBlock(r)
                for row in (r.lowerBound / length)..<(r.upperBound / length) {
                    let lo = row * length
                    let gram = Chunking(length, threads: threads).sums(width: width) { c, acc in
                        ModelStockMerge.accumulateGram(xs, base: b, offset: lo, range: c, models: models, into: acc.baseAddress!)
                    }
                    let (t, bad) = ModelStockMerge.interpolation(gram: gram, models: models)
                    ts[row] = t
                    if bad { degenerate += 1 }
                }
            }
        } else {
            let chunks = max(1, (n + Chunking.size - 1) / Chunking.size)
            var partial = [Double](repeating: 0, count: chunks * width)
            try partial.withUnsafeMutableBufferPointer { pp in
                let p = pp.baseAddress!
                for r in ranges {
                    let b = try readBlock(r)
                    StreamingChunks.forEach(r, threads: threads) { c, range in
                        ModelStockMerge.accumulateGram(xs, base: b, offset: 0, range: range, models: models,
                                                       into: p + c * width)
                    }
                }
            }
            var gram = [Double](repeating: 0, count: width)
            for c in 0..<chunks {
                for k in 0..<width { gram[k] += partial[c * width + k] }
            }
            let (t, bad) = ModelStockMerge.interpolation(gram: gram, models: models)
            ts[0] = t
            if bad { degenerate += 1 }
        }
        var warnings: [String] = []
        if degenerate > 0 {
            warnings.append("model_stock: tensor '\(stream.tensorName)': the fine-tunes' mean cosine is -1/(N-1) in \(degenerate) of "
                + "\(rows) \(rows == 1 ? "tensor" : "rows"), so t = N·c/(1+(N-1)·c) is undefined; kept the base there")
        }
        let out = stream.blockBuffer(WorkspaceSlot.output)
        try ts.withUnsafeBufferPointer { tp in
            for blk in stream.blocks {
                let b = try readBlock(blk)
                let o = out - blk.lowerBound
                StreamingChunks.forEach(blk, threads: threads) { _, range in
                    ModelStockMerge.combine(xs, models: models, base: b, t: tp.baseAddress!, length: length,
                                            range: range, into: o)
                }
                try writer.write(range: blk, values: out)
            }
        }
        return warnings
    }
}
