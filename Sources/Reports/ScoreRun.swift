import Evaluation
import Foundation
import Host
import Inference
import Tokenization

/// Progress after each window of `crucible score`.
public struct ScoreProgress: Sendable {
    /// The text being scored (its file name), 1-based index and count.
    public let text: String
    public let textIndex: Int
    public let textCount: Int
    /// Windows done on this text (1-based) and the most any model evaluates on it.
    public let window: Int
    public let windows: Int
    /// Seconds since the score started (loading included).
    public let seconds: Double
    /// Each model's name and running PPL on this text so far (NaN before its first window).
    public let running: [(name: String, perplexity: Double)]
}

/// A whole `crucible score` run: the merge and its parents are opened once, and every window of every text is
/// evaluated by each model in turn and compared at once, so no logits file is written and memory holds one
/// window of logits for the merge and one for the parent being compared.
///
/// Perplexity follows llama.cpp's protocol exactly as `crucible ppl` (it calls the same `PerplexityEvaluator`
/// steps). Models whose tokenizers turn the text into the same ids (and add BOS alike) share windows; the merge is
/// compared position by position (KL divergence from the full float logits, same top token, Δp, paired
/// ln PPL ratio) with each parent it shares windows and vocabulary size with. Other parents get perplexity and bits
/// per byte only.
public struct ScoreJob {
    /// The merged checkpoint (folder or `.gguf`).
    public var mergedPath: String
    /// The parents; nil reads them from the merged folder's recipe (`MergeParents`).
    public var parentPaths: [String]?
    /// The texts scored, each on its own.
    public var evalPaths: [String]
    /// Window length `n_ctx`.
    public var contextLength = 512
    /// Evaluate only the first N windows of each text.
    public var maxChunks: Int?
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// The merge's tokenizer (folder, tokenizer.json or .gguf) when not its own; also used for a parent that has none.
    public var tokenizerPath: String?
    /// Where relative parent references of a recorded recipe are looked up after the merged folder.
    public var workingDirectory = FileManager.default.currentDirectoryPath
    public var environment = ProcessInfo.processInfo.environment
    /// Receives warnings about the settings (`--ctx` above a model's `max_position_embeddings`).
    public var onWarning: ((String) -> Void)?

    public init(mergedPath: String, parentPaths: [String]? = nil, evalPaths: [String]) {
        self.mergedPath = mergedPath
        self.parentPaths = parentPaths
        self.evalPaths = evalPaths
    }

    /// Scores the merge and its parents on every text. `progress` is called after each window.
    public func run(progress: ((ScoreProgress) -> Void)? = nil) throws -> ScoreReport {
        let started = Date()
        guard contextLength >= 4 else { throw ScoreError.invalidOption("--ctx must be at least 4, got \(contextLength)") }
        if let maxChunks, maxChunks < 1 { throw ScoreError.invalidOption("--chunks must be at least 1, got \(maxChunks)") }
        guard threads >= 1 else { throw ScoreError.invalidOption("--threads must be at least 1, got \(threads)") }
        guard !evalPaths.isEmpty else { throw ScoreError.invalidOption("--eval FILE is required (one or more texts to score)") }
        for path in evalPaths where !FileManager.default.isReadableFile(atPath: path) {
            throw EvaluationError.unreadableData(path: path, reason: "no such file or not readable")
        }
        let parents = try parentPaths ?? MergeParents.resolveParents(inMergedFolder: mergedPath, workingDirectory: workingDirectory,
                                                                     environment: environment)
        guard !parents.isEmpty else { throw ScoreError.noParents(source: mergedPath) }
        var loaded = try openModels(merge: mergedPath, parents: parents)
        let models = loaded.map(\.description)
        for (m, path) in zip(loaded, [mergedPath] + parents) {
            if let limit = m.model.config.maxPositionEmbeddings, contextLength > limit {
                onWarning?("--ctx \(contextLength) is above \(path)'s max_position_embeddings (\(limit)): "
                    + "positions past \(limit) were never trained")
            }
        }
        // Models of one shape share a KV cache (they run one after another); every model hands its weight pages
        // back after each product, so only the model at work is resident.
        var caches: [String: KVCache] = [:]
        for m in loaded { m.model.releasesWeightPages = true }

        // Every text is tokenized by every model first; then the tokenizers (and whatever they cached) are let go,
        // keeping only the token streams and each token's byte length for bits per byte.
        var streams: [[[Int]]] = []
        for evalPath in evalPaths {
            streams.append(try loaded.map { try PerplexityRun.tokens(ofTextFile: evalPath, tokenizer: $0.tokenizer) })
        }
        let bos = loaded.map { $0.tokenizer.addsBOS ? $0.tokenizer.bosID : nil }
        let pieceLengths = loaded.map { m in (0..<m.model.config.vocabSize).map { m.tokenizer.pieceBytes($0).count } }
        loaded = loaded.map { OpenModel(description: $0.description, model: $0.model, tokenizer: nil) }

        var texts: [TextScore] = []
        for (t, evalPath) in evalPaths.enumerated() {
            let name = (evalPath as NSString).lastPathComponent
            let bytes = (try? FileManager.default.attributesOfItem(atPath: evalPath)[.size] as? Int) ?? 0
            var state = TextState(models: loaded.count)
            // Models with identical streams and BOS share windows.
            var groups: [TokenGroup] = []
            for (i, m) in loaded.enumerated() {
                let tokens = streams[t][i]
                state.tokenCounts[i] = tokens.count
                if let g = groups.firstIndex(where: { $0.bos == bos[i] && $0.tokens == tokens }) {
                    groups[g].members.append(i)
                    state.group[i] = g
                } else {
                    let options = PerplexityOptions(contextLength: contextLength, batchSize: contextLength, maxChunks: maxChunks,
                                                    bosToken: bos[i], threads: threads)
                    let evaluator = PerplexityEvaluator(options: options)
                    let windows: Int
                    do { windows = try evaluator.windowCount(tokenCount: tokens.count) } catch {
                        throw ScoreError.invalidOption("\(evalPath) with the tokenizer of \(m.description.name): \(error)")
                    }
                    state.group[i] = groups.count
                    groups.append(TokenGroup(tokens: tokens, bos: bos[i], members: [i], evaluator: evaluator, windows: windows))
                }
            }
            streams[t] = []
            let mergeGroup = state.group[0]
            for p in 1..<loaded.count {
                if state.group[p] != mergeGroup {
                    let a = state.tokenCounts[0], b = state.tokenCounts[p]
                    state.notComparable[p] = a == b
                        ? "its tokenizer turns \(name) into different token ids than the merge's (both \(a) tokens)"
                        : "its tokenizer turns \(name) into \(b) tokens, the merge's into \(a)"
                } else if loaded[p].model.config.vocabSize != loaded[0].model.config.vocabSize {
                    state.notComparable[p] = "its vocabulary has \(loaded[p].model.config.vocabSize) tokens, the merge's "
                        + "\(loaded[0].model.config.vocabSize)"
                } else {
                    state.kl[p] = KLDivergenceAccumulator()
                }
            }

            let windows = groups.map(\.windows).max() ?? 0
            for c in 0..<windows {
                for group in groups where c < group.windows {
                    let window = group.evaluator.window(c, of: group.tokens)
                    var mergeLogits: Logits? = nil
                    var mergeScores: WindowScores? = nil
                    for i in group.members {
                        let m = loaded[i]
                        let shape = "\(m.model.config.layerCount)x\(m.model.config.kvWidth)"
                        let cache = caches[shape] ?? m.model.makeCache(capacity: contextLength)
                        caches[shape] = cache
                        let logits: Logits
                        let scores: WindowScores
                        do {
                            logits = try group.evaluator.modelLogits(m.model, cache: cache)(window.input, window.firstLogit)
                            scores = try group.evaluator.score(logits, window: window)
                        } catch {
                            throw ScoreError.unreadableModel(path: m.description.path, reason: "window \(c + 1) of \(name): \(error)")
                        }
                        for nll in scores.nll { state.stats[i].add(nll) }
                        state.bytesScored[i] += window.targets.reduce(0) { $0 + pieceLengths[i][$1] }
                        state.running[i].append(state.stats[i].perplexity)
                        if i == 0 {
                            mergeLogits = logits
                            mergeScores = scores
                        } else if state.kl[i] != nil, let mergeLogits, let mergeScores {
                            for position in compare(merge: mergeLogits, mergeScores, parent: logits, scores, targets: window.targets) {
                                state.kl[i]!.add(position)
                            }
                        }
                        // Only the merge's logits are kept (until its parents are compared); a parent's buffer goes now.
                        if i != 0 { m.model.releaseLogitsStorage() }
                    }
                }
                progress?(ScoreProgress(text: name, textIndex: t + 1, textCount: evalPaths.count, window: c + 1, windows: windows,
                                        seconds: Date().timeIntervalSince(started),
                                        running: loaded.indices.map { (models[$0].name,
                                                                       state.stats[$0].count > 0 ? state.stats[$0].perplexity : .nan) }))
            }

            let results = loaded.indices.map { i in
                ModelTextScore(model: i, perplexity: state.stats[i].perplexity, perplexityError: state.stats[i].perplexityStandardError,
                               meanNLL: state.stats[i].mean,
                               bitsPerByte: state.stats[i].sum / log(2) / Double(state.bytesScored[i]),
                               tokensScored: state.stats[i].count, bytesScored: state.bytesScored[i],
                               windows: groups[state.group[i]].windows, tokenCount: state.tokenCounts[i],
                               tokenization: state.group[i], runningPerplexity: state.running[i])
            }
            let comparisons = (1..<loaded.count).map { p in
                ParentComparison(parent: p, statistics: state.kl[p]?.report, notComparableReason: state.notComparable[p])
            }
            texts.append(TextScore(path: evalPath, name: name, bytes: bytes, results: results, comparisons: comparisons,
                                   verdict: ScoreVerdict(models: models, results: results, comparisons: comparisons)))
        }
        return ScoreReport(models: models, texts: texts, contextLength: contextLength, maxChunks: maxChunks, threads: threads,
                           seconds: Date().timeIntervalSince(started), peakResidentBytes: peakResidentBytes())
    }

    // MARK: - Pieces

    private struct OpenModel {
        let description: ScoredModel
        let model: LanguageModel
        /// Until every text is tokenized.
        let tokenizer: Tokenizer!
    }

    private struct TokenGroup {
        let tokens: [Int]
        let bos: Int?
        var members: [Int]
        let evaluator: PerplexityEvaluator
        let windows: Int
    }

    private struct TextState {
        var stats: [NLLStatistics]
        var bytesScored: [Int]
        var running: [[Double]]
        var tokenCounts: [Int]
        var group: [Int]
        var kl: [KLDivergenceAccumulator?]
        var notComparable: [String?]
        init(models n: Int) {
            stats = Array(repeating: NLLStatistics(), count: n)
            bytesScored = Array(repeating: 0, count: n)
            running = Array(repeating: [], count: n)
            tokenCounts = Array(repeating: 0, count: n)
            group = Array(repeating: 0, count: n)
            kl = Array(repeating: nil, count: n)
            notComparable = Array(repeating: nil, count: n)
        }
    }

    /// Opens the merge and the parents with their tokenizers; names are the folder or file names, made unique.
    private func openModels(merge: String, parents: [String]) throws -> [OpenModel] {
        var seen: [String: Int] = [:]
        func uniqueName(_ path: String) -> String {
            let base = (URL(fileURLWithPath: path).standardizedFileURL.path as NSString).lastPathComponent
            let n = (seen[base] ?? 0) + 1
            seen[base] = n
            return n == 1 ? base : "\(base) (\(n))"
        }
        var result: [OpenModel] = []
        for (i, path) in ([merge] + parents).enumerated() {
            let role: ScoreRole = i == 0 ? .merge : .parent
            let model: LanguageModel
            do { model = try LanguageModel(path: path, threads: threads) } catch {
                throw ScoreError.unreadableModel(path: path, reason: "\(error)")
            }
            let tokenizer: Tokenizer
            var tokenizerSource = (i == 0 ? tokenizerPath : nil) ?? path
            do {
                tokenizer = try TokenizerLoader.load(path: tokenizerSource)
            } catch {
                guard i > 0, let fallback = tokenizerPath, let t = try? TokenizerLoader.load(path: fallback) else {
                    throw ScoreError.unreadableModel(path: path, reason: "its tokenizer cannot be loaded from \(tokenizerSource): \(error)"
                        + (tokenizerPath == nil ? " (give one with --tokenizer)" : ""))
                }
                tokenizer = t
                tokenizerSource = fallback
            }
            result.append(OpenModel(description: ScoredModel(name: uniqueName(path), role: role, path: path, tokenizerPath: tokenizerSource,
                                                             vocabSize: model.config.vocabSize),
                                    model: model, tokenizer: tokenizer))
        }
        return result
    }

    /// Measures every scored position of a window, the parent as the base and the merge as the candidate, rows in
    /// parallel; returned in position order so the accumulated sums do not depend on scheduling.
    private func compare(merge: Logits, _ mergeScores: WindowScores, parent: Logits, _ parentScores: WindowScores,
                         targets: [Int]) -> [KLPosition] {
        let n = targets.count, v = merge.vocabSize
        var positions = [KLPosition](repeating: KLPosition(nll: 0, baseNLL: 0, kld: 0, sameTop: false, probabilityDelta: 0), count: n)
        merge.values.withUnsafeBufferPointer { m in
            parent.values.withUnsafeBufferPointer { p in
                positions.withUnsafeMutableBufferPointer { out in
                    let o = out.baseAddress!
                    parallelFor(n, threads: threads) { i in
                        o[i] = KLPosition.measure(candidate: UnsafeBufferPointer(rebasing: m[(i * v)..<((i + 1) * v)]),
                                                  candidateSummary: mergeScores.summaries[i],
                                                  base: UnsafeBufferPointer(rebasing: p[(i * v)..<((i + 1) * v)]),
                                                  baseSummary: parentScores.summaries[i], target: targets[i])
                    }
                }
            }
        }
        return positions
    }
}
