import Foundation
import Host
import Inference

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

/// One window of the protocol: what the model reads and what its scored rows predict.
public struct PerplexityWindow: Sendable {
    /// The window's number (0-based).
    public let index: Int
    /// The `ctx` tokens fed to the model, BOS already written over the first when the vocabulary adds one.
    public let input: [Int]
    /// The first position whose logits are scored (`ctx / 2`).
    public let firstLogit: Int
    /// The tokens predicted by rows `firstLogit ..< ctx − 1` (`ctx/2 − 1` of them).
    public let targets: [Int]
}

/// A scored window: per scored row, its summary (max, top token, Σexp) and its NLL.
public struct WindowScores: Sendable {
    public let nll: [Double]
    public let summaries: [LogitRowSummary]
}

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
        let chunks = try windowCount(tokenCount: tokens.count)
        if let reference {
            guard reference.contextLength == ctx else {
                throw EvaluationError.logitsFileMismatch(path: reference.path,
                                                         reason: "saved with n_ctx \(reference.contextLength), this run uses \(ctx)")
            }
            guard chunks <= reference.chunkCount else {
                throw EvaluationError.logitsFileMismatch(path: reference.path,
                                                         reason: "holds \(reference.chunkCount) chunks, \(chunks) requested")
            }
        }
        var stats = NLLStatistics()
        var kl = reference.map { _ in KLDivergenceAccumulator() }
        let started = Date()
        for c in 0..<chunks {
            let window = self.window(c, of: tokens)
            let out = try logits(window.input, window.firstLogit)
            if let reference, out.vocabSize != reference.vocabSize {
                throw EvaluationError.logitsFileMismatch(path: reference.path,
                    reason: "vocabulary of \(reference.vocabSize) tokens, the model has \(out.vocabSize)")
            }
            let scores = try score(out, window: window)
            let v = out.vocabSize
            out.values.withUnsafeBufferPointer { all in
                for i in 0..<scores.nll.count {
                    stats.add(scores.nll[i])
                    if let reference {
                        let row = UnsafeBufferPointer(rebasing: all[(i * v)..<((i + 1) * v)])
                        kl?.add(logits: row, record: reference.record(chunk: c, position: i), target: window.targets[i])
                    }
                }
            }
            try out.values.withUnsafeBufferPointer { all in
                try saveLogits?.append(logits: UnsafeBufferPointer(rebasing: all[0..<(window.targets.count * v)]),
                                       rows: window.targets.count)
            }
            let elapsed = Date().timeIntervalSince(started)
            progress?(PerplexityProgress(chunk: c + 1, chunks: chunks, runningPerplexity: stats.perplexity,
                                         seconds: elapsed, tokensPerSecond: Double((c + 1) * ctx) / max(elapsed, 1e-9)))
        }
        let seconds = Date().timeIntervalSince(started)
        // Finite NLLs can still average past ~709 nats, where exp overflows: that is no perplexity to report.
        guard stats.perplexity.isFinite else {
            throw EvaluationError.nonFinite(reason: "the mean NLL is \(stats.mean) nats per token, so exp(mean) overflows; "
                + "the model's predictions are hopelessly far from the text (check its weights and config)")
        }
        return PerplexityResult(
            perplexity: stats.perplexity, standardError: stats.perplexityStandardError, meanNLL: stats.mean,
            tokensScored: stats.count, chunks: chunks, contextLength: ctx, seconds: seconds,
            promptTokensPerSecond: Double(chunks * ctx) / max(seconds, 1e-9), klDivergence: kl?.report)
    }

    // MARK: - One window at a time (`evaluate` is these steps in a loop; `crucible score` interleaves models)

    /// The number of windows evaluated for a stream of `tokenCount` tokens (`PerplexityProtocol.chunkCount`).
    public func windowCount(tokenCount: Int) throws -> Int {
        try PerplexityProtocol.chunkCount(tokenCount: tokenCount, contextLength: options.contextLength, maxChunks: options.maxChunks)
    }

    /// Window `index` of `tokens`: the `ctx` tokens fed to the model (BOS written over the first when the
    /// vocabulary adds one) and the stream's own tokens its scored rows predict.
    public func window(_ index: Int, of tokens: [Int]) -> PerplexityWindow {
        let ctx = options.contextLength
        let first = PerplexityProtocol.firstScored(contextLength: ctx)
        let scored = PerplexityProtocol.scoredPerChunk(contextLength: ctx)
        // Targets are the stream's own tokens (the BOS overwrite only touches position 0).
        let start = index * ctx + first + 1
        return PerplexityWindow(index: index, input: PerplexityProtocol.chunk(tokens, index: index, contextLength: ctx,
                                                                              bos: options.bosToken),
                                firstLogit: first, targets: Array(tokens[start..<(start + scored)]))
    }

    /// Scores a window's logits (rows `firstLogit ..< ctx`): a summary and the NLL of every scored row, rows
    /// in parallel (each row's value does not depend on scheduling). Checks the row count and that every target
    /// is inside the vocabulary.
    public func score(_ logits: Logits, window: PerplexityWindow) throws -> WindowScores {
        let ctx = options.contextLength
        guard logits.rows == ctx - window.firstLogit else {
            throw EvaluationError.invalidOption("window logits returned \(logits.rows) rows, expected \(ctx - window.firstLogit)")
        }
        let v = logits.vocabSize
        let targets = window.targets
        if let bad = targets.firstIndex(where: { $0 < 0 || $0 >= v }) {
            throw EvaluationError.invalidOption("token \(targets[bad]) at \(window.index * ctx + window.firstLogit + 1 + bad) is outside "
                + "the vocabulary of \(v)")
        }
        let scored = targets.count
        var nlls = [Double](repeating: 0, count: scored)
        var summaries = [LogitRowSummary](repeating: LogitRowSummary(maxLogit: 0, top: 0, sumExp: 0), count: scored)
        logits.values.withUnsafeBufferPointer { all in
            nlls.withUnsafeMutableBufferPointer { dest in
                summaries.withUnsafeMutableBufferPointer { sums in
                    let d = dest.baseAddress!, s = sums.baseAddress!
                    parallelFor(scored, threads: options.threads) { i in
                        let row = UnsafeBufferPointer(rebasing: all[(i * v)..<((i + 1) * v)])
                        let summary = PerplexityProtocol.summarize(row)
                        s[i] = summary
                        d[i] = summary.negativeLogLikelihood(row, target: targets[i])
                    }
                }
            }
        }
        // A NaN or infinite NLL would make the whole score meaningless: say where and why instead.
        if let i = nlls.firstIndex(where: { !$0.isFinite }) {
            let position = window.index * ctx + window.firstLogit + 1 + i
            let bad = logits.values[(i * v)..<((i + 1) * v)].filter { !$0.isFinite }.count
            let why = bad > 0
                ? "the model's logits for token \(position) (window \(window.index + 1)) hold \(bad) NaN or infinite values; "
                    + "check the model's weights and config (e.g. rms_norm_eps)"
                : "token \(position) (window \(window.index + 1)) gets probability 0 (NLL \(nlls[i])); the logits are too extreme to score"
            throw EvaluationError.nonFinite(reason: why)
        }
        return WindowScores(nll: nlls, summaries: summaries)
    }

    /// Window logits from a model: one KV cache reused for every window, the window fed in pieces of
    /// `batchSize` tokens, logits computed only for the scored half.
    /// - Parameters:
    ///   - cache: a cache of at least `contextLength` positions to use instead of a new one; models of the same shape
    ///     that run one after another can share it (it is reset before every window).
    ///   - observer: sees every forward call's taps (router logits for `--routing`), told where each window starts.
    public func modelLogits(_ model: LanguageModel, cache: KVCache? = nil, observer: ForwardObserver? = nil) -> WindowLogits {
        let cache = cache ?? model.makeCache(capacity: options.contextLength)
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
