import Evaluation
import Foundation

/// Whether a scored model is the merge or one of its parents.
public enum ScoreRole: String, Sendable, Equatable {
    case merge
    case parent
}

/// A model taking part in a score: the merge (always first) or a parent.
public struct ScoredModel: Sendable, Equatable {
    /// A short display name, unique within the report (folder or file name).
    public let name: String
    public let role: ScoreRole
    /// The resolved path of the checkpoint folder or `.gguf` file.
    public let path: String
    /// Where its tokenizer was loaded from.
    public let tokenizerPath: String
    public let vocabSize: Int

    public init(name: String, role: ScoreRole, path: String, tokenizerPath: String, vocabSize: Int) {
        self.name = name
        self.role = role
        self.path = path
        self.tokenizerPath = tokenizerPath
        self.vocabSize = vocabSize
    }
}

/// One model's perplexity figures on one text (llama.cpp's protocol).
public struct ModelTextScore: Sendable, Equatable {
    /// Index into `ScoreReport.models`.
    public let model: Int
    /// `exp(mean NLL)` over the scored targets.
    public let perplexity: Double
    /// llama.cpp's ± (PPL · σ of the mean NLL).
    public let perplexityError: Double
    public let meanNLL: Double
    /// Total NLL of the scored targets in bits over the UTF-8 bytes those targets stand for
    /// (`Tokenizer.pieceBytes`): comparable between models whose vocabularies differ.
    public let bitsPerByte: Double
    public let tokensScored: Int
    /// UTF-8 bytes of the scored target tokens.
    public let bytesScored: Int
    /// Windows evaluated.
    public let windows: Int
    /// Tokens the whole text became with this model's tokenizer.
    public let tokenCount: Int
    /// Models with the same tokenization (same ids and BOS rule) share a group number and read the same windows.
    public let tokenization: Int
    /// The cumulative PPL after each window (what `crucible ppl` prints as it goes).
    public let runningPerplexity: [Double]

    public init(model: Int, perplexity: Double, perplexityError: Double, meanNLL: Double, bitsPerByte: Double, tokensScored: Int,
                bytesScored: Int, windows: Int, tokenCount: Int, tokenization: Int, runningPerplexity: [Double]) {
        self.model = model
        self.perplexity = perplexity
        self.perplexityError = perplexityError
        self.meanNLL = meanNLL
        self.bitsPerByte = bitsPerByte
        self.tokensScored = tokensScored
        self.bytesScored = bytesScored
        self.windows = windows
        self.tokenCount = tokenCount
        self.tokenization = tokenization
        self.runningPerplexity = runningPerplexity
    }
}

/// The merge compared with one parent on one text, position by position, from both models' full logits.
public struct ParentComparison: Sendable, Equatable {
    /// Index into `ScoreReport.models` of the parent.
    public let parent: Int
    /// The statistics with the parent as the base and the merge as the candidate: KL(parent ‖ merge), same top
    /// token, Δp = p_merge(target) − p_parent(target), and ln(PPL_merge / PPL_parent) with its paired error.
    /// Nil when the two cannot be compared token by token.
    public let statistics: KLDivergenceReport?
    /// Why there are no statistics (different tokenization or vocabulary size).
    public let notComparableReason: String?

    public init(parent: Int, statistics: KLDivergenceReport?, notComparableReason: String?) {
        self.parent = parent
        self.statistics = statistics
        self.notComparableReason = notComparableReason
    }
}

/// The verdict on one text.
public struct ScoreVerdict: Sendable, Equatable {
    /// How the merge compares with the best parent.
    public enum Outcome: String, Sendable, Equatable {
        /// The merge's PPL is lower than the best parent's by more than the paired error.
        case better
        /// Higher by more than the paired error.
        case worse
        /// The difference is not larger than the paired error.
        case withinNoise = "within_noise"
        /// The best parent tokenizes the text differently, so there is no paired error; bits per byte still compare.
        case notComparable = "not_comparable"
    }

    /// Index of the model with the lowest bits per byte (the same order as PPL among models that share a
    /// tokenization).
    public let best: Int
    /// Index of the parent with the lowest bits per byte.
    public let bestParent: Int
    public let outcome: Outcome
    /// ln(PPL_merge / PPL_bestParent) with its paired error, when they share a tokenization.
    public let logPerplexityRatio: MeanWithError?
    /// Whether the merge is worse (higher bits per byte) than every parent.
    public let worseThanAllParents: Bool
    /// One sentence for people.
    public let summary: String

    public init(best: Int, bestParent: Int, outcome: Outcome, logPerplexityRatio: MeanWithError?, worseThanAllParents: Bool,
                summary: String) {
        self.best = best
        self.bestParent = bestParent
        self.outcome = outcome
        self.logPerplexityRatio = logPerplexityRatio
        self.worseThanAllParents = worseThanAllParents
        self.summary = summary
    }
}

/// Everything scored on one evaluation text.
public struct TextScore: Sendable, Equatable {
    /// The file as given.
    public let path: String
    /// Its file name, for tables.
    public let name: String
    /// Size of the file in bytes.
    public let bytes: Int
    /// One entry per model, in `ScoreReport.models` order.
    public let results: [ModelTextScore]
    /// One entry per parent, in `ScoreReport.models` order.
    public let comparisons: [ParentComparison]
    public let verdict: ScoreVerdict

    public init(path: String, name: String, bytes: Int, results: [ModelTextScore], comparisons: [ParentComparison], verdict: ScoreVerdict) {
        self.path = path
        self.name = name
        self.bytes = bytes
        self.results = results
        self.comparisons = comparisons
        self.verdict = verdict
    }
}

/// The outcome of `crucible score`: the models, and per text their perplexities, the merge's comparisons with
/// its parents and a verdict. `json` writes it in the documented schema (docs/score.md).
public struct ScoreReport: Sendable, Equatable {
    /// The merge first, then its parents.
    public let models: [ScoredModel]
    public let texts: [TextScore]
    public let contextLength: Int
    /// `--chunks`, when given.
    public let maxChunks: Int?
    public let threads: Int
    /// Wall time of the whole score, loading and tokenization included.
    public let seconds: Double
    /// Peak resident memory of the process when the report was made, if known.
    public var peakResidentBytes: Int?

    public init(models: [ScoredModel], texts: [TextScore], contextLength: Int, maxChunks: Int?, threads: Int, seconds: Double,
                peakResidentBytes: Int?) {
        self.models = models
        self.texts = texts
        self.contextLength = contextLength
        self.maxChunks = maxChunks
        self.threads = threads
        self.seconds = seconds
        self.peakResidentBytes = peakResidentBytes
    }
}

extension ScoreVerdict {
    /// The verdict rule (docs/score.md): the best model has the lowest bits per byte (the same order as PPL among
    /// models that share a tokenization); the merge is compared with the parent that has the lowest bits per byte.
    /// When the two share a tokenization the difference is ln(PPL_merge / PPL_parent), and it counts only when its
    /// magnitude exceeds the paired error (σ of the mean per-token NLL difference, as llama.cpp derives it);
    /// otherwise they are "within noise". Without a shared tokenization there is no paired error and bits per byte
    /// are compared as they are.
    public init(models: [ScoredModel], results: [ModelTextScore], comparisons: [ParentComparison]) {
        func rank(_ i: Int) -> Double { results[i].bitsPerByte.isNaN ? .infinity : results[i].bitsPerByte }
        let best = results.indices.min { rank($0) < rank($1) } ?? 0
        let parents = Array(results.indices.dropFirst())
        let bestParent = parents.min { rank($0) < rank($1) } ?? 0
        let worseThanAll = !parents.isEmpty && parents.allSatisfy { rank(0) > rank($0) }
        let merge = models[0].name, parent = models[bestParent].name
        func f(_ x: Double) -> String { ScoreFormat.perplexity(x) }
        let all = parents.count > 1 ? "all \(parents.count) parents" : "its parent"

        guard let stats = comparisons.first(where: { $0.parent == bestParent })?.statistics else {
            let bpb = "bits per byte \(ScoreFormat.bitsPerByte(results[0].bitsPerByte)) against "
                + "\(ScoreFormat.bitsPerByte(results[bestParent].bitsPerByte))"
            let direction = rank(0) < rank(bestParent) ? "better" : rank(0) > rank(bestParent) ? "worse" : "level"
            let tail = worseThanAll ? " The merge is worse than \(all)." : ""
            self.init(best: best, bestParent: bestParent, outcome: .notComparable, logPerplexityRatio: nil,
                      worseThanAllParents: worseThanAll,
                      summary: "\(merge) and its best parent \(parent) tokenize the text differently, so there is no paired error; "
                          + "by \(bpb), the merge is \(direction)." + tail)
            return
        }
        let ratio = stats.logPerplexityRatio
        let ppl = "PPL \(f(results[0].perplexity)) against \(f(results[bestParent].perplexity))"
        let shown = "ln(PPL ratio) \(ScoreFormat.logRatio(ratio.mean)) ± \(ScoreFormat.logRatioError(ratio.error))"
        let outcome: ScoreVerdict.Outcome
        var summary: String
        if !(abs(ratio.mean) > ratio.error) {
            outcome = .withinNoise
            summary = "\(merge) and its best parent \(parent) are within noise: \(ppl), \(shown) is not larger than its paired error."
            if worseThanAll && parents.count > 1 { summary += " Its PPL is above every parent's, but not beyond the noise against the "
                + "best." }
        } else if ratio.mean < 0 {
            outcome = .better
            summary = "\(merge) is better than its best parent \(parent): \(ppl), \(shown)."
        } else {
            outcome = .worse
            summary = "\(merge) is worse than its best parent \(parent): \(ppl), \(shown)."
            if worseThanAll && parents.count > 1 { summary += " The merge is worse than \(all)." }
        }
        self.init(best: best, bestParent: bestParent, outcome: outcome, logPerplexityRatio: ratio,
                  worseThanAllParents: worseThanAll, summary: summary)
    }
}
