import Foundation
import Host
import Numerics

/// `arcee_fusion`: take the other model's value only where it matters most. Importance Iᵢ = |X − B|ᵢ · KL(row),
/// KL between the row softmaxes of X and B; entries with I ≥ median + 1.5·IQR move to X, the rest keep B.
/// Implements mergekit's `arcee_fusion` (docs/methods.md). Quantiles are exact order statistics; for
/// tensors above one million elements they come from a seeded sample of one million positions (with replacement),
/// as in mergekit, so only those tensors depend on the seed.
public struct ArceeFusionMerge: MergeMethod {
    public init() {}
    public var name: String { "arcee_fusion" }
    public var prettyName: String { "Arcee Fusion" }
    public var referenceURL: String? { "https://arcee.ai" }
    public var globalParameters: [ParameterDefinition] { [] }
    public var perModelParameters: [ParameterDefinition] { [] }
    public var baseModel: BaseModelUse { .required }
    public var isRandom: Bool { true }

    /// Tensors larger than this estimate their quantiles from a sample of this many elements.
    public static let quantileSampleSize = 1_000_000

    public func validate(inputCount: Int, hasBase: Bool) throws {
        guard hasBase else { throw MergeMethodError("arcee_fusion needs base_model") }
        try requireInputCount(name, inputCount, 2...2, what: "exactly two models: base_model and one other")
    }

    /// Order-preserving keys of the importance |x − b|·KL(softmax x ‖ softmax b) of one row.
    static func importanceKeys(x: UnsafePointer<Float>, base: UnsafePointer<Float>, start lo: Int, length: Int,
                               into kb: UnsafeMutablePointer<UInt32>) {
        var maxX = -Double.infinity, maxB = -Double.infinity
        for j in lo..<(lo + length) {
            maxX = max(maxX, Double(x[j]))
            maxB = max(maxB, Double(base[j]))
        }
        var sumX = 0.0, sumB = 0.0
        for j in lo..<(lo + length) {
            sumX += exp(Double(x[j]) - maxX)
            sumB += exp(Double(base[j]) - maxB)
        }
        var kl = 0.0
        for j in lo..<(lo + length) {
            let p = exp(Double(x[j]) - maxX) / sumX + 1e-8
            let q = exp(Double(base[j]) - maxB) / sumB + 1e-8
            kl += p * log(p / q)
        }
        let klf = Float(kl)
        for j in lo..<(lo + length) { kb[j] = FloatKey.ordered(abs(x[j] - base[j]) * klf) }
    }

    /// The key above which the fine-tune's value is taken: median + 1.5·IQR of the importances (or of a seeded sample).
    static func threshold(_ kb: UnsafeBufferPointer<UInt32>, seed: UInt64, tensorName: String, threads: Int) -> UInt32 {
        let n = kb.count
        var sample: [UInt32] = []
        let sampleCount = min(n, quantileSampleSize)
        if n > quantileSampleSize {
            var g = SplitMix64(seed: seed, stream: "\(tensorName)#arcee_fusion")
            sample = (0..<sampleCount).map { _ in kb[Int(g.next() % UInt64(n))] }
        }
        func quantile(_ q: Double) -> Float {
            let rank = Int((q * Double(sampleCount - 1)).rounded(.down))
            let key: UInt32
            if sample.isEmpty {
                let high = RankSelect.highHistogram(kb, threads: threads)
                key = RankSelect.orderStatistic(kb, rank: rank, high: high, threads: threads).key
            } else {
                key = sample.withUnsafeBufferPointer { s in
                    RankSelect.orderStatistic(s, rank: rank, high: RankSelect.highHistogram(s, threads: threads), threads: threads).key
                }
            }
            return FloatKey.value(ofOrdered: key)
        }
        let q1 = quantile(0.25), median = quantile(0.5), q3 = quantile(0.75)
        return FloatKey.ordered(median + 1.5 * (q3 - q1))
    }

    static func select(x: UnsafePointer<Float>, base: UnsafePointer<Float>, keys: UnsafePointer<UInt32>, threshold: UInt32,
                       range r: Range<Int>, into output: UnsafeMutablePointer<Float>) {
        for i in r { output[i] = keys[i] >= threshold ? base[i] + (x[i] - base[i]) : base[i] }
    }
}

/// arcee_fusion streamed: importances row by row from blocks of whole rows into one UInt32 key buffer (the
/// softmax/KL of a row needs only that row), quartiles from the keys, then a blockwise output pass.
extension ArceeFusionMerge: StreamingMergeMethod {
    public func streamingScratchBytes(count: Int, inputCount: Int) -> Int { 4 * count }

    public func mergeStreaming(_ stream: StreamingMergeRequest, inputs reader: any MergeInputReader,
                               output writer: any MergeOutputWriter) throws -> [String] {
        let request = stream.parameterView
        let n = stream.count
        let ws = stream.workspace
        if stream.inputs.count == 1 { return try stream.copyThrough(0, inputs: reader, output: writer) }
        _ = try request.requireBase(name)
        guard stream.inputs.count == 2 else {
            throw MergeMethodError.tensor(name, request, "needs exactly two inputs (base and one other), got \(stream.inputs.count)")
        }
        if n == 0 { return [] }
        let baseIndex = stream.baseIndex!, other = 1 - baseIndex
        let length = stream.shape.count >= 1 ? max(1, stream.shape[stream.shape.count - 1]) : n
        guard n % length == 0 else {
            throw MergeMethodError.tensor(name, request, "shape \(stream.shape) does not match \(n) elements")
        }
        let rows = n / length
        let threads = stream.threads
        let keys = ws.buffer(WorkspaceSlot.keys, count: n, of: UInt32.self)
        let rowsPerBlock = max(1, stream.block / length)
        let cap = min(n, max(stream.block, length))
        let xBuf = ws.buffer(WorkspaceSlot.inputs + 1, count: cap, of: Float.self)
        let bBuf = ws.buffer(WorkspaceSlot.inputs, count: cap, of: Float.self)
        for first in stride(from: 0, to: rows, by: rowsPerBlock) {
            let r = (first * length)..<(min(rows, first + rowsPerBlock) * length)
            try reader.read(other, range: r, into: xBuf)
            try reader.read(baseIndex, range: r, into: bBuf)
            let x = UnsafePointer(xBuf - r.lowerBound), b = UnsafePointer(bBuf - r.lowerBound)
            parallelFor(r.count / length, threads: n >= Chunking.parallelThreshold ? threads : 1) { row in
                ArceeFusionMerge.importanceKeys(x: x, base: b, start: (first + row) * length, length: length, into: keys)
            }
        }
        let threshold = ArceeFusionMerge.threshold(UnsafeBufferPointer(start: keys, count: n), seed: stream.seed,
                                                   tensorName: stream.tensorName, threads: threads)
        let out = stream.blockBuffer(WorkspaceSlot.output)
        for blk in stream.blocks {
            try reader.read(other, range: blk, into: xBuf)
            try reader.read(baseIndex, range: blk, into: bBuf)
            let s = blk.lowerBound
            let x = UnsafePointer(xBuf - s), b = UnsafePointer(bBuf - s), o = out - s
            StreamingChunks.forEach(blk, threads: threads) { _, r in
                ArceeFusionMerge.select(x: x, base: b, keys: keys, threshold: threshold, range: r, into: o)
            }
            try writer.write(range: blk, values: out)
        }
        return []
    }
}
