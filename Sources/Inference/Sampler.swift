import Foundation
import Numerics

/// How the next token is chosen from logits.
public struct SamplingOptions: Sendable, Equatable {
    /// 0 means greedy (argmax); otherwise logits are divided by it before the softmax.
    public var temperature: Float
    /// Nucleus sampling: keep the most probable tokens whose cumulative probability reaches `topP`.
    public var topP: Float
    /// Keep tokens whose probability is at least `minP` times the top token's.
    public var minP: Float
    /// Seed of the SplitMix64 stream the draws come from.
    public var seed: UInt64

    public init(temperature: Float = 0, topP: Float = 1, minP: Float = 0, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topP = topP
        self.minP = minP
        self.seed = seed
    }
}

/// Picks tokens from logits: greedy at temperature 0, else temperature → top-p → min-p → a seeded draw,
/// so the same seed and logits always give the same tokens.
public struct Sampler {
    public let options: SamplingOptions
    private var rng: SplitMix64

    public init(options: SamplingOptions) {
        self.options = options
        rng = SplitMix64(seed: options.seed, stream: "crucible.sampler")
    }

    /// The index of the largest logit (the lowest index among equals).
    public static func argmax<C: Collection>(_ logits: C) -> Int where C.Element == Float, C.Index == Int {
        var best = logits.startIndex
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return best - logits.startIndex
    }

    /// The probabilities left after temperature, top-p and min-p, as (token, probability) pairs in
    /// descending probability, renormalised to sum 1.
    public func candidates<C: Collection>(_ logits: C) -> [(token: Int, probability: Double)] where C.Element == Float, C.Index == Int {
        let t = Double(max(options.temperature, 1e-6))
        let base = logits.startIndex
        let m = Double(logits.max() ?? 0)
        var probs = logits.indices.map { (token: $0 - base, probability: Foundation.exp((Double(logits[$0]) - m) / t)) }
        let total = probs.reduce(0) { $0 + $1.probability }
        probs.sort { $0.probability > $1.probability || ($0.probability == $1.probability && $0.token < $1.token) }
        var kept = probs.count
        if options.topP < 1 {
            var cumulative = 0.0
            for (i, p) in probs.enumerated() {
                cumulative += p.probability / total
                if cumulative >= Double(options.topP) { kept = i + 1; break }
            }
        }
        if options.minP > 0, let top = probs.first?.probability {
            let floor = top * Double(options.minP)
            kept = min(kept, max(1, probs.prefix(kept).firstIndex { $0.probability < floor } ?? kept))
        }
        let chosen = probs.prefix(kept)
        let sum = chosen.reduce(0) { $0 + $1.probability }
        return chosen.map { ($0.token, $0.probability / sum) }
    }

    /// The next token for `logits`.
    public mutating func sample<C: Collection>(_ logits: C) -> Int where C.Element == Float, C.Index == Int {
        if options.temperature <= 0 { return Self.argmax(logits) }
        let pool = candidates(logits)
        let u = rng.nextUnitDouble()
        var cumulative = 0.0
        for c in pool {
            cumulative += c.probability
            if u < cumulative { return c.token }
        }
        return pool.last?.token ?? Self.argmax(logits)
    }
}

extension LanguageModel {
    /// Generates up to `maxTokens` tokens after `prompt` with a KV cache (the prompt is processed in one
    /// batch, then one token per step). `onToken` sees each new token and returns false to stop early.
    /// Generation also stops at any of `stopTokens`, which is not passed to `onToken` or returned.
    @discardableResult
    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingOptions = SamplingOptions(),
                         stopTokens: Set<Int> = [], onToken: (Int) -> Bool = { _ in true }) throws -> [Int] {
        guard !prompt.isEmpty else { throw InferenceError.invalidArgument("generation needs a non-empty prompt") }
        guard maxTokens > 0 else { return [] }
        // Decoding one token at a time re-reads every matrix per token: GGUF matrices whose block format has a
        // direct kernel on this CPU are read in place (`StoredMatVec`); the others are kept converted when memory
        // allows (a quarter of physical memory), instead of dequantizing them again for each token.
        _ = try reader.makeResident(budget: Int(ProcessInfo.processInfo.physicalMemory / 4), except: readsInPlace)
        let cache = makeCache(capacity: prompt.count + maxTokens)
        var sampler = Sampler(options: sampling)
        var logits = try forward(prompt, cache: cache, logitsFrom: prompt.count - 1)
        var produced: [Int] = []
        while produced.count < maxTokens {
            let next = sampler.sample(logits.row(0))
            if stopTokens.contains(next) { break }
            produced.append(next)
            if !onToken(next) || produced.count == maxTokens { break }
            logits = try forward([next], cache: cache)
        }
        return produced
    }
}
