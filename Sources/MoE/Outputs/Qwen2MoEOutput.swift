import ArchitectureDefinitions
import Checkpoints
import Recipes

/// Qwen2-MoE (`Qwen2MoeForCausalLM`): routed experts plus exactly one shared expert whose contribution is scaled by a
/// sigmoid gate (`mlp.shared_expert_gate`), from Llama, Mistral or Qwen2 parents. Experts are written per expert
/// (`mlp.experts.E.gate_proj/up_proj/down_proj`, which transformers 5 fuses when loading); q/k/v biases that the
/// parents lack are written as zeros, since Qwen2-MoE attention has them.
public struct Qwen2MoEOutput: MoEOutputArchitecture {
    public let name = "Qwen MoE"

    public init() {}

    public func incompatibility(_ recipe: MoERecipe, modelTypes: [String]) -> String? {
        if recipe.sharedExperts.count != 1 { return "it needs exactly one shared expert (the recipe lists \(recipe.sharedExperts.count))" }
        if recipe.gateMode.usesPrompts && recipe.sharedExperts[0].positivePrompts.isEmpty {
            return "its shared expert is gated, so with gate_mode `\(recipe.gateMode.rawValue)` the shared expert needs positive_prompts"
        }
        if Set(modelTypes).count != 1 { return "every parent must have the same model_type (found "
            + "\(Set(modelTypes).sorted().joined(separator: ", ")))" }
        if !["llama", "mistral", "qwen2"].contains(modelTypes[0]) {
            return "parents must be Qwen2, Llama or Mistral models (found \(modelTypes[0]))"
        }
        return nil
    }

    public func outputConfig(_ c: MoEBuildContext) -> JSONObject {
        var config = c.expertConfig(.qwen2MoE, expertCountKey: "num_experts")
        config["decoder_sparse_step"] = .int(1)
        config["norm_topk_prob"] = .bool(true)
        config["sliding_window"] = .null
        config["use_sliding_window"] = .bool(false)
        config["moe_intermediate_size"] = .int(Int64(c.intermediateSize))
        config["shared_expert_intermediate_size"] = .int(Int64(c.intermediateSize))
        config["mlp_only_layers"] = .array([])
        config["qkv_bias"] = .bool(true)
        config["output_router_logits"] = .bool(false)
        if config["router_aux_loss_coef"] == nil { config["router_aux_loss_coef"] = .double(0.001) }
        return config
    }

    public func tensors(_ c: MoEBuildContext) throws -> [MoETensor] {
        var out = try c.baseNonMLPTensors()
        // Zero biases where a Llama/Mistral base has none.
        let present = Set(out.map(\.name))
        for l in 0..<c.layerCount {
            let widths = [("q_proj", c.headCount * c.headDim), ("k_proj", c.kvHeadCount * c.headDim), ("v_proj", c.kvHeadCount * c.headDim)]
            for (projection, width) in widths {
                let name = "model.layers.\(l).self_attn.\(projection).bias"
                if !present.contains(name) {
                    out.append(MoETensor(name: name, shape: [width], dtype: c.outputDType, pieces: [.zeros(width)], role: "zeros"))
                }
            }
        }
        let h = c.hiddenSize, i = c.intermediateSize, e = c.experts.count
        var layers: [[MoETensor]] = Array(repeating: [], count: c.layerCount)
        let names = ArchitectureDefinition.qwen2MoE.decoder, layout = LlamaFamily.qwenExperts
        guard case let .perExpert(expertNames) = layout.storage else { preconditionFailure("Qwen2-MoE stores experts one by one") }
        for l in 0..<c.layerCount {
            let p = names.layerPrefix(l)
            layers[l].append(MoETensor(name: p + layout.router + ".weight", shape: [e, h], dtype: c.outputDType,
                                       pieces: [.gate(layer: l, shared: false, count: e * h)], role: "router"))
            layers[l].append(MoETensor(name: p + names.sharedExpertGate + ".weight", shape: [1, h], dtype: c.outputDType,
                                       pieces: [.gate(layer: l, shared: true, count: h)], role: "shared router"))
            func add(_ mlp: MLPNames, _ piece: (gate: MoETensor.Piece, up: MoETensor.Piece, down: MoETensor.Piece), _ label: String) {
                layers[l].append(MoETensor(name: p + mlp.gate + ".weight", shape: [i, h], dtype: c.outputDType, pieces: [piece.gate],
                                           role: label))
                layers[l].append(MoETensor(name: p + mlp.up + ".weight", shape: [i, h], dtype: c.outputDType, pieces: [piece.up],
                                           role: label))
                layers[l].append(MoETensor(name: p + mlp.down + ".weight", shape: [h, i], dtype: c.outputDType, pieces: [piece.down],
                                           role: label))
            }
            for (x, model) in c.experts.enumerated() {
                add(expertNames.expert(x), c.expertPieces(layer: l, model: model, expert: x, shared: false), c.expertLabel(x))
            }
            add(names.sharedExpert, c.expertPieces(layer: l, model: c.sharedExperts[0], expert: 0, shared: true),
                c.expertLabel(0, shared: true))
        }
        return MoETensor.ordered(base: out, layers: layers)
    }
}
