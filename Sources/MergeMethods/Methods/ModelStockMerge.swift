import Tensors

/// `model_stock`: interpolate between the base and the average of N fine-tunes with t = N·c / (1 + (N−1)·c),
/// c the mean pairwise cosine of the fine-tunes' task vectors (per tensor, or per row with `filter_wise`).
/// Implements mergekit's `model_stock` (mergekit-behaviour.md §2.8); t is not clamped.
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

    public func merge(_ request: MergeRequest, into output: UnsafeMutableBufferPointer<Float>) throws -> [String] {
        try request.checkSizes(name, output: output)
        let base = try request.requireBase(name).values
        let xs = request.others.map(\.values)
        let n = output.count
        if xs.isEmpty || n == 0 {
            copyValues(base, into: output)
            return []
        }
        guard xs.count >= 2 else {
            throw MergeMethodError.tensor(name, request, "needs the base plus at least two other models, got \(xs.count) other")
        }
        let filterWise = try request.flag(name, "filter_wise", default: false)
        // filter_wise: one vector per row of the last axis (a 1-D tensor is one row).
        let length = filterWise && request.shape.count >= 2 ? max(1, request.shape[request.shape.count - 1]) : n
        guard n % length == 0 else {
            throw MergeMethodError.tensor(name, request, "shape \(request.shape) does not match \(n) elements")
        }
        let rows = n / length
        let models = xs.count
        let N = Double(models)
        var warnings: [String] = []
        var degenerate = 0

        // Per row: Gram matrix of the offsets oᵢ = Xᵢ − B, accumulated in double.
        var ts = [Float](repeating: 0, count: rows)
        let threads = request.threads
        for row in 0..<rows {
            let lo = row * length
            let chunking = Chunking(length, threads: threads)
            let width = models * models
            let gram = chunking.sums(width: width) { r, acc in
                for j in r {
                    let i = lo + j
                    let b = base[i]
                    for p in 0..<models {
                        let op = Double(xs[p][i] - b)
                        for q in p..<models { acc[p * models + q] += op * Double(xs[q][i] - b) }
                    }
                }
            }
            var cosSum = 0.0
            var pairs = 0
            for p in 0..<models {
                for q in (p + 1)..<models {
                    let normProduct = gram[p * models + p].squareRoot() * gram[q * models + q].squareRoot()
                    cosSum += min(max(gram[p * models + q] / max(normProduct, 1e-6), -1), 1)
                    pairs += 1
                }
            }
            let c = cosSum / Double(pairs)
            var t = N * c / (1 + (N - 1) * c)
            if !t.isFinite {
                t = 0
                degenerate += 1
            }
            ts[row] = Float(t)
        }
        if degenerate > 0 {
            warnings.append("model_stock: tensor '\(request.tensorName)': the fine-tunes' mean cosine is -1/(N-1) in \(degenerate) of \(rows) \(rows == 1 ? "tensor" : "rows"), so t = N·c/(1+(N-1)·c) is undefined; kept the base there")
        }
        let inverseCount = Float(models)
        Chunking(n, threads: threads).forEach { r in
            for i in r {
                var sum: Float = 0
                for x in xs { sum += x[i] }
                let t = ts[i / length]
                output[i] = t * (sum / inverseCount) + (1 - t) * base[i]
            }
        }
        return warnings
    }
}
