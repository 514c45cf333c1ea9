/// Everything that can go wrong when building or running a model. Each case names the checkpoint,
/// tensor or token involved.
public enum InferenceError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A weight the architecture needs is not in the checkpoint.
    case missingWeight(tensor: String, checkpoint: String)
    /// A weight exists with the wrong shape for the config.
    case weightShape(tensor: String, expected: [Int], found: [Int], checkpoint: String)
    /// A weight is stored in a type the engine cannot convert to float32.
    case unsupportedWeight(tensor: String, storage: String, checkpoint: String)
    /// The checkpoint holds a weight the forward pass of its architecture would not read: running without it would
    /// give wrong numbers (a mislabelled `model_type`, or a feature the engine does not implement).
    case unusedWeight(tensor: String, architecture: String, checkpoint: String)
    /// The config's `model_type` has no architecture definition: the engine would not know what it computes.
    case unsupportedArchitecture(modelType: String, supported: [String], checkpoint: String)
    /// A token id outside `0..<vocabSize`.
    case tokenOutOfRange(token: Int, position: Int, vocabSize: Int)
    /// More positions than the KV cache was created for.
    case contextOverflow(needed: Int, capacity: Int)
    /// A caller passed an invalid argument (empty prompt, bad range…).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .missingWeight(tensor, checkpoint):
            return "\(checkpoint): weight '\(tensor)' is missing"
        case let .weightShape(tensor, expected, found, checkpoint):
            return "\(checkpoint): weight '\(tensor)' has shape \(found), the config implies \(expected)"
        case let .unsupportedWeight(tensor, storage, checkpoint):
            return "\(checkpoint): weight '\(tensor)' is stored as \(storage), which the engine cannot read as floats"
        case let .unusedWeight(tensor, architecture, checkpoint):
            return "\(checkpoint): weight '\(tensor)' is not used by the engine's \(architecture) forward pass, so its results would be "
                + "wrong; the model is refused (is config.json's model_type right?)"
        case let .unsupportedArchitecture(modelType, supported, checkpoint):
            return "\(checkpoint): model_type '\(modelType)' has no architecture definition, so the engine cannot run it "
                + "(it runs \(supported.joined(separator: ", ")))"
        case let .tokenOutOfRange(token, position, vocab):
            return "token id \(token) at position \(position) is outside the vocabulary (0..<\(vocab))"
        case let .contextOverflow(needed, capacity):
            return "the sequence needs \(needed) positions but the KV cache holds \(capacity)"
        case let .invalidArgument(message):
            return message
        }
    }
}
