import Foundation
import Inference
import Tensors

/// Settings of a perplexity run (llama.cpp's `-c`, `-b`, `--chunks`).
public struct PerplexityOptions: Sendable, Equatable {
    /// Window length `n_ctx`.
    public var contextLength: Int
    /// Tokens per forward call. Below `contextLength` a window is fed in pieces through the KV cache;
    /// above it llama.cpp batches several windows, which changes nothing in the result, so windows
    /// are then simply evaluated one after another.
    public var batchSize: Int
    /// Evaluate only the first N windows.
    public var maxChunks: Int?
    /// The BOS id written over each window's first token, or nil when the vocabulary adds no BOS.
    public var bosToken: Int?
    /// Cores used to score the rows of a window (the model has its own setting).
    public var threads: Int

    public init(contextLength: Int = 512, batchSize: Int = 512, maxChunks: Int? = nil, bosToken: Int? = nil,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.contextLength = contextLength
        self.batchSize = batchSize
        self.maxChunks = maxChunks
        self.bosToken = bosToken
        self.threads = max(1, threads)
    }
}

/// Progress after each window (the running PPL is cumulative over all targets so far, as llama.cpp prints).
public struct PerplexityProgress: Sendable {
    public let chunk: Int
    public let chunks: Int
    public let runningPerplexity: Double
    public let seconds: Double
    /// Window tokens processed per second so far.
    public let tokensPerSecond: Double
}

/// The outcome of a perplexity run.
public struct PerplexityResult: Sendable {
    public let perplexity: Double
    /// llama.cpp's ± (PPL · σ of the mean NLL).
    public let standardError: Double
    public let meanNLL: Double
    public let tokensScored: Int
    public let chunks: Int
    public let contextLength: Int
    /// Wall time of the evaluation (tokenization excluded).
    public let seconds: Double
    /// Window tokens processed per second (chunks · ctx / seconds).
    public let promptTokensPerSecond: Double
    /// Present when the run compared against a saved logits file.
    public let klDivergence: KLDivergenceReport?
}

/// Logits for one window: called with the window's `ctx` tokens (BOS already written) and the first
/// position whose logits are needed; returns rows `firstLogit ..< ctx`.
public typealias WindowLogits = (_ window: [Int], _ firstLogit: Int) throws -> Logits

/// Runs llama.cpp's perplexity protocol over a token stream (see `PerplexityProtocol`).
public struct PerplexityEvaluator {
    public let options: PerplexityOptions

    public init(options: PerplexityOptions) {
        self.options = options
    }

    /// Scores `tokens` (the whole text, tokenized once) window by window.
    /// - Parameters:
    ///   - logits: computes a window's logits (a model, or synthetic logits in tests).
    ///   - saveLogits: receives every scored row (llama.cpp's `--kl-divergence-base` file).
    ///   - reference: a saved base whose records are compared with these logits (`--kl-divergence`).
    public func evaluate(tokens: [Int], logits: WindowLogits, saveLogits: LogitsFileWriter? = nil,
                         reference: LogitsFile? = nil, progress: ((PerplexityProgress) -> Void)? = nil) throws -> PerplexityResult {
        let ctx = options.contextLength
        let chunks = try PerplexityProtocol.chunkCount(tokenCount: tokens.count, contextLength: ctx, maxChunks: options.maxChunks)
        let first = PerplexityProtocol.firstScored(contextLength: ctx)
        let scored = PerplexityProtocol.scoredPerChunk(contextLength: ctx)
        if let reference {
            guard reference.contextLength == ctx else {
                throw EvaluationError.logitsFileMismatch(path: reference.path, reason: "saved with n_ctx \(reference.contextLength), this run uses \(ctx)")
            }
            guard chunks <= reference.chunkCount else {
                throw EvaluationError.logitsFileMismatch(path: reference.path, reason: "holds \(reference.chunkCount) chunks, \(chunks) requested")
            }
        }
        var stats = NLLStatistics()
        var kl = reference.map { _ in KLDivergenceAccumulator() }
        let started = Date()
        for c in 0..<chunks {
            let window = PerplexityProtocol.chunk(tokens, index: c, contextLength: ctx, bos: options.bosToken)
            let out = try logits(window, first)
            guard out.rows == ctx - first else {
                throw EvaluationError.invalidOption("window logits returned \(out.rows) rows, expected \(ctx - first)")
            }
            if let reference, out.vocabSize != reference.vocabSize {
                throw EvaluationError.logitsFileMismatch(path: reference.path, reason: "vocabulary of \(reference.vocabSize) tokens, the model has \(out.vocabSize)")
            }
            let v = out.vocabSize
            // Targets are the stream's own tokens (the BOS overwrite only touches position 0).
            let targets = Array(tokens[(c * ctx + first + 1)..<(c * ctx + first + 1 + scored)])
            if let bad = targets.firstIndex(where: { $0 < 0 || $0 >= v }) {
                throw EvaluationError.invalidOption("token \(targets[bad]) at \(c * ctx + first + 1 + bad) is outside the vocabulary of \(v)")
            }
            try out.values.withUnsafeBufferPointer { all in
                // Rows are scored in parallel, then added in order, so the sum does not depend on scheduling.
                var nlls = [Double](repeating: 0, count: scored)
                nlls.withUnsafeMutableBufferPointer { dest in
                    let d = dest.baseAddress!
                    parallelFor(scored, threads: options.threads) { i in
                        let row = UnsafeBufferPointer(rebasing: all[(i * v)..<((i + 1) * v)])
                        d[i] = PerplexityProtocol.negativeLogLikelihood(row, target: targets[i])
                    }
                }
                for i in 0..<scored {
                    stats.add(nlls[i])
                    if let reference {
                        let row = UnsafeBufferPointer(rebasing: all[(i * v)..<((i + 1) * v)])
                        kl?.add(logits: row, record: reference.record(chunk: c, position: i), target: targets[i])
                    }
                }
                try saveLogits?.append(logits: UnsafeBufferPointer(rebasing: all[0..<(scored * v)]), rows: scored)
            }
            let elapsed = Date().timeIntervalSince(started)
            progress?(PerplexityProgress(chunk: c + 1, chunks: chunks, runningPerplexity: stats.perplexity,
                                         seconds: elapsed, tokensPerSecond: Double((c + 1) * ctx) / max(elapsed, 1e-9)))
        }
        let seconds = Date().timeIntervalSince(started)
        return PerplexityResult(
            perplexity: stats.perplexity, standardError: stats.perplexityStandardError, meanNLL: stats.mean,
            tokensScored: stats.count, chunks: chunks, contextLength: ctx, seconds: seconds,
            promptTokensPerSecond: Double(chunks * ctx) / max(seconds, 1e-9), klDivergence: kl?.report)
    }

    /// Window logits from a model: one KV cache reused for every window, the window fed in pieces of
    /// `batchSize` tokens, logits computed only for the scored half.
    /// `observer` sees every forward call's taps (router logits for `--routing`), told where each window starts.
    public func modelLogits(_ model: LanguageModel, observer: ForwardObserver? = nil) -> WindowLogits {
        let cache = model.makeCache(capacity: options.contextLength)
        let batch = max(1, min(options.batchSize, options.contextLength))
        let tap: HiddenStateTap? = observer.map { o in { point, rows in o.observe(point, rows) } }
        return { window, firstLogit in
            cache.reset()
            observer?.beginSequence()
            var collected: [Float] = []
            var start = 0
            while start < window.count {
                let end = min(window.count, start + batch)
                let from = max(0, firstLogit - start)
                let piece = try model.forward(Array(window[start..<end]), cache: cache, logitsFrom: min(from, end - start), tap: tap)
                if end - start > from && piece.rows > 0 {
                    if start == 0 && end == window.count { return piece }
                    collected += piece.values
                }
                start = end
            }
            return Logits(rows: window.count - firstLogit, vocabSize: model.config.vocabSize, values: collected)
        }
    }
}
