import ArchitectureDefinitions
import Architectures
import Checkpoints
import MergeMethods
import Numerics
import Recipes

/// A parent checkpoint as the plan uses it.
public struct PlannedModel: @unchecked Sendable {
    public let reference: ModelReference
    /// The resolved local path (folder or .gguf file).
    public let path: String
    public let source: any TensorSource
    public let config: JSONObject
    public let architecture: WeightTable
    public let layerCount: Int
    /// The folder tokenizer and generation files are copied from (nil for a bare GGUF file).
    public let folder: String?
    /// The PEFT adapter folder of a `model+adapter` reference, applied as tensors are read (`LoRASource`).
    public let adapter: String?

    /// Every path this input reads: the model and its adapter (an output may neither be nor hold one).
    public var inputPaths: [String] { [path] + (adapter.map { [$0] } ?? []) }
}

extension PlannedModel {
    /// Resolves `ref` and opens its checkpoint (config and tensor headers only), matched to an architecture table.
    /// A `model+adapter` reference is the model's checkpoint with the LoRA adapter applied as tensors are read;
    /// its config, tokenizer and vocabulary are the model's.
    /// `pending` maps the output folders of stages not built yet to their plans, whose output headers stand in for them.
    public static func open(_ ref: ModelReference, resolver: ModelResolver, pending: [String: MergePlan] = [:]) throws -> PlannedModel {
        let resolved = try resolver.resolveWithAdapter(ref)
        let path = resolved.model
        var checkpoint = try pending[path].map { PlannedOutput.checkpoint(of: $0, at: path) } ?? Checkpoint.open(path)
        if let folder = resolved.adapter {
            let source = try LoRASource(base: checkpoint.source, adapter: try LoRAAdapter.open(folder))
            checkpoint = Checkpoint(path: path, source: source, config: checkpoint.config, configPath: checkpoint.configPath,
                                    isGGUF: checkpoint.isGGUF)
        }
        let names = Set(checkpoint.source.tensorNames)
        guard let arch = ArchitectureRegistry.table(config: checkpoint.config, tensorNames: names) else {
            let a = checkpoint.config["architectures"]?.arrayValue?.first?.stringValue
                ?? checkpoint.config["model_type"]?.stringValue ?? "unknown"
            throw PlanError.model(path,
                "architecture '\(a)' is not supported; supported: \(ArchitectureRegistry.supportedArchitectures.joined(separator: ", "))")
        }
        guard let layers = arch.layerCount(in: checkpoint.config) else {
            throw PlanError.model(checkpoint.configPath, "config has no '\(arch.layerCountKey)'")
        }
        if !arch.isInferred {
            // The output inherits a parent's config: one that contradicts its own tensors is refused here, not by
            // `crucible ppl` after the merge.
            do {
                try ConfigValidation.checkShapes(config: checkpoint.config, file: checkpoint.configPath, source: checkpoint.source)
            } catch {
                if case let .invalidConfig(_, reason)? = error as? CheckpointError {
                    throw PlanError.model(checkpoint.configPath, "invalid config: \(reason)")
                }
                throw error
            }
        }
        return PlannedModel(reference: ref, path: path, source: checkpoint.source, config: checkpoint.config,
                            architecture: arch, layerCount: layers, folder: checkpoint.isGGUF ? nil : path,
                            adapter: resolved.adapter)
    }
}

/// One input of one output tensor.
public struct PlannedInput: Sendable {
    /// Index into `MergePlan.models`.
    public let model: Int
    /// The tensor's name in that model (differs from the output name for slices and tied heads).
    public let tensorName: String
    public let info: TensorInfo
    /// Per-model parameters resolved for this tensor, defaults filled in.
    public let parameters: [String: ParameterValue]
}

/// What to do for one output tensor.
public struct TensorTask: Sendable {
    public enum Operation: Sendable, Equatable {
        /// Run the merge method.
        case merge
        /// Copy the single input's stored bytes unchanged (passthrough without scale, same dtype).
        case copy
    }

    public let outputName: String
    /// Output shape (vocabulary-indexed tensors: the output vocabulary's row count).
    public let shape: [Int]
    public let outputDType: DType
    public let inputs: [PlannedInput]
    /// Index into `inputs` of the base model's tensor.
    public let baseIndex: Int?
    public let global: [String: ParameterValue]
    public let operation: Operation
    /// The recipe's compute dtype: float inputs are rounded to it before merging, as mergekit casts on load.
    public let computeDType: DType?
    /// Output layer index (nil for embeddings, final norm, head) and the gradient position used.
    public let layer: Int?
    public let t: Double
    /// Whether the method may stream this tensor in blocks.
    public let elementwise: Bool
    public var shard: Int = 0
    /// How vocabulary-indexed inputs are re-indexed to the output vocabulary (nil without a tokenizer setting).
    public var vocabulary: TaskVocabulary? = nil

    public var elementCount: Int { shape.reduce(1, *) }
    public var outputBytes: Int { elementCount * outputDType.byteSize }
    public var inputBytes: Int { inputs.reduce(0) { $0 + $1.info.elementCount * $1.info.dtype.byteSize } }
}

/// Sizes the executor will need.
public struct PlanEstimate: Sendable {
    public let bytesRead: Int
    public let bytesWritten: Int
    /// The largest single tensor task's working set (float32 inputs, scratch and output).
    public let largestTaskBytes: Int
    /// The executor's memory budget for tensors in flight.
    public let memoryBudget: Int
    /// Estimated peak resident memory of the whole process.
    public let peakMemory: Int
}

/// A fully resolved merge: every output tensor with its sources, method and parameters, checked against
/// the parents' headers before any tensor data is read.
public struct MergePlan: @unchecked Sendable {
    public let recipe: MergeRecipe
    public let method: any MergeMethod
    public let models: [PlannedModel]
    public let tasks: [TensorTask]
    /// The output shards (task `i` is entry `i`).
    public let shards: ShardLayout
    /// Output file names, one per shard (`model.safetensors` or `model-0000i-of-0000N.safetensors`).
    public var shardFiles: [String] { shards.files }
    /// The output `config.json`.
    public let outputConfig: JSONObject
    /// The model whose tokenizer and generation files are copied.
    public let tokenizerDonor: Int
    public let seed: UInt64
    public let threads: Int
    public let estimate: PlanEstimate
    public let warnings: [String]
    /// The output vocabulary, when the recipe sets `tokenizer_source` or `tokenizer`.
    public var vocabulary: VocabularyPlan? = nil

    /// Tasks of one shard, in file order.
    public func tasks(inShard shard: Int) -> [TensorTask] { tasks.filter { $0.shard == shard } }
}
