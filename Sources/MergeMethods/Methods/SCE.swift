import Host

/// `sce` (Select, Calculate, Erase): keep the entries where the task vectors disagree most (top `select_topk`
/// fraction by variance across models), weight each model by the mean square of its kept task vector, erase
/// entries whose sign loses the TIES election, and average the rest. Implements mergekit's `sce`
/// (docs/methods.md).
public struct SCEMerge: MergeMethod {
    public init() {}
    public var name: String { "sce" }
    public var prettyName: String { "SCE" }
    public var referenceURL: String? { "https://arxiv.org/abs/2408.07990" }
    public var globalParameters: [ParameterDefinition] {
        [ParameterDefinition("select_topk", default: .number(1.0)), ParameterDefinition("int8_mask", default: .bool(false))]
    }
    public var perModelParameters: [ParameterDefinition] { [] }
    public var baseModel: BaseModelUse { .required }

    public func validate(inputCount: Int, hasBase: Bool) throws {
        guard hasBase else { throw MergeMethodError("sce needs base_model (task vectors are measured from it)") }
        try requireInputCount(name, inputCount, 1...Int.max, what: "at least the base model")
    }

    /// Variance across models of the task vectors at element i (double precision, population variance).
    @inline(__always)
    static func variance(_ xs: UnsafePointer<UnsafePointer<Float>>, models: Int, base: UnsafePointer<Float>, _ i: Int) -> Double {
        let count = Double(Float(models))
        var mean = 0.0
        for k in 0..<models { mean += Double(xs[k][i] - base[i]) }
        mean /= count
        var v = 0.0
        for k in 0..<models { let d = Double(xs[k][i] - base[i]) - mean; v += d * d }
        return v / count
    }

    /// Writes the magnitude keys of the float32 variances of `range` (and, when `inexact` is given, a bit for each
    /// variance float32 rounded); returns how many are non-zero.
    static func varianceKeys(_ xs: UnsafePointer<UnsafePointer<Float>>, models: Int, base: UnsafePointer<Float>, range r: Range<Int>,
                             keys: UnsafeMutablePointer<UInt32>, inexact: UnsafeMutablePointer<UInt64>?) -> Double {
        var c = 0.0
        for i in r {
            let exact = variance(xs, models: models, base: base, i)
            let v = Float(exact)
            keys[i] = FloatKey.magnitude(v)
            if v != 0 { c += 1 }
            if let inexact, exact - Double(v) != 0 { inexact[i >> 6] |= 1 << UInt64(i & 63) }
        }
        return c
    }

    /// Σ δₖ² over `range`, masked.
    static func squareSum(_ xs: UnsafePointer<UnsafePointer<Float>>, _ k: Int, base: UnsafePointer<Float>, mask: UnsafePointer<UInt64>?,
                          range r: Range<Int>) -> Double {
        var s = 0.0
        for i in r { let d = Double(delta(xs, k, base: base, mask: mask, i)); s += d * d }
        return s
    }

    @inline(__always)
    static func delta(_ xs: UnsafePointer<UnsafePointer<Float>>, _ k: Int, base: UnsafePointer<Float>, mask: UnsafePointer<UInt64>?,
                      _ i: Int) -> Float {
        if let mask, (mask[i >> 6] >> UInt64(i & 63)) & 1 == 0 { return 0 }
        return xs[k][i] - base[i]
    }

    /// Normalised weights from the per-model sums of squares (uniform when they are all ~0).
    static func weights(_ sums: [Double], count n: Int) -> [Float] {
        var omegas = sums.map { $0 / Double(n) }
        let total = omegas.reduce(0, +)
        if abs(total) < 1e-6 {
            omegas = omegas.map { _ in 1 / Double(sums.count) }
        } else {
            omegas = omegas.map { $0 / total }
        }
        return omegas.map { Float($0) }
    }

    /// The sign election and weighted average of the surviving deltas over `range`.
    static func erase(_ xs: UnsafePointer<UnsafePointer<Float>>, models: Int, base: UnsafePointer<Float>, mask: UnsafePointer<UInt64>?,
                      weights w: UnsafePointer<Float>, range r: Range<Int>, into output: UnsafeMutablePointer<Float>) {
        for i in r {
            var sum: Float = 0
            for k in 0..<models { sum += delta(xs, k, base: base, mask: mask, i) }
            let positive = sum >= 0
            var merged: Float = 0
            var divisor: Float = 0
            for k in 0..<models {
                let d = delta(xs, k, base: base, mask: mask, i)
                if positive ? d > 0 : d < 0 {
                    merged += d * w[k]
                    divisor += w[k]
                }
            }
            output[i] = base[i] + merged / max(divisor, 1e-6)
        }
    }
}

/// SCE streamed: a blockwise pass over every input writes the variance keys of the whole tensor (one UInt32 each)
/// for the top-k selection, a second accumulates each model's sum of squares per chunk, a third erases and averages.
extension SCEMerge: StreamingMergeMethod {
    public func streamingScratchBytes(count: Int, inputCount: Int) -> Int { 4 * count + 2 * ((count + 63) / 64 * 8) }

    public func mergeStreaming(_ stream: StreamingMergeRequest, inputs reader: any MergeInputReader,
                               output writer: any MergeOutputWriter) throws -> [String] {
        let request = stream.parameterView
        let (baseIndex, others) = try stream.baseAndOthers(name)
        let n = stream.count
        let ws = stream.workspace
        if others.isEmpty || n == 0 { return try stream.copyThrough(baseIndex, inputs: reader, output: writer) }
        let topk = try request.number(self, "select_topk")
        let threads = stream.threads
        let models = others.count
        let chunks = max(1, (n + Chunking.size - 1) / Chunking.size)
        // The models' blocks, then the base's; `body` gets pointers addressed by indices of the whole tensor.
        let blocks = MultiBlockReader(reader, inputs: others + [baseIndex], of: stream)
        func forEachBlock(_ body: (Range<Int>, UnsafePointer<UnsafePointer<Float>>, UnsafePointer<Float>) throws -> Void) throws {
            for blk in stream.blocks {
                try blocks.read(blk)
                try body(blk, UnsafePointer(blocks.pointers), blocks.pointers[models])
            }
        }

        var mask: Bitset? = nil
        if topk < 1 {
            let selected = Bitset(count: n)
            if topk > 0 {
                let keys = ws.buffer(WorkspaceSlot.keys, count: n, of: UInt32.self)
                let inexact = Bitset(count: n)
                let inexactWords = inexact.words.baseAddress!
                var partial = [Double](repeating: 0, count: chunks)
                try partial.withUnsafeMutableBufferPointer { pp in
                    let p = pp.baseAddress!
                    try forEachBlock { blk, x, b in
                        StreamingChunks.forEach(blk, threads: threads) { c, r in
                            p[c] = SCEMerge.varianceKeys(x, models: models, base: b, range: r, keys: keys, inexact: inexactWords)
                        }
                    }
                }
                let nonzero = partial.reduce(0, +)
                let k = Int((Double(Int(nonzero)) * topk).rounded(.down))
                if k > 0 {
                    // Ties at the cut-off whose variances float32 rounded are ordered by the exact variance, read back.
                    let failure = FirstError()
                    let inputOrder = [baseIndex] + others
                    let residual: (Int) -> Double = { i in
                        var values = [Float](repeating: 0, count: models + 1)
                        do {
                            for (slot, input) in inputOrder.enumerated() {
                                try values.withUnsafeMutableBufferPointer { try reader.read(input, range: i..<(i + 1),
                                    into: $0.baseAddress! + slot) }
                            }
                        } catch {
                            failure.record(error)
                            return 0
                        }
                        return values.withUnsafeBufferPointer { vp in
                            let v0 = vp.baseAddress!
                            let xs = (1...models).map { UnsafePointer(v0 + $0 - i) }
                            return xs.withUnsafeBufferPointer { xp in
                                let v = SCEMerge.variance(xp.baseAddress!, models: models, base: v0 - i, i)
                                return v - Double(Float(v))
                            }
                        }
                    }
                    RankSelect.markWindow(UnsafeBufferPointer(start: keys, count: n), window: (n - k)..<n, into: selected,
                                          threads: threads, residual: residual, inexact: UnsafePointer(inexactWords))
                    try failure.check()
                }
                withExtendedLifetime(inexact) {}
            }
            mask = selected
        }
        let words = mask.map { UnsafePointer($0.words.baseAddress!) }

        var sums = [Double](repeating: 0, count: chunks * models)
        try sums.withUnsafeMutableBufferPointer { pp in
            let p = pp.baseAddress!
            try forEachBlock { blk, x, b in
                StreamingChunks.forEach(blk, threads: threads) { c, r in
                    for k in 0..<models { p[k * chunks + c] = SCEMerge.squareSum(x, k, base: b, mask: words, range: r) }
                }
            }
        }
        let weights = SCEMerge.weights((0..<models).map { k in sums[(k * chunks)..<((k + 1) * chunks)].reduce(0, +) }, count: n)

        let out = stream.blockBuffer(WorkspaceSlot.output)
        try weights.withUnsafeBufferPointer { wp in
            try forEachBlock { blk, x, b in
                let o = out - blk.lowerBound
                StreamingChunks.forEach(blk, threads: threads) { _, r in
                    SCEMerge.erase(x, models: models, base: b, mask: words, weights: wp.baseAddress!, range: r, into: o)
                }
                try writer.write(range: blk, values: out)
            }
        }
        withExtendedLifetime(mask) {}
        return []
    }
}
