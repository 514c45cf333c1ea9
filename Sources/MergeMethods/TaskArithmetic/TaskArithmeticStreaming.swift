import Foundation
import Host
import Numerics

/// The task-arithmetic family, streamed: bit-identical to `merge(_:into:)`, but each input is only ever held one block
/// at a time. Per sparsified parent there is one pass over (base, parent) blocks that builds what the mask needs
/// (magnitude keys of the whole tensor in one reused UInt32 buffer, DELLA keep probabilities in the same buffer, or a
/// DARE mask directly) plus its L1 sums; the mask itself is one bit per element. A last pass reads the base and every
/// kept parent block by block and combines them. Reductions keep one partial per `Chunking` chunk and blocks are
/// whole chunks, so sums are added in exactly the whole-tensor order.
extension TaskArithmeticFamilyMerge: StreamingMergeMethod {
    public func streamingScratchBytes(count n: Int, inputCount: Int) -> Int {
        let bits = (n + 63) / 64 * 8
        var bytes = bits * max(0, inputCount - 1)
        switch sparsifier {
        case .none, .random: break
        case .magnitude, .magnitudeOutliers: bytes += 4 * n + bits
        case .dellaMagprune: bytes += 4 * n
        }
        return bytes
    }

    public func mergeStreaming(_ stream: StreamingMergeRequest, inputs reader: any MergeInputReader,
                               output writer: any MergeOutputWriter) throws -> [String] {
        let request = stream.parameterView
        let (baseIndex, others) = try stream.baseAndOthers(name)
        let n = stream.count
        let blocks = stream.blocks
        let threads = stream.threads
        let baseBlock = stream.blockBuffer(WorkspaceSlot.inputs)
        if others.isEmpty || n == 0 { return try stream.copyThrough(baseIndex, inputs: reader, output: writer) }
        let normalize = try request.flag(self, "normalize")
        let rescale = try request.flag(self, "rescale")
        let lambda = try request.number(self, "lambda")
        var weights: [Float] = []
        var settings: [SparsifySettings] = []
        for k in others {
            let input = request.inputs[k]
            weights.append(Float(try request.modelNumber(self, input, "weight")))
            settings.append(SparsifySettings(
                density: try request.modelNumber(self, input, "density"),
                gamma: (sparsifier == .magnitudeOutliers ? try request.modelNumber(self, input, "gamma") : 0),
                epsilon: (sparsifier == .dellaMagprune ? try request.modelNumber(self, input, "epsilon") : 0),
                rescale: rescale))
        }

        var pass = StreamingSparsifier(method: name, request: request, stream: stream, reader: reader, baseIndex: baseIndex)
        var deltas: [(input: Int, delta: StreamedDelta)] = []
        for (j, k) in others.enumerated() {
            deltas.append((k, try pass.sparsify(k, sparsifier: sparsifier, settings: settings[j])))
        }

        let combineSettings = CombineSettings(consensus: consensus == .sum, normalize: normalize, lambda: Float(lambda), weights: weights)
        let kept = deltas.enumerated().filter { !$0.element.delta.dropped }
        let outBlock = stream.blockBuffer(WorkspaceSlot.output)
        let termBlocks = kept.indices.map { t in stream.blockBuffer(WorkspaceSlot.inputs + 1 + t) }
        var terms = [Term](repeating: Term(x: UnsafePointer(baseBlock), mask: nil, scale: 1, weight: 0), count: kept.count)
        for blk in blocks {
            let s = blk.lowerBound
            try reader.read(baseIndex, range: blk, into: baseBlock)
            for (t, entry) in kept.enumerated() {
                try reader.read(entry.element.input, range: blk, into: termBlocks[t])
                let d = entry.element.delta
                terms[t] = Term(x: UnsafePointer(termBlocks[t] - s), mask: d.mask.map { UnsafePointer($0.words.baseAddress!) },
                                scale: d.scale, weight: weights[entry.offset])
            }
            let bv = UnsafePointer(baseBlock - s), ov = outBlock - s
            terms.withUnsafeBufferPointer { tp in
                StreamingChunks.forEach(blk, threads: threads) { _, r in
                    TaskArithmeticFamilyMerge.combine(tp, base: bv, into: ov, range: r, settings: combineSettings)
                }
            }
            try writer.write(range: blk, values: outBlock)
        }
        withExtendedLifetime(deltas) {}
        return pass.warnings
    }
}

/// One parent's sparsified delta for the streamed combine.
struct StreamedDelta {
    let mask: Bitset?
    let scale: Float
    let dropped: Bool
}

/// Sparsification of one parent's task vector δ = X − B, from blocks of base and parent: the mask (one bit per
/// element) and the L1 rescale factor, with the policy (density checks, selection windows, warnings) in one place.
struct StreamingSparsifier {
    let method: String
    let request: MergeRequest
    let stream: StreamingMergeRequest
    let reader: any MergeInputReader
    let baseIndex: Int
    var warnings: [String] = []

    init(method: String, request: MergeRequest, stream: StreamingMergeRequest, reader: any MergeInputReader, baseIndex: Int) {
        self.method = method
        self.request = request
        self.stream = stream
        self.reader = reader
        self.baseIndex = baseIndex
    }

    var n: Int { stream.count }
    var threads: Int { stream.threads }
    var chunkCount: Int { max(1, (n + Chunking.size - 1) / Chunking.size) }

    /// Reads base and parent `k` block by block (`capacity` elements per buffer) and calls `body(block, x, base)`
    /// with pointers addressed by indices of the whole tensor.
    func forEachBlock(_ k: Int, ranges: [Range<Int>], capacity: Int,
                      _ body: (Range<Int>, UnsafePointer<Float>, UnsafePointer<Float>) throws -> Void) throws {
        let ws = stream.workspace
        let b = ws.buffer(WorkspaceSlot.inputs, count: capacity, of: Float.self)
        let x = ws.buffer(WorkspaceSlot.inputs + 1, count: capacity, of: Float.self)
        for r in ranges {
            try reader.read(baseIndex, range: r, into: b)
            try reader.read(k, range: r, into: x)
            try body(r, UnsafePointer(x - r.lowerBound), UnsafePointer(b - r.lowerBound))
        }
    }

    /// Σ over chunks, in chunk order, of `body(chunkRange, x, base)` over every block.
    func chunkSums(_ k: Int, width: Int, _ body: (Range<Int>, UnsafePointer<Float>, UnsafePointer<Float>,
                                                  UnsafeMutablePointer<Double>) -> Void) throws -> [Double] {
        var partial = [Double](repeating: 0, count: chunkCount * width)
        try partial.withUnsafeMutableBufferPointer { p in
            let pp = p.baseAddress!
            try forEachBlock(k, ranges: stream.blocks, capacity: min(n, stream.block)) { blk, x, b in
                StreamingChunks.forEach(blk, threads: threads) { c, r in body(r, x, b, pp + c * width) }
            }
        }
        var total = [Double](repeating: 0, count: width)
        for c in 0..<chunkCount {
            for j in 0..<width { total[j] += partial[c * width + j] }
        }
        return total
    }

    mutating func sparsify(_ k: Int, sparsifier: Sparsifier, settings s: SparsifySettings) throws -> StreamedDelta {
        let input = request.inputs[k]
        let keepAll = StreamedDelta(mask: nil, scale: 1, dropped: false)
        let dropAll = StreamedDelta(mask: nil, scale: 1, dropped: true)
        if sparsifier == .none || s.density >= 1 || n == 0 { return keepAll }
        if s.density < 0 {
            throw MergeMethodError.tensor(method, request, "model \(input.modelName): density must be >= 0, got \(s.density)")
        }
        switch sparsifier {
        case .none:
            return keepAll

        case .magnitude:
            if s.density == 0 { return dropAll }
            var count = Int((s.density * Double(n)).rounded(.down))
            if count == 0 {
                count = 1
                warnings.append("\(method): tensor '\(request.tensorName)': density \(s.density) of model \(input.modelName) keeps "
                    + "⌊density·\(n)⌋ = 0 entries; keeping the single largest instead")
            }
            return try selectByMagnitude(k, window: (n - count)..<n, rescale: s.rescale)

        case .magnitudeOutliers:
            let keep = Int((s.density * Double(n)).rounded(.down))
            var top = Int((min(max(0, s.gamma), 1) * Double(n)).rounded(.down))
            var bottom = n - keep - top
            if bottom < 0 {
                top += bottom
                bottom = 0
            }
            if top == 0 && keep > 0 && s.gamma > 0 {
                warnings.append("\(method): tensor '\(request.tensorName)': gamma \(s.gamma) drops no outliers from its \(n) entries (top "
                    + "count rounds to 0); keeping the \(keep) largest of model \(input.modelName) (older mergekit dropped the whole "
                        + "delta here)")
            }
            return try selectByMagnitude(k, window: bottom..<(n - top), rescale: s.rescale)

        case .random:
            let mask = Bitset(count: n)
            let start = SplitMix64(seed: request.seed, tensor: request.tensorName, model: input.modelIndex).state
            let threshold = SparsifyKernels.threshold32(s.density)
            let words = mask.words.baseAddress!
            let sums = try chunkSums(k, width: 2) { r, x, b, acc in
                let l1 = SparsifyKernels.bernoulli(words: words, x: x, base: b, range: r, start: start, threshold32: threshold,
                                                   perElement: nil)
                acc[0] = l1.before
                acc[1] = l1.after
            }
            let scale = s.rescale ? SparsifyKernels.rescaleFactor(before: sums[0], after: sums[1]) : 1
            return StreamedDelta(mask: mask, scale: scale, dropped: false)

        case .dellaMagprune:
            if s.density <= 0 { return dropAll }
            let lowP = s.density - s.epsilon, highP = s.density + s.epsilon
            if lowP <= 0 || highP >= 1 {
                warnings.append("\(method): tensor '\(request.tensorName)': density ± epsilon = [\(lowP), \(highP)] for model "
                    + "\(input.modelName) leaves (0, 1); mergekit rejects this, Crucible clamps the keep probabilities into [0, 1]")
            }
            let shape = request.shape
            let rows = shape.count >= 2 && shape[0] > 0 && n % shape[0] == 0 ? shape[0] : 1
            let length = n / rows
            // Keep probabilities of the whole tensor (one float each), filled from blocks of whole rows.
            let probabilities = stream.workspace.buffer(WorkspaceSlot.keys, count: n, of: Float.self)
            let rowsPerBlock = max(1, stream.block / length)
            let rowRanges = stride(from: 0, to: rows, by: rowsPerBlock).map { ($0 * length)..<(min(rows, $0 + rowsPerBlock) * length) }
            let density = s.density, epsilon = s.epsilon
            try forEachBlock(k, ranges: rowRanges, capacity: min(n, max(stream.block, length))) { blk, x, b in
                let firstRow = blk.lowerBound / length
                parallelFor(blk.count / length, threads: n >= Chunking.parallelThreshold ? threads : 1) { row in
                    SparsifyKernels.dellaRow(x: x, base: b, start: (firstRow + row) * length, length: length, into: probabilities,
                                             density: density, epsilon: epsilon)
                }
            }
            let mask = Bitset(count: n)
            let start = SplitMix64(seed: request.seed, tensor: request.tensorName, model: input.modelIndex).state
            let words = mask.words.baseAddress!
            let p = UnsafePointer(probabilities)
            let sums = try chunkSums(k, width: 2) { r, x, b, acc in
                let l1 = SparsifyKernels.bernoulli(words: words, x: x, base: b, range: r, start: start, threshold32: 0, perElement: p)
                acc[0] = l1.before
                acc[1] = l1.after
            }
            let scale = s.rescale ? SparsifyKernels.rescaleFactor(before: sums[0], after: sums[1]) : 1
            return StreamedDelta(mask: mask, scale: scale, dropped: false)
        }
    }

    /// Keeps the elements whose |δ| rank lies in `window` (TIES, breadcrumbs).
    func selectByMagnitude(_ k: Int, window: Range<Int>, rescale: Bool) throws -> StreamedDelta {
        let buckets = 1 << 16
        let keys = stream.workspace.buffer(WorkspaceSlot.keys, count: n, of: UInt32.self)
        let inexact = Bitset(count: n)
        let inexactWords = inexact.words.baseAddress!
        let workers = max(1, threads)
        let perWorker = stream.workspace.buffer(WorkspaceSlot.scratch, count: buckets * workers, of: UInt32.self)
        perWorker.initialize(repeating: 0, count: buckets * workers)
        // Pass 1: magnitude keys, their high-16-bit histogram, which keys rounded |x − b| (see `magnitudeResidual`),
        // and ‖δ‖₁ per chunk.
        var partial = [Double](repeating: 0, count: chunkCount)
        try partial.withUnsafeMutableBufferPointer { pp in
            let p = pp.baseAddress!
            try forEachBlock(k, ranges: stream.blocks, capacity: min(n, stream.block)) { blk, x, b in
                StreamingChunks.forEachWithWorker(blk, threads: threads) { worker, c, r in
                    let hist = perWorker + worker * buckets
                    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { flagBuffer in
                        let flags = flagBuffer.baseAddress!
                        var i = r.lowerBound
                        while i < r.upperBound {
                            let len = min(64, r.upperBound - i)
                            let xi = x + i, bi = b + i, ki = keys + i
                            // Keys, and whether float32 rounded x − b, in a branch-free loop the compiler vectorises.
                            // TwoSum's error term of x + (−b) is zero exactly when the float32 difference is exact;
                            // then the double-precision residual of `magnitudeResidual` is zero too, so the flags
                            // cover every element whose residual may be non-zero.
                            for j in 0..<len {
                                let xv = xi[j], bv = bi[j]
                                let d = xv - bv
                                ki[j] = d.bitPattern & 0x7FFF_FFFF
                                let a2 = d + bv
                                let c2 = d - a2
                                let err = (xv - a2) + (-bv - c2)
                                flags[j] = err == 0 ? 0 : 1
                            }
                            for j in len..<64 { flags[j] = 0 }
                            // Eight 0/1 bytes → eight bits (byte j → bit j) with one multiply.
                            var word: UInt64 = 0
                            for g in 0..<8 {
                                let v = UnsafeRawPointer(flags + 8 * g).loadUnaligned(as: UInt64.self)
                                word |= ((v &* 0x0102_0408_1020_4080) >> 56) << UInt64(8 * g)
                            }
                            inexactWords[i >> 6] = word
                            for j in 0..<len { hist[Int(ki[j] >> 16)] &+= 1 }
                            i += len
                        }
                    }
                    if rescale { p[c] = SparsifyKernels.l1(x: x, base: b, range: r) }
                }
            }
        }
        let l1Total = partial.reduce(0, +)
        var high = [Int](repeating: 0, count: buckets)
        for w in 0..<workers {
            for h in 0..<buckets { high[h] += Int(perWorker[w * buckets + h]) }
        }

        // Ties at the cut-off whose keys were rounded are ordered by exact |x − b|: read those few elements back.
        let failure = FirstError()
        let reader = self.reader, baseIndex = self.baseIndex
        let residual: (Int) -> Double = { i in
            var xv: Float = 0, bv: Float = 0
            do {
                try reader.read(k, range: i..<(i + 1), into: &xv)
                try reader.read(baseIndex, range: i..<(i + 1), into: &bv)
            } catch {
                failure.record(error)
                return 0
            }
            return abs(Double(xv) - Double(bv)) - Double(abs(xv - bv))
        }
        let mask = Bitset(count: n)
        RankSelect.markWindow(UnsafeBufferPointer(start: keys, count: n), window: window, into: mask, threads: threads, high: high,
                              residual: residual, inexact: UnsafePointer(inexactWords))
        try failure.check()
        withExtendedLifetime(inexact) {}
        guard rescale else { return StreamedDelta(mask: mask, scale: 1, dropped: false) }
        let words = UnsafePointer(mask.words.baseAddress!)
        let after = try chunkSums(k, width: 1) { r, x, b, acc in
            acc[0] = SparsifyKernels.maskedL1(x: x, base: b, words: words, range: r)
        }
        return StreamedDelta(mask: mask, scale: SparsifyKernels.rescaleFactor(before: l1Total, after: after[0]), dropped: false)
    }
}
