import Foundation
import Host
import Inference
import Tokenization

/// A whole `crucible ppl` run from paths: open the model and its tokenizer, read and tokenize the text
/// (or take the tokens of a saved logits file), evaluate, optionally save or compare logits. The CLI and
/// the report generator both call this.
public struct PerplexityRun {
    /// A checkpoint folder or `.gguf` file.
    public var modelPath: String
    /// The text file scored (ignored when `klReferencePath` is set: the tokens come from that file).
    public var dataPath: String?
    public var contextLength: Int = 512
    public var batchSize: Int = 512
    public var maxChunks: Int?
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Write llama.cpp's KL base file here.
    public var saveLogitsPath: String?
    /// Compare against this KL base file.
    public var klReferencePath: String?
    /// Where the tokenizer comes from when not from the model (a folder, tokenizer.json or .gguf): merges
    /// of GGUF parents carry no tokenizer files of their own.
    public var tokenizerPath: String?
    /// Sees the engine's taps while scoring (e.g. `RoutingStatistics`).
    public var observer: ForwardObserver?
    /// Receives warnings about the run's settings (e.g. `--ctx` above the model's `max_position_embeddings`).
    public var onWarning: ((String) -> Void)?

    public init(modelPath: String, dataPath: String?) {
        self.modelPath = modelPath
        self.dataPath = dataPath
    }

    /// Reads `path` the way llama.cpp's `-f` does and tokenizes it once: `addSpecial` (BOS iff the
    /// vocabulary adds it), `parseSpecial` false (`<s>` in the corpus is plain text).
    public static func tokens(ofTextFile path: String, tokenizer: Tokenizer) throws -> [Int] {
        let data: Data
        do { data = try RegularFile.read(path) } catch let e as RegularFile.Failure {
            throw EvaluationError.unreadableData(path: path, reason: e.notFound ? "no such file" : e.reason)
        }
        let text = PerplexityProtocol.text(fromFileBytes: [UInt8](data))
        return tokenizer.encode(text, addSpecial: true, parseSpecial: false)
    }

    /// Runs the evaluation. `progress` is called after every window.
    public func run(progress: ((PerplexityProgress) -> Void)? = nil) throws -> PerplexityResult {
        guard batchSize >= 1 else { throw EvaluationError.invalidOption("--batch must be at least 1, got \(batchSize)") }
        guard threads >= 1 else { throw EvaluationError.invalidOption("--threads must be at least 1, got \(threads)") }
        if saveLogitsPath != nil && klReferencePath != nil {
            throw EvaluationError.invalidOption("--save-logits and --kl-ref cannot be combined: save the base with one run, compare with "
                + "another")
        }
        let model = try LanguageModel(path: modelPath, threads: threads)
        try observer?.attach(to: model.config)
        let tokenizer = try TokenizerLoader.load(path: tokenizerPath ?? modelPath)
        let bos = tokenizer.addsBOS ? tokenizer.bosID : nil

        let tokens: [Int]
        var ctx = contextLength
        var reference: LogitsFile? = nil
        if let klReferencePath {
            let file = try LogitsFile(path: klReferencePath)
            guard file.vocabSize == model.config.vocabSize else {
                throw EvaluationError.logitsFileMismatch(path: klReferencePath,
                    reason: "saved with a vocabulary of \(file.vocabSize) tokens, \(modelPath) has \(model.config.vocabSize)")
            }
            tokens = file.tokens
            ctx = file.contextLength
            reference = file
        } else {
            guard let dataPath else { throw EvaluationError.invalidOption("--data FILE is required (unless --kl-ref gives the tokens)") }
            tokens = try Self.tokens(ofTextFile: dataPath, tokenizer: tokenizer)
        }
        if let limit = model.config.maxPositionEmbeddings, ctx > limit {
            onWarning?("--ctx \(ctx) is above the model's max_position_embeddings (\(limit)): "
                + "positions past \(limit) were never trained, so the perplexity may not mean much")
        }
        let options = PerplexityOptions(contextLength: ctx, batchSize: batchSize, maxChunks: maxChunks, bosToken: bos, threads: threads)
        let evaluator = PerplexityEvaluator(options: options)
        var writer: LogitsFileWriter? = nil
        if let saveLogitsPath {
            let chunks = try PerplexityProtocol.chunkCount(tokenCount: tokens.count, contextLength: ctx, maxChunks: maxChunks)
            writer = try LogitsFileWriter(path: saveLogitsPath, contextLength: ctx, vocabSize: model.config.vocabSize,
                                          chunks: chunks, tokens: tokens)
        }
        let result = try evaluator.evaluate(tokens: tokens, logits: evaluator.modelLogits(model, observer: observer), saveLogits: writer,
                                            reference: reference, progress: progress)
        try writer?.close()
        return result
    }
}

extension PerplexityResult {
    /// The `--json` object: ppl, ppl_stderr, tokens_scored, prompt_tokens_per_second, peak_rss_bytes,
    /// plus chunks, ctx, seconds and (KL mode) a `kl` object.
    public func json(peakResidentBytes: Int?) -> String {
        func num(_ v: Double) -> String { v.isFinite ? "\(v)" : "null" }
        var fields: [(String, String)] = [
            ("ppl", num(perplexity)), ("ppl_stderr", num(standardError)), ("tokens_scored", "\(tokensScored)"),
            ("prompt_tokens_per_second", num(promptTokensPerSecond)),
            ("peak_rss_bytes", peakResidentBytes.map { "\($0)" } ?? "null"),
            ("chunks", "\(chunks)"), ("ctx", "\(contextLength)"), ("seconds", num(seconds)), ("mean_nll", num(meanNLL)),
        ]
        if let kl = klDivergence {
            var k: [(String, String)] = [
                ("positions", "\(kl.positions)"),
                ("ppl_base", num(kl.basePerplexity)), ("ppl_base_stderr", num(kl.basePerplexityError)),
                ("ln_ppl_ratio", num(kl.logPerplexityRatio.mean)), ("ln_ppl_ratio_stderr", num(kl.logPerplexityRatio.error)),
                ("mean_kld", num(kl.meanKLD.mean)), ("mean_kld_stderr", num(kl.meanKLD.error)),
                ("same_top_p", num(kl.sameTop.mean)), ("same_top_p_stderr", num(kl.sameTop.error)),
                ("mean_delta_p", num(kl.meanProbabilityDelta.mean)), ("mean_delta_p_stderr", num(kl.meanProbabilityDelta.error)),
                ("rms_delta_p", num(kl.probabilityDeltaRMS.mean)), ("rms_delta_p_stderr", num(kl.probabilityDeltaRMS.error)),
            ]
            let keys = KLDivergenceReport.percentileKeys
            k.append(("kld_percentiles", "{" + zip(keys, kl.kldPercentiles).map { "\"\($0)\": \(num($1))" }.joined(separator: ", ") + "}"))
            let percentiles = zip(keys, kl.probabilityDeltaPercentiles).map { "\"\($0)\": \(num($1))" }
            k.append(("delta_p_percentiles", "{" + percentiles.joined(separator: ", ") + "}"))
            fields.append(("kl", "{" + k.map { "\"\($0)\": \($1)" }.joined(separator: ", ") + "}"))
        }
        return "{" + fields.map { "\"\($0)\": \($1)" }.joined(separator: ", ") + "}"
    }
}
