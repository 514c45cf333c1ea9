/// Everything that can go wrong while loading a tokenizer. Each case names the file, so a user can
/// tell which of a model folder's files is at fault.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    case fileNotFound(path: String)
    /// A model type, pre-tokenizer, normalizer, decoder or post-processor this module does not implement.
    case unsupported(kind: String, value: String, file: String)
    /// The file parsed, but a required field is missing or has the wrong shape.
    case malformed(file: String, reason: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path):
            return "\(path): no such file or folder (expected a model folder with tokenizer.json, or a .gguf file)"
        case let .unsupported(kind, value, file):
            return "\(file): unsupported \(kind) '\(value)'"
        case let .malformed(file, reason):
            return "\(file): malformed tokenizer: \(reason)"
        }
    }
}
