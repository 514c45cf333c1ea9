import Foundation

/// Mean ± σ of a series, σ = sqrt((Σx²/N − mean²)/(N − 1)) (0 when N ≤ 10, as llama.cpp prints).
public struct MeanWithError: Sendable, Equatable {
    public let mean: Double
    public let error: Double

    public init(mean: Double, error: Double) {
        self.mean = mean
        self.error = error
    }
}

/// One scored position compared with a reference ("base") distribution: the values llama.cpp accumulates per
/// position in `--kl-divergence` mode. Where the base comes from (a saved record, or a second model's float
/// logits) only changes how these are measured, never how they are summarized (`KLDivergenceAccumulator`).
public struct KLPosition: Sendable, Equatable {
    /// NLL of the target under the candidate.
    public var nll: Double
    /// NLL of the target under the base.
    public var baseNLL: Double
    /// KL(base ‖ candidate) in nats.
    public var kld: Double
    /// Whether both distributions put their largest value on the same token.
    public var sameTop: Bool
    /// p_candidate(target) − p_base(target).
    public var probabilityDelta: Double

    public init(nll: Double, baseNLL: Double, kld: Double, sameTop: Bool, probabilityDelta: Double) {
        self.nll = nll
        self.baseNLL = baseNLL
        self.kld = kld
        self.sameTop = sameTop
        self.probabilityDelta = probabilityDelta
    }

    /// Against a saved llama.cpp record (`--kl-ref`), as llama.cpp measures it: the candidate's log-sum-exp
    /// rounded to float, KL summed over the tokens the record did not floor (log-probabilities more than 16
    /// nats below the top are stored as the floor).
    public static func measure(candidate logits: UnsafeBufferPointer<Float>, record: LogitsRecord, target: Int) -> KLPosition {
        var maxLogit = logits[0]
        var top = 0
        for (i, v) in logits.enumerated() where v > maxLogit {
            maxLogit = v
            top = i
        }
        var sumExp = 0.0
        for v in logits { sumExp += Double(expf(v - maxLogit)) }
        let logSumExp = Float(log(sumExp))
        let nll = Double(maxLogit + logSumExp - logits[target])
        let nllBase = -Double(record.logProbability(target))

        // KL(base ‖ candidate) over the tokens the base record did not floor.
        let logNormalizer = maxLogit + logSumExp
        var kld = 0.0
        var baseTop = -1
        var baseTopLog: Float = 0
        for j in 0..<record.vocabSize where record.level(j) > 0 {
            let logBase = record.logProbability(j)
            kld += Double(expf(logBase)) * Double(logBase - logits[j] + logNormalizer)
            if baseTop < 0 || logBase > baseTopLog {
                baseTop = j
                baseTopLog = logBase
            }
        }
        let dp = Double(expf(Float(-nll))) - Double(expf(Float(-nllBase)))
        return KLPosition(nll: nll, baseNLL: nllBase, kld: kld, sameTop: top == baseTop, probabilityDelta: dp)
    }

    /// Against a second model's float logits at the same position: the exact KL over the whole vocabulary,
    /// `Σ_j p_base(j) · (log p_base(j) − log q(j))`, with nothing floored or quantized. Both rows come with their
    /// `PerplexityProtocol.summarize` summaries, so the NLLs are exactly the ones their perplexities use.
    ///
    /// Written as `Σ_j p_j (b_j − c_j) + (L_c − L_b) Σ_j p_j` with `L` the log-normalizers and
    /// `p_j = expf(b_j − b_max) / Σ`, so identical rows give exactly 0.
    public static func measure(candidate: UnsafeBufferPointer<Float>, candidateSummary: LogitRowSummary,
                               base: UnsafeBufferPointer<Float>, baseSummary: LogitRowSummary, target: Int) -> KLPosition {
        let nll = candidateSummary.negativeLogLikelihood(candidate, target: target)
        let nllBase = baseSummary.negativeLogLikelihood(base, target: target)
        let inverse = 1 / baseSummary.sumExp
        let baseMax = baseSummary.maxLogit
        var weighted = 0.0, mass = 0.0
        for j in 0..<base.count {
            let p = Double(expf(base[j] - baseMax)) * inverse
            mass += p
            weighted += p * (Double(base[j]) - Double(candidate[j]))
        }
        let kld = weighted + (candidateSummary.logNormalizer - baseSummary.logNormalizer) * mass
        return KLPosition(nll: nll, baseNLL: nllBase, kld: kld, sameTop: candidateSummary.top == baseSummary.top,
                          probabilityDelta: exp(-nll) - exp(-nllBase))
    }
}

/// Accumulates llama.cpp's `--kl-divergence` statistics (docs/evaluation.md) over compared positions and
/// summarizes them (`report`): the one definition of every figure, whatever the base is.
public struct KLDivergenceAccumulator: Sendable {
    public private(set) var count = 0
    private var sumNLL = 0.0, sumNLL2 = 0.0
    private var sumBase = 0.0, sumBase2 = 0.0, sumCross = 0.0
    private var sumKLD = 0.0, sumKLD2 = 0.0
    private var sumDP = 0.0, sumDP2 = 0.0, sumDP4 = 0.0
    private var sameTop = 0
    private(set) var klds: [Double] = []
    private(set) var probabilityDiffs: [Double] = []

    public init() {}

    /// Adds one position: candidate `logits`, the base `record`, the true next token `target`.
    public mutating func add(logits: UnsafeBufferPointer<Float>, record: LogitsRecord, target: Int) {
        add(KLPosition.measure(candidate: logits, record: record, target: target))
    }

    /// Adds one measured position.
    public mutating func add(_ p: KLPosition) {
        let nll = p.nll, nllBase = p.baseNLL
        sumNLL += nll; sumNLL2 += nll * nll
        sumBase += nllBase; sumBase2 += nllBase * nllBase
        sumCross += nll * nllBase
        let kld = p.kld
        sumKLD += kld; sumKLD2 += kld * kld
        if p.sameTop { sameTop += 1 }
        let dp = p.probabilityDelta
        sumDP += dp; sumDP2 += dp * dp; sumDP4 += dp * dp * dp * dp
        klds.append(kld)
        probabilityDiffs.append(dp)
        count += 1
    }

    private func meanError(_ sum: Double, _ sum2: Double) -> MeanWithError {
        let n = Double(count)
        let mean = sum / n
        guard count > 10 else { return MeanWithError(mean: mean, error: 0) }
        let variance = sum2 / n - mean * mean
        return MeanWithError(mean: mean, error: variance > 0 ? (variance / (n - 1)).squareRoot() : 0)
    }

    /// The summary llama.cpp prints at the end.
    public var report: KLDivergenceReport {
        let n = Double(count)
        let nll = meanError(sumNLL, sumNLL2)
        let base = meanError(sumBase, sumBase2)
        let covariance = count > 10 ? (sumCross / n - nll.mean * base.mean) / (n - 1) : 0
        let ratioError = max(0, nll.error * nll.error + base.error * base.error - 2 * covariance).squareRoot()
        let kld = meanError(sumKLD, sumKLD2)
        let dp = meanError(sumDP, sumDP2)
        let rms = (sumDP2 / n).squareRoot()
        var rmsError = 0.0
        if count > 10, rms > 0 {
            let v = sumDP4 / n - (sumDP2 / n) * (sumDP2 / n)
            rmsError = v > 0 ? 0.5 / rms * (v / (n - 1)).squareRoot() : 0
        }
        let p = Double(sameTop) / n
        let sortedKLD = klds.sorted(), sortedDP = probabilityDiffs.sorted()
        return KLDivergenceReport(
            positions: count,
            perplexity: exp(nll.mean), perplexityError: exp(nll.mean) * nll.error,
            basePerplexity: exp(base.mean), basePerplexityError: exp(base.mean) * base.error,
            logPerplexityRatio: MeanWithError(mean: nll.mean - base.mean, error: ratioError),
            meanKLD: kld,
            kldPercentiles: KLDivergenceReport.percentileFractions.map { percentile(sortedKLD, $0) },
            meanProbabilityDelta: dp,
            probabilityDeltaRMS: MeanWithError(mean: rms, error: rmsError),
            probabilityDeltaPercentiles: KLDivergenceReport.percentileFractions.map { percentile(sortedDP, $0) },
            sameTop: MeanWithError(mean: p, error: count > 1 ? (p * (1 - p) / (n - 1)).squareRoot() : 0))
    }
}

/// Percentile by linear interpolation at `fraction · (N − 1)` of sorted values (the median of an even
/// count is the mean of the two middle values, which this gives at 0.5).
func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let x = fraction * Double(sorted.count - 1)
    let i = Int(x.rounded(.down))
    if i + 1 >= sorted.count { return sorted[sorted.count - 1] }
    let w = x - Double(i)
    return sorted[i] * (1 - w) + sorted[i + 1] * w
}

/// The end-of-run KL-divergence summary.
public struct KLDivergenceReport: Sendable, Equatable {
    /// Fractions at which `kldPercentiles` and `probabilityDeltaPercentiles` are taken: maximum, 99.9%,
    /// 99%, 95%, 90%, 75%, median, 25%, 10%, 5%, 1%, 0.1%, minimum.
    public static let percentileFractions: [Double] = [1, 0.999, 0.99, 0.95, 0.9, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01, 0.001, 0]
    public static let percentileLabels = ["Maximum", "99.9%", "99.0%", "95.0%", "90.0%", "75.0%", "Median",
                                          "25.0%", "10.0%", "5.0%", "1.0%", "0.1%", "Minimum"]
    /// The JSON keys of the same percentiles (`crucible ppl --json`, `crucible score --json`).
    public static let percentileKeys = ["max", "p99_9", "p99", "p95", "p90", "p75", "median", "p25", "p10", "p5", "p1", "p0_1", "min"]

    public let positions: Int
    public let perplexity: Double
    public let perplexityError: Double
    /// PPL of the base, from the quantized log-probabilities.
    public let basePerplexity: Double
    public let basePerplexityError: Double
    /// Mean ln(PPL(Q)/PPL(base)), its ± subtracting the covariance of the two NLL series.
    public let logPerplexityRatio: MeanWithError
    public let meanKLD: MeanWithError
    public let kldPercentiles: [Double]
    /// Mean of p_candidate(target) − p_base(target) (a fraction, not %).
    public let meanProbabilityDelta: MeanWithError
    public let probabilityDeltaRMS: MeanWithError
    public let probabilityDeltaPercentiles: [Double]
    /// Fraction of positions where both top tokens agree, σ = sqrt(p(1−p)/(N−1)).
    public let sameTop: MeanWithError

    /// A printable table in llama.cpp's order.
    public var table: String {
        func f(_ v: Double, _ digits: Int = 6) -> String { String(format: "%.\(digits)f", v) }
        var lines = [
            "====== Perplexity statistics ======",
            "Mean PPL(Q)                   : \(f(perplexity)) ± \(f(perplexityError))",
            "Mean PPL(base)                : \(f(basePerplexity)) ± \(f(basePerplexityError))",
            "Mean ln(PPL(Q)/PPL(base))     : \(f(logPerplexityRatio.mean)) ± \(f(logPerplexityRatio.error))",
            "",
            "====== KL divergence statistics ======",
            "Mean    KLD: \(f(meanKLD.mean)) ± \(f(meanKLD.error))",
        ]
        for (label, v) in zip(Self.percentileLabels, kldPercentiles) {
            lines.append("\(label.padding(toLength: 8, withPad: " ", startingAt: 0))KLD: \(f(v))")
        }
        lines += ["", "====== Token probability statistics ======",
                  "Mean    Δp: \(f(100 * meanProbabilityDelta.mean, 3)) ± \(f(100 * meanProbabilityDelta.error, 3)) %"]
        for (label, v) in zip(Self.percentileLabels, probabilityDeltaPercentiles) {
            lines.append("\(label.padding(toLength: 8, withPad: " ", startingAt: 0))Δp: \(f(100 * v, 3))%")
        }
        lines.append("RMS Δp    : \(f(100 * probabilityDeltaRMS.mean, 3)) ± \(f(100 * probabilityDeltaRMS.error, 3)) %")
        lines.append("Same top p: \(f(100 * sameTop.mean, 3)) ± \(f(100 * sameTop.error, 3)) %")
        return lines.joined(separator: "\n")
    }
}
