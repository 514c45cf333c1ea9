import Recipes

/// `linear`: a weighted average of the parents, R = Σ w_i X_i (÷ Σ w_i when `normalize`).
/// Implements mergekit's `linear` (docs/methods.md).
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
        let normalize = try request.flag(self, "normalize")
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
