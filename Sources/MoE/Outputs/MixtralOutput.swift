import ArchitectureDefinitions
import Checkpoints
import Recipes

/// Mixtral (`MixtralForCausalLM`): routed experts only, from Llama or Mistral parents; mergekit's first choice.
///
/// Experts are written per expert (`block_sparse_moe.experts.E.w1/w2/w3`, router `block_sparse_moe.gate`), the layout
/// transformers 4 and 5 both load and llama.cpp's converter reads; `fusedExperts` writes transformers 5's fused
/// layout as mergekit 0.1.5 does (`mlp.experts.gate_up_proj` [E, 2·I, H], gate rows then up rows per expert,
/// `mlp.experts.down_proj` [E, H, I], router `mlp.gate`).
public struct MixtralOutput: MoEOutputArchitecture {
    public let name = "Mixtral"

    public init() {}

    public func incompatibility(_ recipe: MoERecipe, modelTypes: [String]) -> String? {
        if !recipe.sharedExperts.isEmpty { return "it has no shared experts (the recipe lists \(recipe.sharedExperts.count))" }
        if Set(modelTypes).count != 1 { return "every parent must have the same model_type (found "
            + "\(Set(modelTypes).sorted().joined(separator: ", ")))" }
        if !["llama", "mistral"].contains(modelTypes[0]) { return "parents must be Llama or Mistral models (found \(modelTypes[0]))" }
        return nil
    }

    public func outputConfig(_ c: MoEBuildContext) -> JSONObject {
        var config = c.expertConfig(.mixtral)
        config["sliding_window"] = .null
        config["router_jitter_noise"] = .double(0)
        config["output_router_logits"] = .bool(false)
        if config["router_aux_loss_coef"] == nil { config["router_aux_loss_coef"] = .double(0.001) }
        return config
    }

    public func tensors(_ c: MoEBuildContext) throws -> [MoETensor] {
        let out = try c.baseNonMLPTensors()
        let h = c.hiddenSize, i = c.intermediateSize, e = c.experts.count
        var layers: [[MoETensor]] = Array(repeating: [], count: c.layerCount)
        let names = ArchitectureDefinition.mixtral.decoder
        let layout = c.fusedExperts ? LlamaFamily.fusedExperts : LlamaFamily.mixtralExperts
        for l in 0..<c.layerCount {
            let pieces = c.experts.enumerated().map { c.expertPieces(layer: l, model: $0.element, expert: $0.offset, shared: false) }
            let p = names.layerPrefix(l)
            layers[l].append(MoETensor(name: p + layout.router + ".weight", shape: [e, h], dtype: c.outputDType,
                                       pieces: [.gate(layer: l, shared: false, count: e * h)], role: "router"))
            switch layout.storage {
            case let .fused(gateUp, down):
                layers[l].append(MoETensor(name: p + gateUp, shape: [e, 2 * i, h], dtype: c.outputDType,
                                           pieces: pieces.flatMap { [$0.gate, $0.up] }, role: "experts 0..<\(e)"))
                layers[l].append(MoETensor(name: p + down, shape: [e, h, i], dtype: c.outputDType,
                                           pieces: pieces.map(\.down), role: "experts 0..<\(e)"))
            case let .perExpert(mlp):
                for (x, piece) in pieces.enumerated() {
                    let label = c.expertLabel(x), expert = mlp.expert(x)
                    // Mixtral's file order: w1 (gate), w2 (down), w3 (up).
                    layers[l].append(MoETensor(name: p + expert.gate + ".weight", shape: [i, h], dtype: c.outputDType,
                                               pieces: [piece.gate], role: label))
                    layers[l].append(MoETensor(name: p + expert.down + ".weight", shape: [h, i], dtype: c.outputDType,
                                               pieces: [piece.down], role: label))
                    layers[l].append(MoETensor(name: p + expert.up + ".weight", shape: [i, h], dtype: c.outputDType,
                                               pieces: [piece.up], role: label))
                }
            }
        }
        return MoETensor.ordered(base: out, layers: layers)
    }
}
