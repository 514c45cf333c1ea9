import ArchitectureDefinitions
import Architectures
import Checkpoints
import Foundation
import MergeMethods
import Numerics
import Recipes
import Tokenization

/// Options that do not come from the recipe.
public struct PlannerOptions: Sendable {
    /// Overrides the recipe's `random_seed`.
    public var seed: UInt64?
    public var threads: Int
    /// Shard size in bytes (mergekit's rule: a shard is closed before a tensor that would take it past this).
    public var shardSize: Int
    /// Bytes of tensors in flight the executor may hold (default: 1 GiB, or the largest task if larger).
    public var memoryBudget: Int?
    public var workingDirectory: String
    /// Stages of a multi-stage recipe: name → output folder (model references naming a stage resolve to its folder).
    public var stageOutputs: [String: String] = [:]
    /// Plans of stages not built yet, by output folder: their outputs' headers stand in for the folders (`--dry-run`).
    public var pendingStages: [String: MergePlan] = [:]

    public init(seed: UInt64? = nil, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                shardSize: Int = 5_000_000_000, memoryBudget: Int? = nil,
                workingDirectory: String = FileManager.default.currentDirectoryPath) {
        self.seed = seed
        self.threads = max(1, threads)
        self.shardSize = shardSize
        self.memoryBudget = memoryBudget
        self.workingDirectory = workingDirectory
    }
}

/// Turns a recipe into a `MergePlan`, reading only configs and tensor headers, so that a bad recipe
/// fails in seconds, before any tensor data is touched.
///
/// `plan` runs the steps docs/design.md lists, in order, each a method of `PlanBuilder` below: resolve the models,
/// match their architecture, normalise the recipe to slices, check the method, make one task per output tensor
/// (sources, parameters, dtypes), rewrite the config, lay out the shards, choose the tokenizer donor, estimate memory.
public enum MergePlanner {
    public static func plan(_ recipe: MergeRecipe, options: PlannerOptions = PlannerOptions()) throws -> MergePlan {
        var builder = try PlanBuilder(recipe: recipe, options: options)
        try builder.resolveModels()
        try builder.matchArchitecture()
        try builder.normaliseSlices()
        try builder.checkMethod()
        try builder.buildVocabulary()
        try builder.makeTasks()
        try builder.rewriteConfig()
        builder.layOutShards()
        try builder.chooseTokenizerDonor()
        return builder.finish()
    }

    /// Precedence: the first level that yields a value wins.
    static func resolve(_ name: String, levels: [[String: LocatedSetting]], tensorName: String, t: Double) -> ParameterValue? {
        resolveLocated(name, levels: levels, tensorName: tensorName, t: t)?.value
    }

    /// A warning for every parameter the recipe sets (per model, per slice source, per slice or for the whole recipe)
    /// that the method does not declare, with the closest declared name: a typo such as `wieght` is otherwise ignored.
    static func unknownParameterWarnings(recipe: MergeRecipe, method: any MergeMethod) -> [String] {
        let known = (method.perModelParameters + method.globalParameters).map(\.name)
        var levels: [[String: LocatedSetting]] = [recipe.parameters]
        recipe.models?.forEach { levels.append($0.parameters) }
        recipe.slices?.forEach { slice in
            levels.append(slice.parameters)
            slice.sources.forEach { levels.append($0.parameters) }
        }
        var seen = Set<String>()
        var out: [String] = []
        for level in levels {
            for (name, setting) in level.sorted(by: { $0.key < $1.key }) where !known.contains(name) {
                let text = "\(setting.location): unknown parameter `\(name)` for merge method '\(method.name)' is ignored"
                    + (closestName(to: name, among: known).map { " (did you mean `\($0)`?)" } ?? "")
                    + (known.isEmpty ? "" : "; it takes " + known.map { "`\($0)`" }.joined(separator: ", "))
                if seen.insert(text).inserted { out.append(text) }
            }
        }
        return out
    }

    /// `resolve`, with the recipe location of the setting that gave the value.
    static func resolveLocated(_ name: String, levels: [[String: LocatedSetting]], tensorName: String,
                               t: Double) -> (value: ParameterValue, location: SourceLocation)? {
        for level in levels {
            if let s = level[name], let v = s.setting.evaluate(tensorName: tensorName, t: t) { return (v, s.location) }
        }
        return nil
    }

    static func expertIndex(in name: String, template: WeightTemplate, layer: Int) -> Int? {
        let pattern = template.resolved(layer: layer)
        guard let r = pattern.range(of: "${expert_index}") else { return nil }
        let prefix = pattern[..<r.lowerBound]
        let rest = name.dropFirst(prefix.count)
        return Int(rest.prefix { $0.isNumber })
    }

    static func estimateMemory(tasks: [TensorTask], method: any MergeMethod, threads: Int, budget: Int?) -> PlanEstimate {
        let read = tasks.reduce(0) { $0 + $1.inputBytes }
        let written = tasks.reduce(0) { $0 + $1.outputBytes }
        let sets = tasks.map { workingSet($0, method: method) }
        let largest = sets.max() ?? 0
        let memoryBudget = max(largest, budget ?? (1 << 30))
        // Tasks in flight are bounded by the budget; the process itself (code, maps' page tables, buffers) adds ~40 MB.
        let inFlight = min(memoryBudget, sets.sorted(by: >).prefix(threads).reduce(0, +))
        return PlanEstimate(bytesRead: read, bytesWritten: written, largestTaskBytes: largest,
                            memoryBudget: memoryBudget, peakMemory: inFlight + 40_000_000)
    }

    /// Bytes one task holds while it runs: the parents' mapped pages of its tensor (resident until the task releases
    /// them), plus its buffers. A streamed task holds one block per input, the output block and its bytes, plus the
    /// method's whole-tensor scratch (selection keys, masks), independent of the number of parents.
    static func workingSet(_ task: TensorTask, method: any MergeMethod) -> Int {
        if task.operation == .copy { return task.inputBytes }
        let vocabulary = task.vocabulary?.scratchBytes ?? 0
        if let m = PlanExecutorTask.streamingMethod(task, method: method) {
            let block = min(task.elementCount, PlanExecutor.streamBlockElements)
            return task.inputBytes + block * 4 * (task.inputs.count + 1) + block * task.outputDType.byteSize
                + m.streamingScratchBytes(count: task.elementCount, inputCount: task.inputs.count) + vocabulary
        }
        let n = task.elementwise ? min(task.elementCount, PlanExecutor.blockElements) : task.elementCount
        // float32 inputs + output + one scratch copy, plus the converted output bytes.
        return task.inputBytes + n * 4 * (task.inputs.count + 2) + n * task.outputDType.byteSize + vocabulary
    }
}

/// The state of one planning run; each step reads what the steps before it settled.
private struct PlanBuilder {
    /// One slice, normalised: `models:` recipes become a single slice spanning every layer.
    struct PlanSlice {
        struct Source {
            let model: Int            // index into models
            let range: Range<Int>
            let parameters: [String: LocatedSetting]
        }
        let sources: [Source]
        let parameters: [String: LocatedSetting]
        let base: Int?                // index into models
        var length: Int { sources.first?.range.count ?? 0 }
    }

    let recipe: MergeRecipe
    let options: PlannerOptions
    let method: any MergeMethod
    var warnings: [String]
    /// Every referenced model, in order of first mention, and the models opened from them.
    var refs: [ModelReference] = []
    var models: [PlannedModel] = []
    var arch: WeightTable!
    var experts = 0
    var slices: [PlanSlice] = []
    var tasks: [TensorTask] = []
    /// Which parent model and layer each output layer comes from (for per-layer config arrays).
    var layerOrigins: [(model: Int, layer: Int)] = []
    var config = JSONObject()
    var donor = 0
    var tokenizerDonor = 0
    var shards: ShardLayout!
    /// The output vocabulary, when the recipe sets `tokenizer_source` or `tokenizer`.
    var vocabulary: VocabularyPlan?

    /// Looks up the merge method.
    init(recipe: MergeRecipe, options: PlannerOptions) throws {
        guard let method = MergeMethodRegistry.method(named: recipe.mergeMethod) else {
            let suggestion = closestName(to: recipe.mergeMethod, among: MergeMethodRegistry.names).map { " Did you mean '\($0)'?" } ?? ""
            throw PlanError.recipe(recipe.mergeMethodLocation,
                "unknown merge method '\(recipe.mergeMethod)'.\(suggestion) Known methods: "
                    + "\(MergeMethodRegistry.names.joined(separator: ", ")).")
        }
        self.recipe = recipe
        self.options = options
        self.method = method
        warnings = recipe.warnings.map(\.description)
    }

    func index(_ r: ModelReference) -> Int { refs.firstIndex(of: r)! }

    /// Resolves and opens every referenced model once, in order of first mention.
    mutating func resolveModels() throws {
        var resolver = ModelResolver(recipe: recipe, workingDirectory: options.workingDirectory)
        resolver.aliases = options.stageOutputs
        var refs: [ModelReference] = []
        func note(_ r: ModelReference?) { if let r, !refs.contains(r) { refs.append(r) } }
        if let models = recipe.models { models.forEach { note($0.model) } }
        if let slices = recipe.slices { slices.forEach { s in s.sources.forEach { note($0.model) } } }
        note(recipe.baseModel)
        recipe.slices?.forEach { note($0.baseModel) }
        self.refs = refs
        models = try refs.map { try PlannedModel.open($0, resolver: resolver, pending: options.pendingStages) }
    }

    /// One architecture for all parents.
    mutating func matchArchitecture() throws {
        let arch = models[0].architecture
        self.arch = arch
        experts = arch.expertCount(in: models[0].config)
        if arch.isInferred {
            warnings.append("\(models[0].reference): no architecture table for '\(arch.architectures[0])'; its weights were inferred from "
                + "tensor names (\(arch.layerWeights.count) per layer, \(models[0].layerCount) layers)")
        }
        for m in models.dropFirst() where m.architecture.name != arch.name {
            throw PlanError.recipe(m.reference.location,
                "\(m.reference) is a \(m.architecture.name) model but \(models[0].reference) is \(arch.name); parents must share an "
                    + "architecture")
        }
    }

    /// `models:` recipes become one slice over every layer; `slices:` are checked (ranges, equal lengths, base).
    mutating func normaliseSlices() throws {
        let models = self.models
        if let list = recipe.models {
            let counts = list.map { models[index($0.model)].layerCount }
            if Set(counts).count > 1 {
                let detail = zip(list, counts).map { "\($0.0.model) has \($0.1)" }.joined(separator: ", ")
                throw PlanError.recipe(recipe.keyLocations["models"] ?? recipe.mergeMethodLocation,
                    "the models have different layer counts (\(detail)); use slices with layer_range to combine them")
            }
            let base = recipe.baseModel.map(index)
            slices.append(PlanSlice(
                sources: list.map { .init(model: index($0.model), range: 0..<models[index($0.model)].layerCount,
                                          parameters: $0.parameters) },
                parameters: [:], base: base))
        } else if let list = recipe.slices {
            for s in list {
                guard !s.sources.isEmpty else { throw PlanError.recipe(s.location, "a slice needs at least one source") }
                var sources: [PlanSlice.Source] = []
                for src in s.sources {
                    let m = index(src.model)
                    let n = models[m].layerCount
                    let range = src.layerRange ?? 0..<n
                    if range.lowerBound < 0 || range.upperBound > n || range.isEmpty {
                        throw PlanError.recipe(src.layerRangeLocation ?? src.model.location,
                            "layer_range [\(range.lowerBound), \(range.upperBound)] is out of bounds: \(src.model) has \(n) layers (valid "
                                + "ranges lie within [0, \(n)])")
                    }
                    sources.append(.init(model: m, range: range, parameters: src.parameters))
                }
                let lengths = sources.map(\.range.count)
                if Set(lengths).count > 1 {
                    throw PlanError.recipe(s.location,
                        "all sources of a slice must cover the same number of layers; here they cover "
                            + "\(lengths.map(String.init).joined(separator: ", "))")
                }
                let baseRef = s.baseModel ?? recipe.baseModel
                var base: Int? = nil
                if let baseRef, method.baseModel != .unused {
                    base = index(baseRef)
                    if !sources.contains(where: { $0.model == base }) {
                        throw PlanError.recipe(s.location,
                            "base_model \(baseRef) is not among this slice's sources; list it in the slice (mergekit does not add it)")
                    }
                } else if let baseRef {
                    base = index(baseRef)
                }
                slices.append(PlanSlice(sources: sources, parameters: s.parameters, base: base))
            }
        }
        guard !slices.isEmpty else {
            throw PlanError.recipe(recipe.mergeMethodLocation, "the recipe lists no models")
        }
        warnings += MergePlanner.unknownParameterWarnings(recipe: recipe, method: method)
    }

    /// Method-level checks before any tensor is looked at.
    func checkMethod() throws {
        for s in slices {
            if method.baseModel == .required && s.base == nil {
                throw PlanError.recipe(recipe.mergeMethodLocation,
                    "merge method '\(method.name)' needs base_model (the model the others are measured against)")
            }
            do {
                try method.validate(inputCount: s.sources.count, hasBase: s.base != nil && method.baseModel != .unused)
            } catch let e as MergeMethodError {
                throw PlanError.recipe(recipe.mergeMethodLocation, e.message)
            }
        }
    }

    /// The output vocabulary and each parent's permutation into it (docs/tokenizer-merging.md), before any task is made:
    /// vocabulary-indexed tensors are then re-indexed to it.
    mutating func buildVocabulary() throws {
        guard let settings = recipe.tokenizer else { return }
        let resolver = ModelResolver(recipe: recipe, workingDirectory: options.workingDirectory)
        vocabulary = try VocabularyPlan.build(settings: settings, recipe: recipe, refs: refs, models: models, resolver: resolver,
                                              warnings: &warnings)
    }

    /// One task per output tensor: pre-weights from the first slice, layers renumbered consecutively across
    /// slices (t restarts in each), post-weights from the last slice.
    mutating func makeTasks() throws {
        for w in arch.preWeights {
            let first = slices[0]
            if let task = try makeTask(template: w, slice: first, sourceNames: first.sources.map { _ in w.name },
                                       outputName: w.name, layer: nil, t: 0) {
                tasks.append(task)
            }
        }
        var outLayer = 0
        for s in slices {
            for o in 0..<s.length {
                let t = s.length > 1 ? Double(o) / Double(s.length - 1) : 1
                for (outName, w) in arch.layerWeightNames(layer: outLayer, experts: experts) {
                    let names = s.sources.map { src -> String in
                        let sourceLayer = src.range.lowerBound + o
                        if w.isPerExpert, let e = MergePlanner.expertIndex(in: outName, template: w, layer: outLayer) {
                            return w.resolved(layer: sourceLayer, expert: e)
                        }
                        return w.resolved(layer: sourceLayer)
                    }
                    if let task = try makeTask(template: w, slice: s, sourceNames: names, outputName: outName, layer: outLayer, t: t) {
                        tasks.append(task)
                    }
                }
                layerOrigins.append((s.sources[0].model, s.sources[0].range.lowerBound + o))
                outLayer += 1
            }
        }
        for w in arch.postWeights {
            let last = slices[slices.count - 1]
            if let task = try makeTask(template: w, slice: last, sourceNames: last.sources.map { _ in w.name },
                                       outputName: w.name, layer: nil, t: 0) {
                tasks.append(task)
            }
        }
    }

    /// The task for one output tensor: which parents hold it (tied heads fall back to the embedding), each input's
    /// parameters, the shape (vocabulary-indexed tensors re-indexed to the output vocabulary), the method's global
    /// parameters, the output dtype, and whether it is a plain copy.
    mutating func makeTask(template: WeightTemplate, slice: PlanSlice, sourceNames: [String], outputName: String,
                           layer: Int?, t: Double) throws -> TensorTask? {
        // Which sources hold the tensor; tied heads fall back to the embedding.
        let present = zip(slice.sources, sourceNames).map { models[$0.0.model].source.info($0.1) != nil }
        if !present.contains(true) {
            if template.optional { return nil }
            let m = models[slice.sources[0].model]
            throw PlanError.model(m.path, "tensor '\(sourceNames[0])' is missing (the \(arch.name) architecture requires it)")
        }
        var inputs: [PlannedInput] = []
        var baseIndex: Int? = nil
        for (k, (src, name)) in zip(slice.sources, sourceNames).enumerated() {
            let m = models[src.model]
            var actual = name
            if !present[k] {
                if let tied = template.tiedTo, m.source.info(tied) != nil {
                    actual = tied
                    if m.config["tie_word_embeddings"]?.boolValue != true {
                        warnings.append("\(m.reference) has no '\(name)' and its config does not tie it to '\(tied)' "
                            + "(tie_word_embeddings is not true); its '\(tied)' stands in for it")
                    }
                } else {
                    throw PlanError.model(m.path, "tensor '\(name)' is missing, but other parents have it")
                }
            }
            let info = m.source.info(actual)!
            var params: [String: ParameterValue] = [:]
            let isBase = src.model == slice.base && method.baseModel != .unused
            for def in method.perModelParameters {
                let levels = [src.parameters, slice.parameters, recipe.parameters]
                if let (v, at) = MergePlanner.resolveLocated(def.name, levels: levels, tensorName: actual, t: t) {
                    if let problem = def.problem(with: v) {
                        throw PlanError.recipe(at, "parameter '\(def.name)' for \(m.reference) (tensor \(actual)) \(problem)")
                    }
                    params[def.name] = v
                } else if let d = def.defaultValue {
                    params[def.name] = d
                } else if def.required && !isBase {
                    throw PlanError.recipe(m.reference.location,
                        "missing required parameter '\(def.name)' for \(m.reference) (tensor \(actual)); set it under the model's "
                            + "parameters or the recipe's")
                }
            }
            if isBase && baseIndex == nil { baseIndex = inputs.count }
            inputs.append(PlannedInput(model: src.model, tensorName: actual, info: info, parameters: params))
        }
        // With a tokenizer setting, vocabulary-indexed inputs are re-indexed to the output vocabulary (rows matched by token).
        var aligned: TaskVocabulary?
        if template.isEmbed, let vocabulary {
            var notes: [String] = []
            let v = try vocabulary.alignment(tensor: outputName, inputs: inputs.map { ($0.model, $0.info) }, models: models,
                                             warnings: &notes)
            for n in notes where !warnings.contains(n) { warnings.append(n) }
            inputs = inputs.map { inp in
                let shape = [v.rowCount] + inp.info.shape.dropFirst()
                return PlannedInput(model: inp.model, tensorName: inp.tensorName,
                                    info: TensorInfo(name: inp.tensorName, dtype: inp.info.dtype, shape: shape, storage: inp.info.storage),
                                    parameters: inp.parameters)
            }
            aligned = v
        }
        if method.baseModel == .required && baseIndex == nil {
            throw PlanError.tensor(outputName, "the base model has no tensor for it")
        }
        // Shapes must agree. Vocabulary-indexed tensors of different sizes need a tokenizer setting, as in mergekit 0.1.5:
        // without one, row i need not be the same token in every parent.
        let shape = inputs[0].info.shape
        for inp in inputs.dropFirst() where inp.info.shape != shape {
            let detail = inputs.map { "\(models[$0.model].reference) \($0.info.shape)" }.joined(separator: ", ")
            if template.isEmbed && inp.info.shape.dropFirst() == shape.dropFirst() {
                throw PlanError.recipe(recipe.keyLocations["models"] ?? recipe.keyLocations["slices"] ?? recipe.mergeMethodLocation,
                    "the parents' vocabularies differ in size (tensor '\(outputName)': \(detail)); set `tokenizer_source: base` "
                        + "(the base's tokens), `union` (every parent's tokens) or a model, so rows are matched by token "
                        + "(docs/tokenizer-merging.md)")
            }
            throw PlanError.tensor(outputName, "parents disagree on its shape: \(detail)")
        }
        var global: [String: ParameterValue] = [:]
        for def in method.globalParameters {
            if let (v, at) = MergePlanner.resolveLocated(def.name, levels: [slice.parameters, recipe.parameters],
                                                         tensorName: outputName, t: t) {
                if let problem = def.problem(with: v) {
                    throw PlanError.recipe(at, "parameter '\(def.name)' of merge method '\(method.name)' (tensor \(outputName)) \(problem)")
                }
                global[def.name] = v
            } else if let d = def.defaultValue {
                global[def.name] = d
            } else if def.required {
                throw PlanError.recipe(recipe.mergeMethodLocation,
                    "missing required parameter '\(def.name)' for merge method '\(method.name)' (tensor \(outputName))")
            }
        }
        let dtypes = inputs.map(\.info.dtype)
        let allFloat = dtypes.allSatisfy(\.isFloatingPoint)
        let outDType: DType
        if let d = recipe.outDType ?? recipe.dtype, allFloat {
            outDType = d
        } else {
            outDType = dtypes.dropFirst().reduce(dtypes[0]) { DType.promote($0, $1) }
        }
        let hasScale = inputs.contains { $0.parameters["scale"] != nil }
        let copy = method.copiesSoleInput && inputs.count == 1 && !hasScale && aligned == nil && dtypes[0] == outDType
        if !allFloat && !copy {
            throw PlanError.tensor(outputName,
                "stored as \(dtypes.map(\.rawValue).joined(separator: "/")), which cannot be merged (only float tensors can); only "
                    + "passthrough copies it")
        }
        let compute: DType? = (recipe.dtype == .bf16 || recipe.dtype == .f16) ? recipe.dtype : nil
        var task = TensorTask(outputName: outputName, shape: shape, outputDType: outDType, inputs: inputs, baseIndex: baseIndex,
                              global: global, operation: copy ? .copy : .merge, computeDType: compute, layer: layer, t: t,
                              elementwise: method.isElementwise(global: global, perModel: inputs.map(\.parameters)))
        task.vocabulary = aligned
        return task
    }

    /// The output config: the base's, else the first model's, with the output dtype; for slices, the layer count
    /// and every per-layer array rebuilt from the layers' origins (those describing positions, such as layer_types,
    /// keep the donor's pattern).
    mutating func rewriteConfig() throws {
        let outLayers = layerOrigins.count
        donor = slices[0].base ?? recipe.baseModel.map(index) ?? slices[0].sources[0].model
        config = models[donor].config
        if let vocabulary { config["vocab_size"] = .int(Int64(vocabulary.rowCount)) }
        let outDTypeName = (recipe.outDType ?? recipe.dtype)?.torchName
            ?? tasks.first(where: { $0.outputDType.isFloatingPoint })?.outputDType.torchName
        if let outDTypeName {
            if config["dtype"] != nil || config["torch_dtype"] == nil { config["dtype"] = .string(outDTypeName) }
            if config["torch_dtype"] != nil { config["torch_dtype"] = .string(outDTypeName) }
        }
        if recipe.slices != nil {
            let original = models[donor].layerCount
            config[arch.layerCountKey] = .int(Int64(outLayers))
            // Per-layer arrays (layer_types, sliding-window patterns…) follow the layers they describe: those the
            // architecture declares must have one entry per layer; any other array of that length is taken as one.
            let positional = arch.positionalConfigArrays
            for key in arch.perLayerConfigKeys + positional.map(\.key) {
                guard case let .array(values)? = config[key], values.count != original else { continue }
                throw PlanError.model(models[donor].path, "config '\(key)' has \(values.count) entries for \(original) layers")
            }
            // Arrays describing output positions (layer_types) keep the donor's pattern, extended to the new depth.
            for array in positional {
                guard case let .array(values)? = config[array.key] else { continue }
                let period = array.periodKey.flatMap { config[$0]?.intValue }.flatMap { $0 > 0 ? $0 : nil }
                config[array.key] = .array(array.extended(values, to: outLayers, period: period))
            }
            for key in config.keys {
                guard key != arch.layerCountKey, !positional.contains(where: { $0.key == key }),
                      case let .array(values)? = config[key], values.count == original else { continue }
                let rebuilt = layerOrigins.map { origin -> JSONValue in
                    if case let .array(src)? = models[origin.model].config[key], origin.layer < src.count { return src[origin.layer] }
                    return values[min(origin.layer, values.count - 1)]
                }
                config[key] = .array(rebuilt)
            }
        }
    }

    /// Shards as mergekit closes them, and each task's shard.
    mutating func layOutShards() {
        shards = ShardLayout(entries: tasks.map { SafetensorsWriter.Entry(name: $0.outputName, dtype: $0.outputDType,
                                                                          shape: $0.shape) },
                             maxShardBytes: options.shardSize)
        for i in tasks.indices { tasks[i].shard = shards.shardOfEntry[i] }
    }

    /// `tokenizer_source`, else the config donor. A GGUF donor's vocabulary is exported as Hugging Face files;
    /// trying it now tells a --dry-run user whether the output will have a tokenizer.
    mutating func chooseTokenizerDonor() throws {
        tokenizerDonor = donor
        if let vocabulary {
            // The tokenizer is built (VocabularyPlan), not copied.
            tokenizerDonor = vocabulary.donorModel ?? donor
            return
        }

        if models[tokenizerDonor].folder == nil {
            do {
                _ = try TokenizerFileSet.contents(of: models[tokenizerDonor].source, path: models[tokenizerDonor].path)
            } catch {
                warnings.append("the tokenizer donor \(models[tokenizerDonor].reference) is a GGUF file whose vocabulary cannot be "
                    + "exported (\(error)): no tokenizer files are copied into the output; set tokenizer_source to a Hugging Face folder, "
                        + "or score with `crucible ppl --tokenizer \(models[tokenizerDonor].path)`")
            }
        }
    }

    /// The plan, with its memory estimate.
    func finish() -> MergePlan {
        let seed = options.seed ?? recipe.randomSeed ?? 0
        let estimate = MergePlanner.estimateMemory(tasks: tasks, method: method, threads: options.threads,
                                                   budget: options.memoryBudget)
        var plan = MergePlan(recipe: recipe, method: method, models: models, tasks: tasks, shards: shards,
                             outputConfig: config, tokenizerDonor: tokenizerDonor, seed: seed, threads: options.threads,
                             estimate: estimate, warnings: warnings)
        plan.vocabulary = vocabulary
        return plan
    }
}
