import Architectures
import Checkpoints
import Foundation
import Inference
import Planner
import Recipes
import Tokenization

/// Options of a MoE build that do not come from the recipe.
public struct MoEOptions: Sendable {
    /// Overrides the recipe's `random_seed` (random gates, noise).
    public var seed: UInt64?
    public var threads: Int
    public var shardSize: Int
    /// Write Mixtral experts in transformers 5's fused layout instead of one tensor per expert.
    public var fusedExperts: Bool
    /// `--i-understand-this-is-not-useful-without-training`: allow every expert to come from one model.
    public var allowIdenticalExperts: Bool
    public var workingDirectory: String

    public init(seed: UInt64? = nil, threads: Int = ProcessInfo.processInfo.activeProcessorCount, shardSize: Int = 5_000_000_000,
                fusedExperts: Bool = false, allowIdenticalExperts: Bool = false,
                workingDirectory: String = FileManager.default.currentDirectoryPath) {
        self.seed = seed
        self.threads = max(1, threads)
        self.shardSize = shardSize
        self.fusedExperts = fusedExperts
        self.allowIdenticalExperts = allowIdenticalExperts
        self.workingDirectory = workingDirectory
    }
}

/// Turns a MoE recipe into a `MoEPlan` from configs, tensor headers and the tokenizer alone, so every mistake is
/// reported (at its recipe line where it has one) before any weight is read.
public enum MoEPlanner {
    public static func plan(_ recipe: MoERecipe, options: MoEOptions = MoEOptions()) throws -> MoEPlan {
        var warnings = recipe.warnings.map(\.description)
        let resolver = ModelResolver(recipeFile: recipe.file, workingDirectory: options.workingDirectory)
        let refs = recipe.referencedModels
        let models = try refs.map { try PlannedModel.open($0, resolver: resolver) }
        func index(_ r: ModelReference) -> Int { refs.firstIndex(of: r)! }
        let experts = recipe.experts.map { index($0.sourceModel) }
        let shared = recipe.sharedExperts.map { index($0.sourceModel) }

        if !options.allowIdenticalExperts, experts.count > 1, Set(experts).count == 1 {
            throw PlanError.recipe(recipe.location(of: "experts"),
                "every expert comes from \(recipe.experts[0].sourceModel): the MoE would cost more and compute exactly what that model "
                    + "does. "
                + "If you will train it afterwards, pass --i-understand-this-is-not-useful-without-training")
        }

        // The base must be a dense decoder the output formats know.
        let base = models[0]
        if base.architecture.expertCountKey != nil || base.config["num_local_experts"] != nil || base.config["num_experts"] != nil {
            throw PlanError.model(base.path,
                "base_model is already a mixture of experts (\(base.architecture.name)); a FrankenMoE is built from dense models")
        }
        func modelType(_ m: PlannedModel) -> String { m.config["model_type"]?.stringValue ?? m.architecture.name }
        let output = try MoEOutputs.select(recipe, modelTypes: ([0] + experts + shared).map { modelType(models[$0]) })

        let dims: ModelConfig
        do { dims = try ModelConfig(json: base.config, file: base.path) } catch {
            throw PlanError.model(base.path, "\(error)")
        }
        try checkExperts(recipe: recipe, models: models, experts: experts, shared: shared, dims: dims)

        let dtype = recipe.dtype ?? dims.dtype.flatMap { $0.isFloatingPoint ? $0 : nil } ?? .f32
        let context = MoEBuildContext(recipe: recipe, models: models, experts: experts, sharedExperts: shared,
                                      layerCount: dims.layerCount, hiddenSize: dims.hiddenSize, intermediateSize: dims.intermediateSize,
                                      headCount: dims.headCount, kvHeadCount: dims.kvHeadCount, headDim: dims.headDim,
                                      outputDType: dtype, fusedExperts: options.fusedExperts)
        var tensors = try output.tensors(context)
        try checkNothingDropped(tensors, context: context, output: output)

        let shards = ShardLayout(entries: tensors.map { SafetensorsWriter.Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape) },
                                 maxShardBytes: options.shardSize)
        for i in tensors.indices { tensors[i].shard = shards.shardOfEntry[i] }

        var config = output.outputConfig(context)
        if config["dtype"] != nil || config["torch_dtype"] == nil { config["dtype"] = .string(dtype.torchName) }
        if config["torch_dtype"] != nil { config["torch_dtype"] = .string(dtype.torchName) }

        let prompts = recipe.gateMode.usesPrompts ? try tokenize(recipe, base: base, vocabularySize: dims.vocabSize) : nil
        if recipe.gateMode.runsModel {
            // The engine must be able to run the base: its layout is checked now, from the headers.
            do { _ = try LanguageModel(path: base.path, threads: 1) } catch {
                throw PlanError.model(base.path,
                    "gate_mode `\(recipe.gateMode.rawValue)` runs the base model, which Crucible's engine cannot: \(error)")
            }
        }

        if base.folder == nil {
            // A GGUF base's vocabulary is exported as Hugging Face files; say now if it cannot be.
            do { _ = try TokenizerFileSet.contents(of: base.source, path: base.path) } catch {
                warnings.append("the base \(base.reference) is a GGUF file whose vocabulary cannot be exported (\(error)): the output "
                    + "gets no tokenizer files; score it with `crucible ppl --tokenizer \(base.path)`")
            }
        }
        let e = recipe.experts.count
        if e & (e - 1) != 0 {
            warnings.append("the MoE has \(e) experts, not a power of two: llama.cpp's older builds cannot load it")
        }
        if output is MixtralOutput, let window = dims.slidingWindow {
            warnings.append("the base attends within a sliding window of \(window) tokens; Mixtral output has none (sliding_window: null, "
                + "as mergekit writes it)")
        }

        let seed = options.seed ?? recipe.randomSeed ?? 0
        let estimate = estimateMemory(tensors: tensors, context: context, prompts: prompts, threads: options.threads, shards: shards)
        return MoEPlan(recipe: recipe, output: output, context: context, tensors: tensors, shards: shards, outputConfig: config,
                       seed: seed, threads: options.threads, prompts: prompts, estimate: estimate, warnings: warnings)
    }

    /// Every expert (and shared expert) must be the base's shape: same layer count and hidden size, and MLP weights
    /// of the base's shapes at every layer.
    private static func checkExperts(recipe: MoERecipe, models: [PlannedModel], experts: [Int], shared: [Int], dims: ModelConfig) throws {
        let base = models[0]
        let entries = recipe.experts.map { ($0, false) } + recipe.sharedExperts.map { ($0, true) }
        for ((entry, isShared), m) in zip(entries, experts + shared) {
            let model = models[m]
            let what = "\(isShared ? "shared expert" : "expert") \(entry.sourceModel)"
            if model.layerCount != dims.layerCount {
                throw PlanError.recipe(entry.sourceModel.location,
                    "\(what) has \(model.layerCount) layers but base_model \(base.reference) has \(dims.layerCount); every expert's layer "
                        + "l becomes the MoE's layer l, so the counts must match")
            }
            for l in 0..<dims.layerCount {
                for projection in ["gate_proj", "up_proj", "down_proj"] {
                    let name = "model.layers.\(l).mlp.\(projection).weight"
                    guard let want = base.source.info(name) else {
                        throw PlanError.model(base.path,
                                              "tensor '\(name)' is missing: the base must be a dense model with gate/up/down MLP weights")
                    }
                    guard let have = model.source.info(name) else {
                        throw PlanError.recipe(entry.sourceModel.location, "\(what) (\(model.path)) has no tensor '\(name)'")
                    }
                    if have.shape != want.shape {
                        throw PlanError.recipe(entry.sourceModel.location,
                            "\(what): tensor '\(name)' has shape \(have.shape) but the base's is \(want.shape); experts must share the "
                                + "base's architecture and sizes")
                    }
                    if !have.dtype.isFloatingPoint {
                        throw PlanError.model(model.path, "tensor '\(name)' is stored as \(have.storage), which cannot be converted")
                    }
                }
            }
        }
    }

    /// Refuses an output that would silently drop weights: every base tensor outside the MLP must be written (a Mixtral
    /// output has no attention biases, for instance), and experts must have no MLP weights besides gate/up/down.
    private static func checkNothingDropped(_ tensors: [MoETensor], context: MoEBuildContext, output: any MoEOutputArchitecture) throws {
        var used = Set<String>()
        for t in tensors {
            for piece in t.pieces { if case let .tensor(model, name, _, _, _, _) = piece, model == 0 { used.insert(name) } }
        }
        let mlpWeight = { (name: String) in
            name.hasSuffix(".mlp.gate_proj.weight") || name.hasSuffix(".mlp.up_proj.weight") || name.hasSuffix(".mlp.down_proj.weight")
        }
        let tiedHead = { (name: String) in name == "lm_head.weight" && !tensors.contains { $0.name == "lm_head.weight" } }
        let dropped = context.base.source.tensorNames.filter { !used.contains($0) && !mlpWeight($0)
            && !tiedHead($0) && !$0.hasPrefix("rope_freqs") }
        if !dropped.isEmpty {
            let list = dropped.prefix(4).map { "'\($0)'" }.joined(separator: ", ") + (dropped.count > 4 ? " and \(dropped.count - 4) "
                + "more" : "")
            throw PlanError.model(context.base.path,
                "a \(output.name) output has no place for \(list) of the base; building it would silently change the model (choose "
                    + "another `architecture:`)")
        }
        for m in Set(context.experts + context.sharedExperts) {
            let model = context.models[m]
            if let extra = model.source.tensorNames.first(where: { $0.contains(".mlp.") && !mlpWeight($0) }) {
                throw PlanError.model(model.path, "tensor '\(extra)' is part of its MLP but a \(output.name) expert has no place for it")
            }
        }
    }

    /// Tokenizes every prompt as mergekit-moe does: the BOS token's text (nothing when there is no BOS) + the prompt,
    /// no special tokens added, special tokens written in the text matched.
    private static func tokenize(_ recipe: MoERecipe, base: PlannedModel, vocabularySize: Int) throws -> GatePrompts {
        let tokenizer: Tokenizer
        do { tokenizer = try TokenizerLoader.loadAsTransformers(path: base.path,
                                                                modelType: base.config["model_type"]?.stringValue) } catch {
            throw PlanError.model(base.path,
                "gate_mode `\(recipe.gateMode.rawValue)` tokenizes the prompts with the base's tokenizer, which cannot be loaded: \(error)")
        }
        let bosText = tokenizer.bosID.flatMap { tokenizer.tokenText($0) } ?? ""
        guard let pad = tokenizer.bosID ?? tokenizer.eosID else {
            throw PlanError.model(base.path, "the tokenizer has neither a BOS nor an EOS token to pad the prompts with")
        }
        func encode(_ prompts: [String], _ entry: MoEExpert) throws -> [[Int]] {
            try prompts.map { prompt in
                let ids = tokenizer.encode(bosText + prompt, addSpecial: false, parseSpecial: true)
                guard !ids.isEmpty else {
                    throw PlanError.recipe(entry.location, "a prompt of \(entry.sourceModel) tokenizes to nothing")
                }
                if let bad = ids.first(where: { $0 >= vocabularySize }) {
                    throw PlanError.recipe(entry.location,
                        "a prompt of \(entry.sourceModel) has token \(bad), outside the base's vocabulary of \(vocabularySize)")
                }
                return ids
            }
        }
        func expert(_ entry: MoEExpert) throws -> GatePrompts.Expert {
            GatePrompts.Expert(positive: try encode(entry.positivePrompts, entry), negative: try encode(entry.negativePrompts, entry))
        }
        return GatePrompts(routed: try recipe.experts.map(expert), shared: try recipe.sharedExperts.map(expert), padID: pad)
    }

    static func estimateMemory(tensors: [MoETensor], context: MoEBuildContext, prompts: GatePrompts?, threads: Int,
                               shards: ShardLayout) -> MoEEstimate {
        func inputBytes(_ t: MoETensor) -> Int {
            t.pieces.reduce(0) { total, piece in
                guard case let .tensor(model, name, _, _, _, _) = piece,
                      let info = context.models[model].source.info(name) else { return total }
                return total + info.elementCount * info.dtype.byteSize
            }
        }
        let overhead = 40_000_000
        let block = MoEBuilder.blockElements * (4 + 4)
        let perTensor = tensors.map { inputBytes($0) + min($0.elementCount, MoEBuilder.blockElements) * 8 }.sorted(by: >)
        let write = perTensor.prefix(threads).reduce(0, +) + threads * block + overhead
        var gate = 0
        let read = tensors.reduce(0) { $0 + inputBytes($1) }
        if context.recipe.gateMode.runsModel, let prompts {
            // The base's pages are all touched once, one matrix at a time is converted to float32, and activations
            // for a packed call of at most `tokensPerCall` tokens.
            let base = context.base.source
            let stored = base.tensorNames.reduce(0) { $0 + (base.info($1).map { $0.elementCount * $0.dtype.byteSize } ?? 0) }
            let matrix = context.intermediateSize * context.hiddenSize * 4
            let tokens = min(prompts.tokenCount + 1, GateRows.tokensPerCall)
            let activations = tokens * (6 * context.hiddenSize + 2 * context.intermediateSize) * 4
                + tokens * context.layerCount * context.kvHeadCount * context.headDim * 8
            gate = stored + matrix + activations + overhead
        }
        return MoEEstimate(bytesRead: read, bytesWritten: shards.totalBytes, gateMemory: gate, writeMemory: write)
    }
}
