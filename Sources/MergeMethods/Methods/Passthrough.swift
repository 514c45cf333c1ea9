import Recipes

/// `passthrough`: copies its single input, optionally multiplied by the per-model `scale`
/// (docs/methods.md). Used for frankenmerges, where each slice has one source.
public struct PassthroughMerge: MergeMethod {
    public init() {}
    public var name: String { "passthrough" }
    public var prettyName: String { "Passthrough" }
    public var globalParameters: [ParameterDefinition] { [] }
    public var perModelParameters: [ParameterDefinition] { [ParameterDefinition("scale")] }
    public var baseModel: BaseModelUse { .unused }
    public var copiesSoleInput: Bool { true }

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
