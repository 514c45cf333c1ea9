import ArchitectureDefinitions
import Architectures
import Checkpoints
import Numerics
import Planner
import Recipes

/// What an output architecture needs to lay out a MoE: the parents, opened, and the base's dimensions.
public struct MoEBuildContext: Sendable {
    public let recipe: MoERecipe
    /// `models[0]` is the base; the others are every further model the recipe names, in order of first mention.
    public let models: [PlannedModel]
    /// Model index (into `models`) of each routed expert, and of each shared expert.
    public let experts: [Int]
    public let sharedExperts: [Int]
    public let layerCount: Int
    public let hiddenSize: Int
    public let intermediateSize: Int
    public let headCount: Int
    public let kvHeadCount: Int
    public let headDim: Int
    public let outputDType: DType
    /// Write Mixtral experts fused (`mlp.experts.gate_up_proj`, transformers 5 / mergekit 0.1.5) rather than per expert.
    public let fusedExperts: Bool

    public var base: PlannedModel { models[0] }

    /// The base's config relabelled as `definition` with the recipe's expert counts (`num_local_experts`, or
    /// `expertCountKey` where the format names it otherwise): where every output format's config starts.
    func expertConfig(_ definition: ArchitectureDefinition, expertCountKey: String = "num_local_experts") -> JSONObject {
        var config = base.config
        config["architectures"] = .array([.string(definition.className)])
        config["model_type"] = .string(definition.modelType)
        config[expertCountKey] = .int(Int64(recipe.experts.count))
        config["num_experts_per_tok"] = .int(Int64(recipe.expertsPerToken))
        return config
    }
}

/// One FrankenMoE output format (docs/moe.md, "Output formats"): which recipes and parents it can take, its
/// `config.json`, and where each of its tensors comes from. Adding a format is one file with a type conforming to
/// this protocol plus one line in `MoEOutputs.all`.
public protocol MoEOutputArchitecture: Sendable {
    /// The name mergekit gives it; `architecture:` in a recipe is a case-insensitive prefix of it.
    var name: String { get }
    /// Why this output cannot hold the recipe (shared-expert count, prompts, parents' `model_type`s in the order
    /// base, experts, shared experts), or nil when it can.
    func incompatibility(_ recipe: MoERecipe, modelTypes: [String]) -> String?
    /// The output `config.json`, from the base's.
    func outputConfig(_ context: MoEBuildContext) -> JSONObject
    /// Every output tensor, in file order.
    func tensors(_ context: MoEBuildContext) throws -> [MoETensor]
}

/// An output Crucible recognises but will not write, with the reason.
public struct RefusedMoEOutput: Sendable {
    public let name: String
    public let reason: String
}

/// The output architectures, in mergekit's order of preference (Mixtral first whenever it fits).
public enum MoEOutputs {
    public static let all: [any MoEOutputArchitecture] = [MixtralOutput(), Qwen2MoEOutput(), Qwen3MoEOutput()]

    /// Known to mergekit, refused here.
    public static let refused: [RefusedMoEOutput] = [
        RefusedMoEOutput(name: "DeepSeek MoE", reason:
            "DeepSeek MoE checkpoints only load with trust_remote_code (the deepseek-moe-16b modeling code), which Crucible will not ask "
                + "anyone to run; "
            + "use a Qwen2-MoE output for a shared expert (give it prompts), or Mixtral without one"),
    ]

    /// The output for a recipe, chosen as mergekit chooses: the candidates whose name starts with `architecture:`
    /// (all when absent) that can hold the recipe, Mixtral first.
    public static func select(_ recipe: MoERecipe, modelTypes: [String]) throws -> any MoEOutputArchitecture {
        let wanted = recipe.architecture?.lowercased()
        func matches(_ name: String) -> Bool { wanted.map { name.lowercased().hasPrefix($0) } ?? true }
        let location = recipe.keyLocations["architecture"] ?? recipe.location(of: "experts")
        let candidates = all.filter { matches($0.name) }
        if candidates.isEmpty {
            if let refusal = refused.first(where: { matches($0.name) }) {
                throw PlanError.recipe(location, "\(refusal.name) output is not supported: \(refusal.reason)")
            }
            let names = (all.map(\.name) + refused.map { "\($0.name) (refused)" }).joined(separator: ", ")
            throw PlanError.recipe(location, "no output architecture is named like `\(recipe.architecture ?? "")`; known: \(names)")
        }
        var reasons: [String] = []
        for c in candidates {
            if let why = c.incompatibility(recipe, modelTypes: modelTypes) { reasons.append("\(c.name): \(why)") } else { return c }
        }
        // mergekit would fall back to DeepSeek for a shared expert without prompts; say why that is refused too.
        for r in refused where matches(r.name) {
            reasons.append("\(r.name): refused: \(r.reason)")
        }
        throw PlanError.recipe(location, "no output architecture can hold this MoE:\n  - " + reasons.joined(separator: "\n  - "))
    }
}

/// Helpers the output formats share.
extension MoEBuildContext {
    /// The base's weights outside the MLP (embeddings, attention, norms, head), in its architecture table's order,
    /// each copied (or converted to the output dtype). Optional weights the base lacks are skipped.
    func baseNonMLPTensors() throws -> [MoETensor] {
        let arch = base.architecture
        var optional = Set((arch.preWeights + arch.postWeights).filter(\.optional).map(\.name))
        for l in 0..<layerCount { for t in arch.layerWeights where t.optional { optional.insert(t.resolved(layer: l)) } }
        var out: [MoETensor] = []
        for name in arch.allWeightNames(layers: layerCount) where !name.contains(".mlp.") {
            guard let info = base.source.info(name) else {
                if optional.contains(name) { continue }
                throw PlanError.model(base.path, "tensor '\(name)' is missing (the \(arch.name) architecture requires it)")
            }
            out.append(MoETensor(name: name, shape: info.shape, dtype: outputDType,
                                 pieces: [.tensor(model: 0, name: name, count: info.elementCount, noise: nil, scale: nil, stream: "")],
                                 role: "base"))
        }
        return out
    }

    /// The three MLP weights of `layer` in model `model` (named as its architecture definition names a dense MLP), as
    /// the expert pieces of routed expert `expert` (or shared expert `expert` when `shared`): noise and `residual_scale`
    /// (on down_proj) from the recipe entry.
    func expertPieces(layer: Int, model: Int, expert: Int, shared: Bool) -> (gate: MoETensor.Piece, up: MoETensor.Piece,
                                                                             down: MoETensor.Piece) {
        let entry = shared ? recipe.sharedExperts[expert] : recipe.experts[expert]
        let modelType = models[model].config["model_type"]?.stringValue ?? ""
        let names = ArchitectureDefinition.forModelType(modelType)?.decoder ?? LlamaFamily.decoder
        let prefix = names.layerPrefix(layer)
        func piece(_ projection: String, count: Int, residual: Bool) -> MoETensor.Piece {
            let name = prefix + projection + ".weight"
            return .tensor(model: model, name: name, count: count, noise: entry.noiseScale,
                           scale: residual ? entry.residualScale : nil,
                           stream: "moe-noise:\(shared ? "shared" : "routed"):\(expert):\(name)")
        }
        let n = intermediateSize * hiddenSize
        return (piece(names.mlp.gate, count: n, residual: false), piece(names.mlp.up, count: n, residual: false),
                piece(names.mlp.down, count: n, residual: true))
    }

    /// The name of routed expert `e` for messages: its index and source.
    func expertLabel(_ e: Int, shared: Bool = false) -> String {
        let entry = shared ? recipe.sharedExperts[e] : recipe.experts[e]
        return "\(shared ? "shared expert" : "expert") \(e) (\(entry.sourceModel.raw))"
    }
}
