import Checkpoints

/// The architecture tables Crucible knows, and how a checkpoint is matched to one.
public enum ArchitectureRegistry {
    private static let attention: [WeightTemplate] = [
        WeightTemplate("model.layers.${layer_index}.input_layernorm.weight"),
        WeightTemplate("model.layers.${layer_index}.self_attn.q_proj.weight"),
        WeightTemplate("model.layers.${layer_index}.self_attn.k_proj.weight"),
        WeightTemplate("model.layers.${layer_index}.self_attn.v_proj.weight"),
        WeightTemplate("model.layers.${layer_index}.self_attn.o_proj.weight"),
        WeightTemplate("model.layers.${layer_index}.post_attention_layernorm.weight"),
    ]
    private static let optionalBiases: [WeightTemplate] = [
        WeightTemplate("model.layers.${layer_index}.self_attn.q_proj.bias", optional: true),
        WeightTemplate("model.layers.${layer_index}.self_attn.k_proj.bias", optional: true),
        WeightTemplate("model.layers.${layer_index}.self_attn.v_proj.bias", optional: true),
        WeightTemplate("model.layers.${layer_index}.self_attn.o_proj.bias", optional: true),
    ]
    private static let requiredQKVBiases: [WeightTemplate] = [
        WeightTemplate("model.layers.${layer_index}.self_attn.q_proj.bias"),
        WeightTemplate("model.layers.${layer_index}.self_attn.k_proj.bias"),
        WeightTemplate("model.layers.${layer_index}.self_attn.v_proj.bias"),
    ]
    private static let denseMLP: [WeightTemplate] = [
        WeightTemplate("model.layers.${layer_index}.mlp.gate_proj.weight"),
        WeightTemplate("model.layers.${layer_index}.mlp.up_proj.weight"),
        WeightTemplate("model.layers.${layer_index}.mlp.down_proj.weight"),
    ]
    private static let embed = [WeightTemplate("model.embed_tokens.weight", embed: true)]
    private static let head = [
        WeightTemplate("model.norm.weight"),
        WeightTemplate("lm_head.weight", embed: true, optional: true, tiedTo: "model.embed_tokens.weight"),
    ]

    public static let llama = ArchitectureDefinition(
        name: "llama", modelTypes: ["llama"],
        architectures: ["LlamaForCausalLM"],
        preWeights: embed, layerWeights: attention + optionalBiases + denseMLP, postWeights: head)

    public static let mistral = ArchitectureDefinition(
        name: "mistral", modelTypes: ["mistral"],
        architectures: ["MistralForCausalLM"],
        preWeights: embed, layerWeights: attention + optionalBiases + denseMLP, postWeights: head)

    public static let qwen2 = ArchitectureDefinition(
        name: "qwen2", modelTypes: ["qwen2"],
        architectures: ["Qwen2ForCausalLM"],
        preWeights: embed, layerWeights: attention + requiredQKVBiases + denseMLP, postWeights: head)

    /// Mixtral as transformers 4 saves it: one tensor per expert and projection.
    public static let mixtral = ArchitectureDefinition(
        name: "mixtral", modelTypes: ["mixtral"],
        architectures: ["MixtralForCausalLM"],
        preWeights: embed,
        layerWeights: attention + [
            WeightTemplate("model.layers.${layer_index}.block_sparse_moe.gate.weight"),
            WeightTemplate("model.layers.${layer_index}.block_sparse_moe.experts.${expert_index}.w1.weight"),
            WeightTemplate("model.layers.${layer_index}.block_sparse_moe.experts.${expert_index}.w2.weight"),
            WeightTemplate("model.layers.${layer_index}.block_sparse_moe.experts.${expert_index}.w3.weight"),
        ],
        postWeights: head, expertCountKey: "num_local_experts")

    /// Mixtral as transformers 5 (and mergekit-moe at HEAD) saves it: experts fused per layer.
    public static let mixtralFused = ArchitectureDefinition(
        name: "mixtral-fused", modelTypes: ["mixtral"],
        architectures: ["MixtralForCausalLM"],
        preWeights: embed,
        layerWeights: attention + [
            WeightTemplate("model.layers.${layer_index}.mlp.gate.weight"),
            WeightTemplate("model.layers.${layer_index}.mlp.experts.gate_up_proj"),
            WeightTemplate("model.layers.${layer_index}.mlp.experts.down_proj"),
        ],
        postWeights: head, expertCountKey: "num_local_experts")

    public static let all: [ArchitectureDefinition] = [llama, mistral, qwen2, mixtral, mixtralFused]

    /// The table for a checkpoint: candidates by `architectures[0]` (then `model_type`), and among several,
    /// the one whose required layer-0 weights the checkpoint holds.
    public static func definition(config: JSONObject, tensorNames: Set<String>) -> ArchitectureDefinition? {
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
    public static func inferred(config: JSONObject, tensorNames: Set<String>) -> ArchitectureDefinition? {
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
        return ArchitectureDefinition(name: "inferred:\(arch)", modelTypes: [], architectures: [arch], preWeights: pre,
                                      layerWeights: layerWeights, postWeights: post, layerCountKey: key, inferredLayerCount: layers)
    }
}
