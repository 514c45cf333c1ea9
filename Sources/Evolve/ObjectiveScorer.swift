import Evaluation
import Foundation
import Host
import Inference
import Recipes
import Tokenization

/// Which part of each objective text is scored.
public enum TextPart: String, Sendable {
    /// The start of each text: what the search optimises.
    case search
    /// The end of each text (`held_out`): scored only at the end, to see whether the search generalised.
    case heldOut = "held_out"
}

/// One text's score for one model on one part.
public struct TextValue: Sendable, Equatable {
    public let text: String
    public let metric: EvolveMetric
    /// The metric's value (what enters the fitness).
    public let value: Double
    public let perplexity: Double
    public let bitsPerByte: Double
    /// Mean KL divergence from the reference (kl_divergence texts only).
    public let klDivergence: Double?
    public let tokensScored: Int
}

/// A text of the objective cut into its search and held-out parts. The cut is a line break near `1 − held_out` of the
/// text's bytes, so neither part starts mid-line.
public struct SplitText: Sendable {
    public let objective: ObjectiveText
    public let name: String
    public let search: String
    public let heldOut: String

    public init(_ objective: ObjectiveText, heldOut share: Double) throws {
        self.objective = objective
        name = URL(fileURLWithPath: objective.path).lastPathComponent
        let data: Data
        do { data = try RegularFile.read(objective.path) } catch let e as RegularFile.Failure {
            throw EvaluationError.unreadableData(path: objective.path, reason: e.notFound ? "no such file" : e.reason)
        }
        let text = PerplexityProtocol.text(fromFileBytes: [UInt8](data))
        let bytes = Array(text.utf8)
        var cut = Int(Double(bytes.count) * (1 - share))
        while cut < bytes.count && bytes[cut] != 0x0A { cut += 1 }
        // Never split a UTF-8 sequence (a file without line breaks is cut at the nearest character start).
        if cut >= bytes.count { cut = Int(Double(bytes.count) * (1 - share)); while cut > 0 && bytes[cut] & 0xC0 == 0x80 { cut -= 1 } }
        search = String(decoding: bytes[0..<cut], as: UTF8.self)
        heldOut = String(decoding: bytes[cut...], as: UTF8.self)
    }

    public func text(_ part: TextPart) -> String { part == .search ? search : heldOut }
}

/// The objective's texts tokenized by one tokenizer, ready to be scored by any model that shares it: windows per
/// part (llama.cpp's perplexity protocol, as `crucible ppl`), each token's byte length for bits per byte, and the
/// reference logits of `kl_divergence` texts.
public final class ObjectiveScorer {
    struct Part {
        let tokens: [Int]
        let windows: Int
        let evaluator: PerplexityEvaluator
        var reference: LogitsFile?
    }

    public let texts: [SplitText]
    let contextLength: Int
    let threads: Int
    var parts: [TextPart: [Part]] = [:]
    let pieceLengths: [Int]
    /// Notes about the windows (a part shorter than asked).
    public private(set) var notes: [String] = []

    public init(texts: [SplitText], tokenizer: Tokenizer, vocabSize: Int, contextLength: Int, threads: Int) throws {
        self.texts = texts
        self.contextLength = contextLength
        self.threads = threads
        pieceLengths = (0..<vocabSize).map { tokenizer.pieceBytes($0).count }
        let bos = tokenizer.addsBOS ? tokenizer.bosID : nil
        for part in [TextPart.search, .heldOut] {
            var list: [Part] = []
            for t in texts {
                let tokens = tokenizer.encode(t.text(part), addSpecial: true, parseSpecial: false)
                let wanted = part == .search ? t.objective.windows : t.objective.heldOutWindows
                let available = tokens.count / contextLength
                guard available >= 1 else {
                    throw EvolveError.invalidConfig("\(t.objective.location): the \(part == .search ? "search" : "held-out") part of "
                        + "\(t.objective.path) is \(tokens.count) tokens, less than one window of \(contextLength); use a longer text, "
                        + "a smaller `context` or another `held_out` share")
                }
                if available < wanted {
                    notes.append("\(t.name): the \(part == .search ? "search" : "held-out") part holds \(available) windows of "
                        + "\(contextLength) tokens, fewer than the \(wanted) asked; all \(available) are used")
                }
                let options = PerplexityOptions(contextLength: contextLength, batchSize: contextLength, maxChunks: min(wanted, available),
                                                bosToken: bos, threads: threads)
                let evaluator = PerplexityEvaluator(options: options)
                list.append(Part(tokens: tokens, windows: try evaluator.windowCount(tokenCount: tokens.count), evaluator: evaluator,
                                 reference: nil))
            }
            parts[part] = list
        }
    }

    public var vocabularySize: Int { pieceLengths.count }

    /// Windows scored per candidate (search part, all texts).
    public var searchWindows: Int { parts[.search]!.reduce(0) { $0 + $1.windows } }

    /// Whether `tokenizer` turns every part into the same tokens as this scorer's (so its reference logits apply).
    public func sameTokens(as other: ObjectiveScorer) -> Bool {
        [TextPart.search, .heldOut].allSatisfy { p in zip(parts[p]!, other.parts[p]!).allSatisfy { $0.tokens == $1.tokens } }
    }

    /// Computes the reference model's logits for every `kl_divergence` text and keeps them in files in `folder`
    /// (llama.cpp's KL base format), memory-mapped while scoring.
    public func prepareReferences(folder: String, model: (ObjectiveText) throws -> LanguageModel) throws {
        for (i, t) in texts.enumerated() where t.objective.metric == .klDivergence {
            let reference = try model(t.objective)
            let cache = reference.makeCache(capacity: contextLength)
            for part in [TextPart.search, .heldOut] {
                let p = parts[part]![i]
                guard reference.config.vocabSize == pieceLengths.count else {
                    throw EvolveError.invalidConfig("\(t.objective.location): the reference model has \(reference.config.vocabSize) "
                        + "tokens in its vocabulary, the merge \(pieceLengths.count)")
                }
                let path = (folder as NSString).appendingPathComponent("reference-\(i)-\(part.rawValue).logits")
                let writer = try LogitsFileWriter(path: path, contextLength: contextLength, vocabSize: reference.config.vocabSize,
                                                  chunks: p.windows, tokens: p.tokens)
                let logits = p.evaluator.modelLogits(reference, cache: cache)
                for c in 0..<p.windows {
                    let w = p.evaluator.window(c, of: p.tokens)
                    let out = try logits(w.input, w.firstLogit)
                    try out.values.withUnsafeBufferPointer {
                        try writer.append(logits: UnsafeBufferPointer(rebasing: $0[0..<(w.targets.count * out.vocabSize)]),
                                          rows: w.targets.count)
                    }
                }
                try writer.close()
                parts[part]![i].reference = try LogitsFile(path: path)
            }
        }
    }

    /// Uses `other`'s reference logits (same tokens) instead of computing them again.
    public func shareReferences(from other: ObjectiveScorer) {
        for p in [TextPart.search, .heldOut] {
            for i in parts[p]!.indices { parts[p]![i].reference = other.parts[p]![i].reference }
        }
    }

    /// Scores `model` on every text's `part`. A `kl_divergence` text without reference logits (another tokenizer)
    /// gets a NaN value.
    public func score(_ model: LanguageModel, cache: KVCache, part: TextPart) throws -> [TextValue] {
        var out: [TextValue] = []
        for (t, p) in zip(texts, parts[part]!) {
            var stats = NLLStatistics()
            var bytes = 0
            var kl = p.reference.map { _ in KLDivergenceAccumulator() }
            let logits = p.evaluator.modelLogits(model, cache: cache)
            for c in 0..<p.windows {
                let w = p.evaluator.window(c, of: p.tokens)
                let l = try logits(w.input, w.firstLogit)
                let s = try p.evaluator.score(l, window: w)
                for nll in s.nll { stats.add(nll) }
                bytes += w.targets.reduce(0) { $0 + pieceLengths[$1] }
                if let ref = p.reference {
                    let v = l.vocabSize
                    l.values.withUnsafeBufferPointer { all in
                        for i in 0..<w.targets.count {
                            kl?.add(logits: UnsafeBufferPointer(rebasing: all[(i * v)..<((i + 1) * v)]),
                                    record: ref.record(chunk: c, position: i), target: w.targets[i])
                        }
                    }
                }
            }
            let ppl = stats.perplexity
            let bpb = stats.sum / log(2) / Double(max(bytes, 1))
            let klMean = kl.map { $0.report.meanKLD.mean }
            let value: Double
            switch t.objective.metric {
            case .perplexity: value = ppl
            case .bitsPerByte: value = bpb
            case .klDivergence: value = klMean ?? .nan
            }
            guard ppl.isFinite else { throw EvaluationError.nonFinite(reason: "the perplexity on \(t.name) is not finite") }
            out.append(TextValue(text: t.name, metric: t.objective.metric, value: value, perplexity: ppl, bitsPerByte: bpb,
                                 klDivergence: klMean, tokensScored: stats.count))
        }
        return out
    }

    /// The objective's fitness (lower is better): Σ weight · value, a `maximize` text's value negated.
    public func fitness(_ values: [TextValue]) -> Double {
        zip(texts, values).reduce(0) { $0 + $1.0.objective.weight * ($1.0.objective.maximize ? -$1.1.value : $1.1.value) }
    }
}

/// Why an evolve run cannot go on.
public enum EvolveError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(String)
    case output(String)
    case resume(String)

    public var description: String {
        switch self {
        case let .invalidConfig(m): return m
        case let .output(m): return m
        case let .resume(m): return m
        }
    }
}
