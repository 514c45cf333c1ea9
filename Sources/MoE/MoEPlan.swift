import Checkpoints
import Numerics
import Planner
import Recipes

/// One output tensor of a MoE build: its bytes are the concatenation of its pieces, in order.
public struct MoETensor: Sendable {
    public enum Piece: Sendable {
        /// All `count` elements of tensor `name` of model `model`, plus N(0, noise²) noise drawn from the named
        /// stream, times `scale`.
        case tensor(model: Int, name: String, count: Int, noise: Double?, scale: Double?, stream: String)
        /// The computed router rows of one layer: every routed expert's (E × hidden), or the shared experts'.
        case gate(layer: Int, shared: Bool, count: Int)
        /// Zeros (Qwen2-MoE's q/k/v biases when the parents have none).
        case zeros(Int)

        public var count: Int {
            switch self {
            case let .tensor(_, _, count, _, _, _): return count
            case let .gate(_, _, count): return count
            case let .zeros(count): return count
            }
        }
    }

    public let name: String
    public let shape: [Int]
    public let dtype: DType
    public let pieces: [Piece]
    /// Where it comes from, for the plan (`base`, `expert 2 (org/model)`, `router`…).
    public let role: String
    /// Shard index, assigned by the planner.
    public var shard = 0

    public init(name: String, shape: [Int], dtype: DType, pieces: [Piece], role: String) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.pieces = pieces
        self.role = role
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var outputBytes: Int { elementCount * dtype.byteSize }
}

/// A checked FrankenMoE build: the output format, every tensor with its sources, and the gate computation, resolved
/// from configs and headers before any tensor data is read.
public struct MoEPlan: @unchecked Sendable {
    public let recipe: MoERecipe
    public let output: any MoEOutputArchitecture
    public let context: MoEBuildContext
    public let tensors: [MoETensor]
    public let shards: ShardLayout
    public let outputConfig: JSONObject
    public let seed: UInt64
    public let threads: Int
    /// Prompts tokenized as the gate mode feeds them (BOS text + prompt), per routed and per shared expert.
    public let prompts: GatePrompts?
    public let estimate: MoEEstimate
    public let warnings: [String]

    public var models: [PlannedModel] { context.models }
}

/// The token ids of every expert's prompts (`<bos>` + prompt, no other special tokens), as mergekit-moe tokenizes them.
public struct GatePrompts: Sendable {
    public struct Expert: Sendable {
        public let positive: [[Int]]
        public let negative: [[Int]]
    }
    public let routed: [Expert]
    public let shared: [Expert]
    /// The id left padding uses (BOS, else EOS).
    public let padID: Int
    public var tokenCount: Int { (routed + shared).reduce(0) { $0 + ($1.positive + $1.negative).reduce(0) { $0 + $1.count } } }
}

/// Sizes of a MoE build.
public struct MoEEstimate: Sendable {
    public let bytesRead: Int
    public let bytesWritten: Int
    /// Peak resident memory while the engine computes the gates (zero when the mode does not run it).
    public let gateMemory: Int
    /// Peak resident memory while tensors are written.
    public let writeMemory: Int
    public var peakMemory: Int { max(gateMemory, writeMemory) }
}

extension MoETensor {
    /// The base's tensors with each layer's new tensors placed after that layer's base tensors: pre-layer tensors
    /// first, then layer by layer, then the final norm and head, so a file reads in model order.
    static func ordered(base: [MoETensor], layers: [[MoETensor]]) -> [MoETensor] {
        func layerIndex(_ name: String) -> Int? {
            guard name.hasPrefix("model.layers.") else { return nil }
            return Int(name.dropFirst("model.layers.".count).prefix { $0.isNumber })
        }
        var keyed: [(group: Int, tensor: MoETensor)] = []
        var afterLayers = false
        for t in base {
            if let l = layerIndex(t.name) {
                afterLayers = true
                keyed.append((l, t))
            } else {
                keyed.append((afterLayers ? layers.count : -1, t))
            }
        }
        for (l, tensors) in layers.enumerated() { keyed += tensors.map { (l, $0) } }
        return keyed.enumerated().sorted { ($0.element.group, $0.offset) < ($1.element.group, $1.offset) }.map(\.element.tensor)
    }
}
