import Recipes

/// How sparsified task vectors are combined.
public enum Consensus: String, Sendable {
    /// Plain weighted sum.
    case none
    /// TIES sign election: per element, the sign of Σ wᵢδᵢ (0 counts as +) wins, and only deltas with that sign
    /// (a zero delta has no sign and never matches) are summed and counted in the divisor.
    case sum
}

/// The generalised task-arithmetic kernel behind `task_arithmetic`, `ties`, `dare_ties`, `dare_linear`,
/// `breadcrumbs`, `breadcrumbs_ties`, `della` and `della_linear` (docs/methods.md; mergekit's
/// `GeneralizedTaskArithmeticMerge`). For each parent δᵢ = Xᵢ − B is sparsified (with optional L1 rescale),
/// weighted, combined with or without sign consensus, optionally divided by the weight sum, scaled by λ
/// and added to the base.
public struct TaskArithmeticFamilyMerge: MergeMethod {
    public let name: String
    public let prettyName: String
    public let referenceURL: String?
    public let consensus: Consensus
    public let sparsifier: Sparsifier
    public let defaultNormalize: Bool
    public let defaultRescale: Bool

    public init(name: String, prettyName: String, referenceURL: String?, consensus: Consensus, sparsifier: Sparsifier,
                defaultNormalize: Bool, defaultRescale: Bool) {
        self.name = name
        self.prettyName = prettyName
        self.referenceURL = referenceURL
        self.consensus = consensus
        self.sparsifier = sparsifier
        self.defaultNormalize = defaultNormalize
        self.defaultRescale = defaultRescale
    }

    public var isRandom: Bool { sparsifier == .random || sparsifier == .dellaMagprune }
    public var baseModel: BaseModelUse { .required }

    public var globalParameters: [ParameterDefinition] {
        [ParameterDefinition("normalize", default: .bool(defaultNormalize)),
         ParameterDefinition("rescale", default: .bool(defaultRescale)),
         ParameterDefinition("lambda", default: .number(1.0)),
         ParameterDefinition("int8_mask", default: .bool(false))]
    }

    public var perModelParameters: [ParameterDefinition] {
        var p = [ParameterDefinition("weight", required: true), ParameterDefinition("density", default: .number(1.0), minimum: 0)]
        if sparsifier == .magnitudeOutliers { p.append(ParameterDefinition("gamma", default: .number(0.01))) }
        if sparsifier == .dellaMagprune { p.append(ParameterDefinition("epsilon", default: .number(0.15))) }
        return p
    }

    public func validate(inputCount: Int, hasBase: Bool) throws {
        guard hasBase else {
            throw MergeMethodError("\(name) needs base_model (task vectors are measured from it)")
        }
        try requireInputCount(name, inputCount, 1...Int.max, what: "at least the base model")
    }

    /// Without sparsification or consensus each output element depends only on the same input elements.
    public func isElementwise(global: [String: ParameterValue]) -> Bool {
        sparsifier == .none && consensus == .none
    }

    /// Also elementwise when every density is at least 1 (nothing is sparsified) and there is no consensus.
    public func isElementwise(global: [String: ParameterValue], perModel: [[String: ParameterValue]]) -> Bool {
        if isElementwise(global: global) { return true }
        guard consensus == .none else { return false }
        return perModel.allSatisfy { ($0["density"]?.number ?? 1) >= 1 }
    }

    /// One term of the combination, as plain values for the hot loop. `x` and `mask` are addressed by indices of
    /// the whole tensor (for a streamed block, `x` points `blockStart` elements before the block's buffer).
    struct Term {
        let x: UnsafePointer<Float>
        let mask: UnsafePointer<UInt64>?
        let scale: Float
        let weight: Float
    }

    /// What the combination does after summing the terms.
    struct CombineSettings {
        let consensus: Bool
        let normalize: Bool
        let lambda: Float
        /// Divisor without consensus (Σ weights of every delta, dropped ones included; 1 when ~0).
        let weightSum: Float

        init(consensus: Bool, normalize: Bool, lambda: Float, weights: [Float]) {
            self.consensus = consensus
            self.normalize = normalize
            self.lambda = lambda
            // A dropped delta still counts in the no-consensus divisor (mergekit stacks a zero tensor with its weight).
            var sum: Float = 0
            for w in weights { sum += w }
            weightSum = abs(sum) < 1e-8 ? 1 : sum
        }
    }

    /// Byte → eight all-ones/all-zeros lanes, so a mask word becomes a float mask with eight table copies.
    static let laneMasks: UnsafePointer<UInt32> = {
        let p = UnsafeMutablePointer<UInt32>.allocate(capacity: 256 * 8)
        for e in 0..<(256 * 8) { p[e] = ((e / 8) >> (e % 8)) & 1 == 1 ? 0xFFFF_FFFF : 0 }
        return UnsafePointer(p)
    }()

    /// Combines elements `r` (indices of the whole tensor; `base` and `out` addressed by them), 64 elements (one
    /// mask word) at a time; `r` starts on a multiple of 64.
    /// Per element this is exactly the float32 arithmetic mergekit does: ((δ·mask)·scale)·w per model, summed in model
    /// order; with consensus, the elected sign (Σ ≥ 0 → +) keeps only same-signed non-zero terms and their weights;
    /// then ÷ divisor (normalize), × λ, + base. The block form keeps the inner loops branch-free and vectorisable.
    static func combine(_ terms: UnsafeBufferPointer<Term>, base b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                        range r: Range<Int>, settings: CombineSettings) {
        let count = terms.count
        let block = 64
        let lanes = laneMasks
        let useConsensus = settings.consensus, normalize = settings.normalize
        let lambda = settings.lambda, weightSum = settings.weightSum
        withUnsafeTemporaryAllocation(of: Float.self, capacity: block * (count + 3)) { scratch in
            let s = scratch.baseAddress!
            let sum = s, merged = s + block, divisor = s + 2 * block, d = s + 3 * block
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: block) { maskLanes in
                let m = maskLanes.baseAddress!
                var start = r.lowerBound
                while start < r.upperBound {
                    let len = min(block, r.upperBound - start)
                    let x0 = b + start
                    for j in 0..<len { sum[j] = 0 }
                    for t in 0..<count {
                        let term = terms[t]
                        let xt = term.x + start
                        let dt = d + t * block
                        let scale = term.scale, weight = term.weight
                        if let mask = term.mask {
                            let word = mask[start >> 6]
                            for byte in 0..<8 {
                                (m + byte * 8).update(from: lanes + Int((word >> UInt64(byte * 8)) & 0xFF) * 8, count: 8)
                            }
                            for j in 0..<len {
                                let v = ((xt[j] - x0[j]) * scale) * weight
                                dt[j] = Float(bitPattern: v.bitPattern & m[j])
                                sum[j] += dt[j]
                            }
                        } else {
                            for j in 0..<len {
                                dt[j] = ((xt[j] - x0[j]) * scale) * weight
                                sum[j] += dt[j]
                            }
                        }
                    }
                    let o = out + start
                    if useConsensus {
                        for j in 0..<len { merged[j] = 0; divisor[j] = 0 }
                        for t in 0..<count {
                            let dt = d + t * block
                            let weight = terms[t].weight
                            for j in 0..<len {
                                let v = dt[j]
                                // Zero deltas have no sign and never match.
                                let match = sum[j] >= 0 ? v > 0 : v < 0
                                merged[j] += match ? v : 0
                                divisor[j] += match ? weight : 0
                            }
                        }
                        for j in 0..<len {
                            var v = merged[j]
                            if normalize { v /= (divisor[j] == 0 ? 1 : divisor[j]) }
                            if lambda != 1 { v *= lambda }
                            o[j] = x0[j] + v
                        }
                    } else {
                        for j in 0..<len {
                            var v = sum[j]
                            if normalize { v /= weightSum }
                            if lambda != 1 { v *= lambda }
                            o[j] = x0[j] + v
                        }
                    }
                    start += len
                }
            }
        }
    }
}

extension TaskArithmeticFamilyMerge {
    /// The registry rows, with mergekit's per-method defaults (docs/methods.md).
    public static let taskArithmetic = TaskArithmeticFamilyMerge(
        name: "task_arithmetic", prettyName: "Task Arithmetic", referenceURL: "https://arxiv.org/abs/2212.04089",
        consensus: .none, sparsifier: .none, defaultNormalize: false, defaultRescale: false)
    public static let ties = TaskArithmeticFamilyMerge(
        name: "ties", prettyName: "TIES", referenceURL: "https://arxiv.org/abs/2306.01708",
        consensus: .sum, sparsifier: .magnitude, defaultNormalize: true, defaultRescale: false)
    public static let dareTies = TaskArithmeticFamilyMerge(
        name: "dare_ties", prettyName: "DARE TIES", referenceURL: "https://arxiv.org/abs/2311.03099",
        consensus: .sum, sparsifier: .random, defaultNormalize: false, defaultRescale: true)
    public static let dareLinear = TaskArithmeticFamilyMerge(
        name: "dare_linear", prettyName: "Linear DARE", referenceURL: "https://arxiv.org/abs/2311.03099",
        consensus: .none, sparsifier: .random, defaultNormalize: false, defaultRescale: true)
    public static let breadcrumbs = TaskArithmeticFamilyMerge(
        name: "breadcrumbs", prettyName: "Model Breadcrumbs", referenceURL: "https://arxiv.org/abs/2312.06795",
        consensus: .none, sparsifier: .magnitudeOutliers, defaultNormalize: false, defaultRescale: false)
    public static let breadcrumbsTies = TaskArithmeticFamilyMerge(
        name: "breadcrumbs_ties", prettyName: "Model Breadcrumbs with TIES", referenceURL: "https://arxiv.org/abs/2312.06795",
        consensus: .sum, sparsifier: .magnitudeOutliers, defaultNormalize: false, defaultRescale: false)
    public static let della = TaskArithmeticFamilyMerge(
        name: "della", prettyName: "DELLA", referenceURL: "https://arxiv.org/abs/2406.11617",
        consensus: .sum, sparsifier: .dellaMagprune, defaultNormalize: true, defaultRescale: true)
    public static let dellaLinear = TaskArithmeticFamilyMerge(
        name: "della_linear", prettyName: "Linear DELLA", referenceURL: "https://arxiv.org/abs/2406.11617",
        consensus: .none, sparsifier: .dellaMagprune, defaultNormalize: false, defaultRescale: true)
}
