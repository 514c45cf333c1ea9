import Tensors

/// `linear`: a weighted average of the parents, R = Σ w_i X_i (÷ Σ w_i when `normalize`).
/// Implements mergekit's `linear` (mergekit-behaviour.md §2.1).
public struct LinearMerge: MergeMethod {
    public init() {}
    public var name: String { "linear" }
    public var prettyName: String { "Linear" }
    public var referenceURL: String? { "https://arxiv.org/abs/2203.05482" }
    public var globalParameters: [ParameterDefinition] { [ParameterDefinition("normalize", default: .bool(true))] }
    public var perModelParameters: [ParameterDefinition] { [ParameterDefinition("weight", required: true)] }
    public var baseModel: BaseModelUse { .unused }

    public func validate(inputCount: Int, hasBase: Bool) throws {
        try requireInputCount(name, inputCount, 1...Int.max, what: "at least one model")
    }

    public func isElementwise(global: [String: ParameterValue]) -> Bool { true }

    public func merge(_ request: MergeRequest, into output: UnsafeMutableBufferPointer<Float>) throws -> [String] {
        try request.checkSizes(name, output: output)
        let normalize = try request.flag(name, "normalize", default: true)
        // Every input needs a weight here, including a listed base model (linear treats it as just another parent).
        let weights = try request.inputs.map { Float(try request.modelNumber(name, $0, "weight")) }
        var total: Float = 0
        for w in weights { total += w }
        if normalize && abs(Double(total)) < 1e-8 {
            throw MergeMethodError.tensor(name, request,
                "the weights sum to \(total), so normalize: true would divide by zero; use other weights or normalize: false")
        }
        let n = output.count
        Chunking(n, threads: request.threads).forEach { r in
            for i in r { output[i] = 0 }
            for (input, w) in zip(request.inputs, weights) {
                let x = input.values
                for i in r { output[i] += x[i] * w }
            }
            if normalize {
                for i in r { output[i] /= total }
            }
        }
        return []
    }
}

/// `passthrough`: copies its single input, optionally multiplied by the per-model `scale`
/// (mergekit-behaviour.md §2.12). Used for frankenmerges, where each slice has one source.
public struct PassthroughMerge: MergeMethod {
    public init() {}
    public var name: String { "passthrough" }
    public var prettyName: String { "Passthrough" }
    public var globalParameters: [ParameterDefinition] { [] }
    public var perModelParameters: [ParameterDefinition] { [ParameterDefinition("scale")] }
    public var baseModel: BaseModelUse { .unused }

    public func validate(inputCount: Int, hasBase: Bool) throws {
        try requireInputCount(name, inputCount, 1...1,
                              what: "exactly one model per tensor (give every slice a single source)")
    }

    public func isElementwise(global: [String: ParameterValue]) -> Bool { true }

    public func merge(_ request: MergeRequest, into output: UnsafeMutableBufferPointer<Float>) throws -> [String] {
        guard request.inputs.count == 1 else {
            throw MergeMethodError.tensor(name, request, "needs exactly one input, got \(request.inputs.count)")
        }
        try request.checkSizes(name, output: output)
        let input = request.inputs[0]
        guard input.parameters["scale"] != nil else {
            copyValues(input.values, into: output)
            return []
        }
        let scale = Float(try request.modelNumber(name, input, "scale"))
        let x = input.values
        Chunking(output.count, threads: request.threads).forEach { r in
            for i in r { output[i] = x[i] * scale }
        }
        return []
    }
}

/// `nearswap`: moves the base toward the other model only where they are already close:
/// w = clamp(t / max(|a − b|, 1e-6), 0, 1), R = w·b + (1 − w)·a, with a the base (mergekit-behaviour.md §2.9).
public struct NearswapMerge: MergeMethod {
    public init() {}
    public var name: String { "nearswap" }
    public var prettyName: String { "NearSwap" }
    public var referenceURL: String? { "https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001" }
    public var globalParameters: [ParameterDefinition] { [ParameterDefinition("t", required: true)] }
    public var perModelParameters: [ParameterDefinition] { [] }
    public var baseModel: BaseModelUse { .required }

    public func validate(inputCount: Int, hasBase: Bool) throws {
        guard hasBase else { throw MergeMethodError("nearswap needs base_model") }
        try requireInputCount(name, inputCount, 2...2, what: "exactly two models: base_model and one other")
    }

    public func isElementwise(global: [String: ParameterValue]) -> Bool { true }

    public func merge(_ request: MergeRequest, into output: UnsafeMutableBufferPointer<Float>) throws -> [String] {
        try request.checkSizes(name, output: output)
        if request.inputs.count == 1 {
            copyValues(request.inputs[0].values, into: output)
            return []
        }
        let base = try request.requireBase(name)
        guard request.inputs.count == 2 else {
            throw MergeMethodError.tensor(name, request, "needs exactly two inputs (base and one other), got \(request.inputs.count)")
        }
        let t = try request.requireNumber(name, "t")
        guard t > 0 else {
            throw MergeMethodError.tensor(name, request, "t is the similarity threshold and must be > 0, got \(t)")
        }
        let other = request.others[0]
        let a = base.values, b = other.values
        let tf = Float(t)
        Chunking(output.count, threads: request.threads).forEach { r in
            for i in r {
                let w = min(max(tf / max(abs(a[i] - b[i]), 1e-6), 0), 1)
                output[i] = w * b[i] + (1 - w) * a[i]
            }
        }
        return []
    }
}
