import Tensors

/// `sce` (Select, Calculate, Erase): keep the entries where the task vectors disagree most (top `select_topk`
/// fraction by variance across models), weight each model by the mean square of its kept task vector, erase
/// entries whose sign loses the TIES election, and average the rest. Implements mergekit's `sce`
/// (mergekit-behaviour.md §2.7 and the fixtures MANIFEST).
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

    public func merge(_ request: MergeRequest, into output: UnsafeMutableBufferPointer<Float>) throws -> [String] {
        try request.checkSizes(name, output: output)
        let base = try request.requireBase(name).values
        let xs = request.others.map(\.values)
        let n = output.count
        if xs.isEmpty || n == 0 {
            copyValues(base, into: output)
            return []
        }
        let topk = try request.number(name, "select_topk", default: 1.0)
        let threads = request.threads
        let chunking = Chunking(n, threads: threads)
        let count = Float(xs.count)

        // Select: a mask of the highest-variance positions (nil = all kept).
        var mask: Bitset? = nil
        if topk < 1 {
            let selected = Bitset(count: n)
            if topk > 0 {
                let keys = Scratch<UInt32>(n)
                let kb = keys.buffer
                @inline(__always) func variance(_ i: Int) -> Double {
                    var mean = 0.0
                    for x in xs { mean += Double(x[i] - base[i]) }
                    mean /= Double(count)
                    var v = 0.0
                    for x in xs { let d = Double(x[i] - base[i]) - mean; v += d * d }
                    return v / Double(count)
                }
                let nonzero = chunking.sum { r in
                    var c = 0.0
                    for i in r {
                        let v = Float(variance(i))
                        kb[i] = FloatKey.magnitude(v)
                        if v != 0 { c += 1 }
                    }
                    return c
                }
                let k = Int((Double(Int(nonzero)) * topk).rounded(.down))
                if k > 0 {
                    // Equal float32 variances are ranked by their double-precision values.
                    RankSelect.markWindow(UnsafeBufferPointer(kb), window: (n - k)..<n, into: selected, threads: threads,
                                          residual: { i in let v = variance(i); return v - Double(Float(v)) })
                }
            }
            mask = selected
        }
        let words = mask.map { UnsafePointer($0.words.baseAddress!) }
        @inline(__always) func delta(_ k: Int, _ i: Int) -> Float {
            if let words, (words[i >> 6] >> UInt64(i & 63)) & 1 == 0 { return 0 }
            return xs[k][i] - base[i]
        }

        // Calculate: matrix-level weights from the mean square of each (selected) task vector.
        var omegas = (0..<xs.count).map { k in
            chunking.sum { r in
                var s = 0.0
                for i in r { let d = Double(delta(k, i)); s += d * d }
                return s
            } / Double(n)
        }
        let total = omegas.reduce(0, +)
        if abs(total) < 1e-6 {
            omegas = omegas.map { _ in 1 / Double(xs.count) }
        } else {
            omegas = omegas.map { $0 / total }
        }
        let w = omegas.map { Float($0) }

        // Erase: TIES sign election on the unweighted deltas, then a weighted average of the survivors.
        chunking.forEach { r in
            for i in r {
                var sum: Float = 0
                for k in 0..<xs.count { sum += delta(k, i) }
                let positive = sum >= 0
                var merged: Float = 0
                var divisor: Float = 0
                for k in 0..<xs.count {
                    let d = delta(k, i)
                    if positive ? d > 0 : d < 0 {
                        merged += d * w[k]
                        divisor += w[k]
                    }
                }
                output[i] = base[i] + merged / max(divisor, 1e-6)
            }
        }
        withExtendedLifetime(mask) {}
        return []
    }
}
