import ArchitectureDefinitions
import Checkpoints

/// How a checkpoint is matched to a weight table: one of the tables the architecture definitions declare, or one
/// inferred from its tensor names.
public enum ArchitectureRegistry {
    /// Every declared table, in the order of `ArchitectureDefinition.all`.
    public static let all: [WeightTable] = ArchitectureDefinition.all.flatMap(\.weightTables)

    /// The table for a checkpoint: candidates by `architectures[0]` (then `model_type`), and among several,
    /// the one whose required layer-0 weights the checkpoint holds.
    public static func table(config: JSONObject, tensorNames: Set<String>) -> WeightTable? {
        let arch = config["architectures"]?.arrayValue?.first?.stringValue
        let modelType = config["model_type"]?.stringValue
        var candidates = all.filter { d in arch.map { d.architectures.contains($0) } ?? false }
        if candidates.isEmpty, let modelType { candidates = all.filter { $0.modelTypes.contains(modelType) } }
        if candidates.isEmpty { return inferred(config: config, tensorNames: tensorNames) }
        if candidates.count <= 1 { return candidates.first }
        return candidates.first { d in
            let experts = d.expertCount(in: config)
            return d.layerWeightNames(layer: 0, experts: experts).allSatisfy { $0.template.optional || tensorNames.contains($0.name) }
        } ?? candidates.first
    }

    public static var supportedArchitectures: [String] {
        var seen: [String] = []
        for d in all { for a in d.architectures where !seen.contains(a) { seen.append(a) } }
        return seen
    }

    /// A table inferred from tensor names, for architectures without one (as mergekit's "universal model
    /// support" does): names of the form `PREFIX.N.REST` under the most common prefix are the layer stack;
    /// vocabulary-indexed tensors (embeddings) come before it, the final norm and the head after it, every other
    /// name before it. A head missing from some parents falls back to the embedding.
    public static func inferred(config: JSONObject, tensorNames: Set<String>) -> WeightTable? {
        var byPrefix: [String: [(layer: Int, rest: String)]] = [:]
        var others: [String] = []
        for name in tensorNames.sorted() {
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            if let i = parts.firstIndex(where: { !$0.isEmpty && $0.allSatisfy(\.isNumber) }), i > 0, i < parts.count - 1,
               let layer = Int(parts[i]) {
                byPrefix[parts[..<i].joined(separator: "."), default: []].append((layer, parts[(i + 1)...].joined(separator: ".")))
            } else {
                others.append(name)
            }
        }
        guard let (prefix, entries) = byPrefix.max(by: { ($0.value.count, $1.key) < ($1.value.count, $0.key) }) else { return nil }
        for (p, e) in byPrefix where p != prefix { others += e.map { "\(p).\($0.layer).\($0.rest)" } }
        let layers = (entries.map(\.layer).max() ?? -1) + 1
        var rests: [String] = []
        for e in entries.sorted(by: { ($0.layer, $0.rest) < ($1.layer, $1.rest) }) where !rests.contains(e.rest) { rests.append(e.rest) }
        let present = Set(entries.map { "\($0.layer).\($0.rest)" })
        let layerWeights = rests.map { rest in
            WeightTemplate("\(prefix).${layer_index}.\(rest)", optional: (0..<layers).contains { !present.contains("\($0).\(rest)") })
        }
        let isEmbedding = { (n: String) in n.contains("embed") || n.hasSuffix("wte.weight") || n.hasSuffix("tok_embeddings.weight") }
        let isHead = { (n: String) in n.hasPrefix("lm_head.") || n == "output.weight" }
        let embedding = others.first(where: isEmbedding)
        let pre = others.filter { !isHead($0) && !($0.contains("norm") && !isEmbedding($0)) }
            .map { WeightTemplate($0, embed: isEmbedding($0)) }
        var post = others.filter { !isHead($0) && $0.contains("norm") && !isEmbedding($0) }.map { WeightTemplate($0) }
        let head = others.first(where: isHead) ?? (embedding != nil ? "lm_head.weight" : nil)
        if let head {
            post.append(WeightTemplate(head, embed: true, optional: true, tiedTo: embedding))
        }
        let arch = config["architectures"]?.arrayValue?.first?.stringValue ?? config["model_type"]?.stringValue ?? "unknown"
        let key = ["num_hidden_layers", "n_layer", "num_layers", "n_layers"].first { config[$0] != nil } ?? "num_hidden_layers"
        return WeightTable(name: "inferred:\(arch)", modelTypes: [], architectures: [arch], preWeights: pre,
                                      layerWeights: layerWeights, postWeights: post, layerCountKey: key, inferredLayerCount: layers)
    }
}

extension WeightTable {
    /// Layer count from a config.
    public func layerCount(in config: JSONObject) -> Int? {
        config[layerCountKey]?.intValue ?? config["text_config"]?[layerCountKey]?.intValue ?? inferredLayerCount
    }

    public func expertCount(in config: JSONObject) -> Int {
        guard let key = expertCountKey else { return 0 }
        return config[key]?.intValue ?? 0
    }
}
