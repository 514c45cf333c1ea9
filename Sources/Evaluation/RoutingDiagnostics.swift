import Architectures
import Foundation
import Host
import Inference

/// Sees what a model computes while it is scored (`PerplexityRun.observer`).
public protocol ForwardObserver: AnyObject {
    /// Called once the model is loaded, before the first window; throws when the observer cannot apply to it.
    func attach(to config: ModelConfig) throws
    /// Called before each window: the next rows start a new sequence.
    func beginSequence()
    /// The engine's tap (rows of one forward call, in sequence order).
    func observe(_ point: HiddenStatePoint, _ rows: UnsafeBufferPointer<Float>)
}

/// Routing diagnostics of a mixture-of-experts model (`crucible ppl --routing`): per MoE layer, each expert's share of
/// the routing decisions, how decided the router is (entropy), and how often the chosen experts change from one
/// token to the next. A FrankenMoE whose prompts do not route shows up as one expert taking most tokens, or as
/// near-uniform probabilities (entropy close to log₂ E) with choices flipping at every token.
public final class RoutingStatistics: ForwardObserver {
    private var experts = 0, topK = 0
    private var layers: [Int: Layer] = [:]

    private struct Layer {
        var tokens = 0
        var selected: [Int]
        var entropy = 0.0
        var pairs = 0, topKChanges = 0, top1Changes = 0
        var previous: [Int]? = nil

        init(experts: Int) { selected = [Int](repeating: 0, count: experts) }
    }

    public init() {}

    public func attach(to config: ModelConfig) throws {
        guard let moe = config.experts else {
            throw EvaluationError.invalidOption("--routing needs a mixture-of-experts model; this \(config.modelType) model has no router")
        }
        experts = moe.count
        topK = moe.perToken
    }

    public func beginSequence() {
        for key in layers.keys { layers[key]?.previous = nil }
    }

    public func observe(_ point: HiddenStatePoint, _ rows: UnsafeBufferPointer<Float>) {
        guard case let .routerLogits(l) = point, experts > 0 else { return }
        var layer = layers[l] ?? Layer(experts: experts)
        var p = [Double](repeating: 0, count: experts)
        var order = Array(0..<experts)
        for r in 0..<(rows.count / experts) {
            let logits = rows.baseAddress! + r * experts
            let m = (0..<experts).map { Double(logits[$0]) }.max() ?? 0
            var sum = 0.0
            for e in 0..<experts { p[e] = exp(Double(logits[e]) - m); sum += p[e] }
            var h = 0.0
            for e in 0..<experts {
                p[e] /= sum
                if p[e] > 0 { h -= p[e] * log2(p[e]) }
            }
            // The engine's choice: highest probability first, lower index first on ties.
            order.sort { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }
            let chosen = Array(order.prefix(topK))
            for e in chosen { layer.selected[e] += 1 }
            layer.entropy += h
            layer.tokens += 1
            if let previous = layer.previous {
                layer.pairs += 1
                if Set(previous) != Set(chosen) { layer.topKChanges += 1 }
                if previous[0] != chosen[0] { layer.top1Changes += 1 }
            }
            layer.previous = chosen
        }
        layers[l] = layer
    }

    /// The statistics so far.
    public var report: RoutingReport {
        RoutingReport(experts: experts, topK: topK, layers: layers.keys.sorted().map { l in
            let x = layers[l]!
            let decisions = Double(max(1, x.tokens * topK))
            let share = x.selected.map { Double($0) / decisions }
            let load = share.reduce(0.0) { $1 > 0 ? $0 - $1 * log2($1) : $0 }
            return RoutingReport.Layer(layer: l, tokens: x.tokens, share: share,
                                       meanEntropyBits: x.tokens > 0 ? x.entropy / Double(x.tokens) : 0, loadEntropyBits: load,
                                       topKChangeRate: x.pairs > 0 ? Double(x.topKChanges) / Double(x.pairs) : 0,
                                       top1ChangeRate: x.pairs > 0 ? Double(x.top1Changes) / Double(x.pairs) : 0)
        })
    }
}

/// Per-layer routing statistics.
public struct RoutingReport: Sendable, Equatable {
    public struct Layer: Sendable, Equatable {
        public let layer: Int
        public let tokens: Int
        /// Fraction of the layer's routing decisions (tokens × top-k) that chose each expert; sums to 1.
        public let share: [Double]
        /// Mean entropy of the router's probabilities per token, in bits (0 = always certain, log₂ E = uniform).
        public let meanEntropyBits: Double
        /// Entropy of `share` in bits: log₂ E when every expert gets the same load.
        public let loadEntropyBits: Double
        /// Fraction of adjacent token pairs whose set of chosen experts differs.
        public let topKChangeRate: Double
        /// Fraction of adjacent token pairs whose first choice differs.
        public let top1ChangeRate: Double
    }

    public let experts: Int
    public let topK: Int
    public let layers: [Layer]

    /// Experts that take less than a quarter of an even share in some layer, per layer.
    public var underused: [(layer: Int, experts: [Int])] {
        layers.compactMap { l in
            let few = l.share.indices.filter { l.share[$0] < 0.25 / Double(experts) }
            return few.isEmpty ? nil : (l.layer, few)
        }
    }

    /// A table: one row per layer, expert shares in %, entropies and change rates.
    public var table: String {
        var s = "====== Routing (\(experts) experts, top-\(topK)) ======\n"
        s += "layer  tokens  " + (0..<experts).map { String(repeating: " ", count: max(0, 6 - "e\($0)".count)) + "e\($0)" }.joined()
            + "   H(token)  H(load)  top-\(topK) chg  top-1 chg\n"
        for l in layers {
            s += String(format: "%5d  %6d  ", l.layer, l.tokens) + l.share.map { String(format: "%5.1f%%", 100 * $0) }.joined()
            s += String(format: "   %5.2f b   %5.2f b   %6.1f%%    %6.1f%%\n", l.meanEntropyBits, l.loadEntropyBits,
                        100 * l.topKChangeRate, 100 * l.top1ChangeRate)
        }
        s += String(format: "(H in bits; uniform routing gives %.2f b. H(load) below that means some experts are favoured.)\n",
                    log2(Double(max(experts, 1))))
        // One note per expert, naming the layers where it is starved.
        for e in 0..<experts {
            let starved = underused.filter { $0.experts.contains(e) }.map(\.layer)
            if !starved.isEmpty {
                s += "note: expert \(e) takes less than a quarter of an even share in \(starved.count == 1 ? "layer" : "layers") "
                    + compactRanges(starved) + "\n"
            }
        }
        return s
    }


    /// The `routing` member of `crucible ppl --json`.
    public var json: String {
        func num(_ v: Double) -> String { v.isFinite ? "\(v)" : "null" }
        let rows = layers.map { l in
            "{\"layer\": \(l.layer), \"tokens\": \(l.tokens), \"share\": [\(l.share.map(num).joined(separator: ", "))], "
                + "\"entropy_bits\": \(num(l.meanEntropyBits)), \"load_entropy_bits\": \(num(l.loadEntropyBits)), "
                + "\"top_k_change_rate\": \(num(l.topKChangeRate)), \"top1_change_rate\": \(num(l.top1ChangeRate))}"
        }
        return "{\"experts\": \(experts), \"top_k\": \(topK), \"layers\": [\(rows.joined(separator: ", "))]}"
    }
}
