import Foundation

/// Everything that can stop an evaluation; each case says what to change.
public enum EvaluationError: Error, CustomStringConvertible, Equatable, Sendable {
    case tooFewTokens(tokens: Int, contextLength: Int)
    case invalidOption(String)
    case unreadableData(path: String, reason: String)
    case invalidLogitsFile(path: String, reason: String)
    case logitsFileMismatch(path: String, reason: String)
    case writeFailed(path: String, reason: String)
    /// The model's numbers broke down (NaN or infinite logits, or a target with probability 0): never reported as a score.
    case nonFinite(reason: String)

    public var description: String {
        switch self {
        case let .tooFewTokens(tokens, ctx):
            return "the text has \(tokens) tokens, fewer than one full window of --ctx \(ctx); use a longer text or a smaller --ctx"
        case let .invalidOption(message): return message
        case let .unreadableData(path, reason): return "\(path): cannot be read: \(reason)"
        case let .invalidLogitsFile(path, reason): return "\(path): not a valid llama.cpp logits file: \(reason)"
        case let .logitsFileMismatch(path, reason): return "\(path): does not match this model: \(reason)"
        case let .writeFailed(path, reason): return "\(path): cannot write: \(reason)"
        case let .nonFinite(reason): return "the perplexity is not a finite number: \(reason)"
        }
    }
}

/// The rules of llama.cpp's `llama-perplexity` (examples/perplexity/perplexity.cpp, build 4748), kept
/// in one place so the evaluator, the KL mode and the tests share them:
/// whole-text tokenization, `floor(n / ctx)` non-overlapping chunks, BOS written over each chunk's first
/// token when the vocabulary adds BOS, and only the second half of each window scored.
public enum PerplexityProtocol {
    /// Text as llama.cpp's `-f` reads it: raw bytes with one trailing `\n` removed (only one, and a `\r`
    /// before it stays). Invalid UTF-8 is replaced, as `std::string` → tokenizer would see those bytes.
    public static func text(fromFileBytes bytes: [UInt8]) -> String {
        var b = bytes[...]
        if b.last == UInt8(ascii: "\n") { b = b.dropLast() }
        return String(decoding: b, as: UTF8.self)
    }

    /// Number of chunks evaluated: `floor(tokens / ctx)`, capped by `maxChunks`. Throws when not even
    /// one full window fits (llama.cpp itself asks for two; one is enough to score ctx/2 − 1 tokens).
    public static func chunkCount(tokenCount: Int, contextLength: Int, maxChunks: Int?) throws -> Int {
        guard contextLength >= 4 else { throw EvaluationError.invalidOption("--ctx must be at least 4, got \(contextLength)") }
        let available = tokenCount / contextLength
        guard available >= 1 else { throw EvaluationError.tooFewTokens(tokens: tokenCount, contextLength: contextLength) }
        if let maxChunks {
            guard maxChunks >= 1 else { throw EvaluationError.invalidOption("--chunks must be at least 1, got \(maxChunks)") }
            return min(available, maxChunks)
        }
        return available
    }

    /// The first position whose logits are used: `ctx / 2`.
    public static func firstScored(contextLength: Int) -> Int { contextLength / 2 }

    /// Targets per chunk: the logits at `ctx/2 ... ctx-2` predict tokens `ctx/2+1 ... ctx-1`
    /// (255 for a 512-token window).
    public static func scoredPerChunk(contextLength: Int) -> Int {
        contextLength - firstScored(contextLength: contextLength) - 1
    }

    /// The tokens evaluated for chunk `index`: `tokens[index·ctx ..< (index+1)·ctx]` with the first one
    /// replaced by `bos` when the vocabulary adds BOS (replaced, not inserted: the window stays `ctx` long).
    public static func chunk(_ tokens: [Int], index: Int, contextLength: Int, bos: Int?) -> [Int] {
        var window = Array(tokens[(index * contextLength)..<((index + 1) * contextLength)])
        if let bos { window[0] = bos }
        return window
    }

    /// llama.cpp's per-target NLL: `log Σ exp(l_j − l_max) + l_max − l_target`, the differences and
    /// `exp` in float32, the sum in double.
    public static func negativeLogLikelihood(_ logits: UnsafeBufferPointer<Float>, target: Int) -> Double {
        summarize(logits).negativeLogLikelihood(logits, target: target)
    }

    /// One pass over a row of logits: its largest value, the first token holding it, and `Σ exp(l_j − l_max)`
    /// (float differences and `expf`, double sum, as llama.cpp scores).
    public static func summarize(_ logits: UnsafeBufferPointer<Float>) -> LogitRowSummary {
        var maxLogit = logits[0]
        var top = 0
        for j in 1..<max(1, logits.count) where logits[j] > maxLogit {
            maxLogit = logits[j]
            top = j
        }
        var sum = 0.0
        for v in logits { sum += Double(expf(v - maxLogit)) }
        return LogitRowSummary(maxLogit: maxLogit, top: top, sumExp: sum)
    }
}

/// What scoring needs from one row of logits, computed once (`PerplexityProtocol.summarize`) and shared by the
/// NLL and the comparisons of `crucible score`.
public struct LogitRowSummary: Sendable, Equatable {
    /// The largest logit.
    public let maxLogit: Float
    /// The first token holding the largest logit (the model's top token).
    public let top: Int
    /// `Σ_j exp(l_j − l_max)`, accumulated in double.
    public let sumExp: Double

    public init(maxLogit: Float, top: Int, sumExp: Double) {
        self.maxLogit = maxLogit
        self.top = top
        self.sumExp = sumExp
    }

    /// `log Σ_j exp(l_j)`, so that `log p_j = l_j − logNormalizer`.
    public var logNormalizer: Double { Double(maxLogit) + log(sumExp) }

    /// llama.cpp's NLL of `target` for the row this summarizes: `log Σ exp(l_j − l_max) − (l_target − l_max)`.
    public func negativeLogLikelihood(_ logits: UnsafeBufferPointer<Float>, target: Int) -> Double {
        -(Double(logits[target] - maxLogit) - log(sumExp))
    }
}

/// Running mean and spread of per-token NLL, accumulated in double, giving llama.cpp's figures:
/// `PPL = exp(mean)`, `± = PPL · sqrt(var / (N − 1))` with `var = Σnll²/N − mean²`.
public struct NLLStatistics: Sendable, Equatable {
    public private(set) var count = 0
    public private(set) var sum = 0.0
    public private(set) var sumOfSquares = 0.0

    public init() {}

    public mutating func add(_ nll: Double) {
        count += 1
        sum += nll
        sumOfSquares += nll * nll
    }

    public var mean: Double { count > 0 ? sum / Double(count) : .nan }
    public var perplexity: Double { exp(mean) }

    /// σ of the mean NLL (0 when fewer than two values or a non-positive variance, as llama.cpp prints).
    public var meanStandardError: Double {
        guard count > 1 else { return 0 }
        let variance = sumOfSquares / Double(count) - mean * mean
        return variance > 0 ? (variance / Double(count - 1)).squareRoot() : 0
    }

    /// The ± llama.cpp prints after the final PPL (first-order propagation through exp).
    public var perplexityStandardError: Double { perplexity * meanStandardError }
}
