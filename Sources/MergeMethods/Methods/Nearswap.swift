import Recipes

/// `nearswap`: moves the base toward the other model only where they are already close:
/// w = clamp(t / max(|a − b|, 1e-6), 0, 1), R = w·b + (1 − w)·a, with a the base (docs/methods.md).
public struct NearswapMerge: MergeMethod {
    public init() {}
    public var name: String { "nearswap" }
    public var prettyName: String { "NearSwap" }
    public var referenceURL: String? { "https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001" }
    public var globalParameters: [ParameterDefinition] { [ParameterDefinition("t", required: true, minimum: 0, exclusive: true)] }
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
