import Foundation
import Inference
import Numerics
import Recipes

/// The router rows of every MoE layer, computed as docs/moe.md ("Gate modes") describes, in float32 from the engine's
/// own hidden states (mergekit runs the base in bfloat16).
public struct GateRows: Sendable {
    /// Per layer, the routed experts' rows: `[experts × hidden]` row-major.
    public let routed: [[Float]]
    /// Per layer, the shared experts' rows: `[shared × hidden]` (empty when there are none).
    public let shared: [[Float]]
    public let hiddenSize: Int

    /// Tokens per packed forward call: bounds activations and the KV cache however many prompts a recipe has.
    static let tokensPerCall = 512

    /// Computes the rows for `plan`. Modes that read hidden states run `model` (the base) on the prompts.
    public static func compute(_ plan: MoEPlan, model: LanguageModel?) throws -> GateRows {
        let c = plan.context
        let layers = c.layerCount, h = c.hiddenSize
        let e = c.experts.count
        let s = c.sharedExperts.count
        let mode = plan.recipe.gateMode

        if !mode.usesPrompts {
            // torch draws (layers, experts + shared, hidden) in one call; so does this, from one seeded stream.
            var rng = SplitMix64(seed: plan.seed, stream: "moe-gate:\(mode.rawValue)")
            let scale = Float((1 / Double(h)).squareRoot())
            var routed: [[Float]] = [], shared: [[Float]] = []
            for _ in 0..<layers {
                var all = [Float](repeating: 0, count: (e + s) * h)
                for i in all.indices {
                    all[i] = mode == .random ? rng.nextGaussian() : (rng.nextUnitFloat() * 2 - 1) * scale
                }
                routed.append(Array(all[0..<(e * h)]))
                shared.append(Array(all[(e * h)...]))
            }
            return GateRows(routed: routed, shared: shared, hiddenSize: h)
        }

        guard let prompts = plan.prompts else {
            throw MoEError.gates("gate_mode `\(mode.rawValue)` needs the prompts' tokens, but the plan has none")
        }
        let experts = prompts.routed + prompts.shared
        // One vector per layer per expert (before normalisation), in Double.
        var vectors: [[[Double]]]
        switch mode {
        case .cheapEmbed:
            vectors = try experts.map { x -> [[Double]] in
                // The embedding sum is normalised before and after subtracting the negatives' (mergekit's order).
                var v = normalized(try embeddingSum(x.positive, plan: plan))
                if !x.negative.isEmpty {
                    let n = normalized(try embeddingSum(x.negative, plan: plan))
                    for i in v.indices { v[i] -= n[i] }
                }
                return Array(repeating: v, count: layers)
            }
        case .hidden, .hiddenAverage, .routerInput:
            guard let model else { throw MoEError.gates("gate_mode `\(mode.rawValue)` needs the base model to run") }
            let states = try HiddenStateCollector.collect(prompts: experts, mode: mode, padID: prompts.padID, model: model,
                                                          layers: layers, hidden: h)
            vectors = experts.indices.map { x in
                var v = states.mean(expert: x, negative: false)
                if !experts[x].negative.isEmpty {
                    let n = states.mean(expert: x, negative: true)
                    for l in 0..<layers { for i in 0..<h { v[l][i] -= n[l][i] } }
                }
                return v
            }
        case .random, .uniformRandom:
            fatalError("handled above")
        }
        var routed: [[Float]] = [], shared: [[Float]] = []
        for l in 0..<layers {
            var r: [Float] = [], sh: [Float] = []
            for x in 0..<(e + s) {
                let row = normalized(vectors[x][l]).map { Float($0) }
                if x < e { r += row } else { sh += row }
            }
            routed.append(r)
            shared.append(sh)
        }
        return GateRows(routed: routed, shared: shared, hiddenSize: h)
    }

    /// `v / max(‖v‖₂, 1e-8)`.
    static func normalized(_ v: [Double]) -> [Double] {
        let norm = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-8)
        return v.map { $0 / norm }
    }

    /// The sum of the token embeddings of every token of every prompt (`cheap_embed`).
    private static func embeddingSum(_ sequences: [[Int]], plan: MoEPlan) throws -> [Double] {
        let h = plan.context.hiddenSize
        let source = plan.context.base.source
        let name = "model.embed_tokens.weight"
        var sum = [Double](repeating: 0, count: h)
        var row = [Float](repeating: 0, count: h)
        for ids in sequences {
            for id in ids {
                try row.withUnsafeMutableBufferPointer { try source.readFloats(name, range: (id * h)..<((id + 1) * h),
                                                                               into: $0.baseAddress!) }
                for i in 0..<h { sum[i] += Double(row[i]) }
            }
        }
        return sum
    }
}

/// Runs every prompt of every expert through the engine, packed into few forward calls, and keeps what the gate mode
/// needs per prompt and layer: the last position's hidden state (`hidden`, `router_input`) or the sum over positions
/// (`hidden_avg`).
struct HiddenStateCollector {
    /// Per expert, per sign (0 positive, 1 negative), per prompt: per layer `[hidden]`.
    private var rows: [[[[[Double]]]]]
    /// `hidden_avg`: per layer, the hidden state of a padding position (what the left-padded batch averages in).
    private var padRows: [[Double]]
    /// Lengths of the prompts, for the padding share of `hidden_avg`.
    private var lengths: [[[Int]]]
    let mode: MoEGateMode
    let layers: Int
    let hidden: Int

    static func collect(prompts: [GatePrompts.Expert], mode: MoEGateMode, padID: Int, model: LanguageModel,
                        layers: Int, hidden: Int) throws -> HiddenStateCollector {
        var collector = HiddenStateCollector(rows: [], padRows: [], lengths: [], mode: mode, layers: layers, hidden: hidden)
        // Every sequence to run, with where its result goes: (expert, sign, prompt), or nil for the padding row.
        var jobs: [(tokens: [Int], slot: (Int, Int, Int)?)] = []
        for (x, expert) in prompts.enumerated() {
            collector.lengths.append([expert.positive.map(\.count), expert.negative.map(\.count)])
            collector.rows.append([expert.positive.map { _ in [] }, expert.negative.map { _ in [] }])
            for (sign, list) in [expert.positive, expert.negative].enumerated() {
                for (p, ids) in list.enumerated() { jobs.append((ids, (x, sign, p))) }
            }
        }
        let needsPadding = mode == .hiddenAverage && collector.lengths.contains { $0.contains { Set($0).count > 1 } }
        if needsPadding { jobs.append(([padID], nil)) }

        var start = 0
        while start < jobs.count {
            var end = start, tokens = 0
            while end < jobs.count && (end == start || tokens + jobs[end].tokens.count <= GateRows.tokensPerCall) {
                tokens += jobs[end].tokens.count
                end += 1
            }
            let batch = Array(jobs[start..<end])
            try collector.run(batch, model: model)
            start = end
        }
        return collector
    }

    private mutating func run(_ batch: [(tokens: [Int], slot: (Int, Int, Int)?)], model: LanguageModel) throws {
        let h = hidden
        var offsets: [Int] = []
        var row = 0
        for job in batch { offsets.append(row); row += job.tokens.count }
        // results[job][layer] = [hidden]
        var results = [[[Double]]](repeating: Array(repeating: [], count: layers), count: batch.count)
        let mode = self.mode
        try model.forwardPacked(batch.map(\.tokens), masked: batch.map { $0.slot == nil }) { point, data in
            let layer: Int
            switch (point, mode) {
            case let (.layerInput(l), .hidden), let (.layerInput(l), .hiddenAverage), let (.feedForwardInput(l), .routerInput):
                layer = l
            default:
                return
            }
            for (j, job) in batch.enumerated() {
                let first = offsets[j], n = job.tokens.count
                if mode == .hiddenAverage {
                    var sum = [Double](repeating: 0, count: h)
                    for r in first..<(first + n) { for i in 0..<h { sum[i] += Double(data[r * h + i]) } }
                    results[j][layer] = sum
                } else {
                    let last = first + n - 1
                    results[j][layer] = (0..<h).map { Double(data[last * h + $0]) }
                }
            }
        }
        for (j, job) in batch.enumerated() {
            if let (x, sign, p) = job.slot { rows[x][sign][p] = results[j] } else { padRows = results[j] }
        }
    }

    /// The expert's vector per layer for one sign: the mean over its prompts of the last position (`hidden`,
    /// `router_input`), or of the per-prompt mean over the padded batch width, padding rows included (`hidden_avg`).
    func mean(expert x: Int, negative: Bool) -> [[Double]] {
        let sign = negative ? 1 : 0
        let prompts = rows[x][sign]
        let lengths = self.lengths[x][sign]
        let width = lengths.max() ?? 1
        var out = [[Double]](repeating: [Double](repeating: 0, count: hidden), count: layers)
        for (p, perLayer) in prompts.enumerated() {
            for l in 0..<layers {
                for i in 0..<hidden {
                    var v = perLayer[l][i]
                    if mode == .hiddenAverage {
                        let pads = width - lengths[p]
                        if pads > 0 { v += Double(pads) * padRows[l][i] }
                        v /= Double(width)
                    }
                    out[l][i] += v
                }
            }
        }
        let count = Double(max(prompts.count, 1))
        return out.map { $0.map { $0 / count } }
    }
}

/// Why a MoE could not be built.
public enum MoEError: Error, CustomStringConvertible, Sendable {
    case gates(String)

    public var description: String {
        switch self {
        case let .gates(message): return "error: router rows: \(message)"
        }
    }
}
