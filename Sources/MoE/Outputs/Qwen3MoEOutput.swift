import ArchitectureDefinitions
import Checkpoints
import Recipes

/// Qwen3-MoE (`Qwen3MoeForCausalLM`): routed experts only, from Qwen3 parents (their q/k norms are copied from the base
/// with the rest of the attention). Experts are written fused, as transformers 5 and mergekit 0.1.5 write them
/// (`mlp.experts.gate_up_proj` [E, 2·I, H], each expert's gate rows then its up rows; `mlp.experts.down_proj`
/// [E, H, I]; router `mlp.gate`); the config spells the expert count `num_local_experts`, as mergekit does.
public struct Qwen3MoEOutput: MoEOutputArchitecture {
    public let name = "Qwen3 MoE"

    public init() {}

    public func incompatibility(_ recipe: MoERecipe, modelTypes: [String]) -> String? {
        if !recipe.sharedExperts.isEmpty { return "it has no shared experts (the recipe lists \(recipe.sharedExperts.count))" }
        let qwen3 = ArchitectureDefinition.qwen3.modelType
        if !modelTypes.allSatisfy({ $0 == qwen3 }) {
            return "every parent must be a Qwen3 model (found \(Set(modelTypes).sorted().joined(separator: ", ")))"
        }
        return nil
    }

    public func outputConfig(_ c: MoEBuildContext) -> JSONObject {
        var config = c.expertConfig(.qwen3MoE)
        config["moe_intermediate_size"] = .int(Int64(c.intermediateSize))
        config["norm_topk_prob"] = .bool(true)
        config["decoder_sparse_step"] = .int(1)
        config["mlp_only_layers"] = .array([])
        config["output_router_logits"] = .bool(false)
        if config["router_aux_loss_coef"] == nil { config["router_aux_loss_coef"] = .double(0.001) }
        return config
    }

    public func tensors(_ c: MoEBuildContext) throws -> [MoETensor] {
        let out = try c.baseNonMLPTensors()
        let h = c.hiddenSize, i = c.intermediateSize, e = c.experts.count
        var layers: [[MoETensor]] = Array(repeating: [], count: c.layerCount)
        let names = ArchitectureDefinition.qwen3MoE.decoder, layout = LlamaFamily.fusedExperts
        guard case let .fused(gateUp, down) = layout.storage else { preconditionFailure("Qwen3-MoE experts are fused") }
        for l in 0..<c.layerCount {
            let pieces = c.experts.enumerated().map { c.expertPieces(layer: l, model: $0.element, expert: $0.offset, shared: false) }
            let p = names.layerPrefix(l)
            layers[l].append(MoETensor(name: p + layout.router + ".weight", shape: [e, h], dtype: c.outputDType,
                                       pieces: [.gate(layer: l, shared: false, count: e * h)], role: "router"))
            layers[l].append(MoETensor(name: p + gateUp, shape: [e, 2 * i, h], dtype: c.outputDType,
                                       pieces: pieces.flatMap { [$0.gate, $0.up] }, role: "experts 0..<\(e)"))
            layers[l].append(MoETensor(name: p + down, shape: [e, h, i], dtype: c.outputDType,
                                       pieces: pieces.map(\.down), role: "experts 0..<\(e)"))
        }
        return MoETensor.ordered(base: out, layers: layers)
    }
}
