import Recipes

/// Whether a method needs, accepts or ignores `base_model`.
public enum BaseModelUse: Sendable, Equatable {
    case required
    case optional
    case unused
}

/// A parameter a method declares: its name, whether a recipe must set it, its default, and the values it accepts
/// (a flag when the default is true/false, else a finite number, at least `minimum` when given). The planner checks
/// every resolved value against this (`problem(with:)`), so `--dry-run` and the merge accept the same recipes.
public struct ParameterDefinition: Sendable, Equatable {
    public let name: String
    public let required: Bool
    public let defaultValue: ParameterValue?
    /// Smallest accepted number (numbers only).
    public let minimum: Double?
    /// Whether `minimum` itself is refused (`> minimum` rather than `>= minimum`).
    public let minimumIsExclusive: Bool

    public init(_ name: String, required: Bool = false, default defaultValue: ParameterValue? = nil,
                minimum: Double? = nil, exclusive: Bool = false) {
        self.name = name
        self.required = required
        self.defaultValue = defaultValue
        self.minimum = minimum
        self.minimumIsExclusive = exclusive
    }
}

/// One parent's view of the tensor being merged.
public struct MergeInput {
    /// The parent's values for this tensor (the whole tensor, or a block for elementwise methods), float32.
    public let values: UnsafeBufferPointer<Float>
    /// Per-model parameters resolved for this tensor (`weight`, `density`, `gamma`, `epsilon`, `scale`…),
    /// with the method's defaults already filled in.
    public let parameters: [String: ParameterValue]
    /// Position of this parent in the recipe (stable; used to name random streams).
    public let modelIndex: Int
    /// The recipe's model reference, for messages.
    public let modelName: String

    public init(values: UnsafeBufferPointer<Float>, parameters: [String: ParameterValue], modelIndex: Int, modelName: String) {
        self.values = values
        self.parameters = parameters
        self.modelIndex = modelIndex
        self.modelName = modelName
    }

    public func number(_ name: String) -> Double? { parameters[name]?.number }
}

/// Everything a method needs to merge one output tensor.
public struct MergeRequest {
    /// The output tensor's name (used for messages and to seed random streams).
    public let tensorName: String
    /// The tensor's full shape (row-major, outermost first).
    public let shape: [Int]
    /// Inputs in recipe order; the base model, when there is one, is among them at `baseIndex`.
    public let inputs: [MergeInput]
    public let baseIndex: Int?
    /// Method-global parameters resolved for this tensor, defaults filled in.
    public let global: [String: ParameterValue]
    /// The run's seed (recipe `random_seed` or `--seed`); random methods combine it with the tensor name.
    public let seed: UInt64
    /// Flat index of `values[0]` within the whole tensor (non-zero only when an elementwise method runs on a block).
    public let elementOffset: Int
    /// How many cores a method may use for this one tensor (large tensors are split into fixed-size chunks;
    /// results never depend on this number).
    public let threads: Int

    public init(tensorName: String, shape: [Int], inputs: [MergeInput], baseIndex: Int?, global: [String: ParameterValue],
                seed: UInt64, elementOffset: Int = 0, threads: Int = 1) {
        self.tensorName = tensorName
        self.shape = shape
        self.inputs = inputs
        self.baseIndex = baseIndex
        self.global = global
        self.seed = seed
        self.elementOffset = elementOffset
        self.threads = max(1, threads)
    }

    public var base: MergeInput? { baseIndex.map { inputs[$0] } }
    /// The inputs other than the base, in recipe order.
    public var others: [MergeInput] { inputs.enumerated().filter { $0.offset != baseIndex }.map(\.element) }
    public var count: Int { inputs.first?.values.count ?? 0 }
    public func number(_ name: String) -> Double? { global[name]?.number }
    public func flag(_ name: String) -> Bool? { global[name]?.bool }
}

/// Problems a method reports about a recipe or its inputs.
public struct MergeMethodError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A merge method: it declares its name and parameters; the planner resolves them per tensor; `merge` computes.
public protocol MergeMethod: Sendable {
    /// The mergekit registry name (`linear`, `ties`, `dare_ties`…).
    var name: String { get }
    var prettyName: String { get }
    var referenceURL: String? { get }
    /// Parameters read once per tensor (`t`, `normalize`, `lambda`, `rescale`…).
    var globalParameters: [ParameterDefinition] { get }
    /// Parameters set per parent model (`weight`, `density`…). Required ones are not required of the base model.
    var perModelParameters: [ParameterDefinition] { get }
    var baseModel: BaseModelUse { get }
    /// Whether results depend on the seed.
    var isRandom: Bool { get }
    /// Whether a tensor with one input and no parameter that changes it is that input, so the executor copies its
    /// stored bytes instead of merging (passthrough).
    var copiesSoleInput: Bool { get }
    /// Whether `base_model` is one endpoint of an interpolation rather than the base the others are measured against
    /// (SLERP), so the model card does not call it the base.
    var baseIsEndpoint: Bool { get }

    /// Checks the number of inputs (and anything else knowable before reading tensors). Throws a message for the user.
    /// `inputCount` counts every input of one output tensor, the base model included when there is one.
    func validate(inputCount: Int, hasBase: Bool) throws

    /// True when each output element depends only on the same element of the inputs for these
    /// parameters, so the executor may stream the tensor in blocks.
    func isElementwise(global: [String: ParameterValue]) -> Bool

    /// Like `isElementwise(global:)`, but also sees each input's per-model parameters (in input order), so that
    /// e.g. `dare_linear` with every density at 1 can stream. Defaults to `isElementwise(global:)`.
    func isElementwise(global: [String: ParameterValue], perModel: [[String: ParameterValue]]) -> Bool

    /// Merges `request.inputs` into `output` (same element count as each input). Returns warnings, if any.
    func merge(_ request: MergeRequest, into output: UnsafeMutableBufferPointer<Float>) throws -> [String]
}

extension MergeMethod {
    public var referenceURL: String? { nil }
    public var isRandom: Bool { false }
    public var copiesSoleInput: Bool { false }
    public var baseIsEndpoint: Bool { false }
    public func isElementwise(global: [String: ParameterValue]) -> Bool { false }
    public func isElementwise(global: [String: ParameterValue], perModel: [[String: ParameterValue]]) -> Bool {
        isElementwise(global: global)
    }
    public func validate(inputCount: Int, hasBase: Bool) throws {}
}
