/// Everything that can be wrong with a checkpoint on disk. Each case names the file and, where it
/// applies, the tensor, so a user can find the problem without a debugger.
public enum CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    case fileNotFound(path: String)
    case notAFolder(path: String)
    case unreadable(path: String, reason: String)
    case truncated(file: String, reason: String)
    case invalidHeader(file: String, reason: String)
    case invalidTensor(file: String, tensor: String, reason: String)
    case unsupportedDType(file: String, tensor: String, dtype: String)
    case overlappingTensors(file: String, first: String, second: String)
    case missingTensor(tensor: String, checkpoint: String)
    case shapeMismatch(tensor: String, expected: [Int], found: [Int], file: String)
    case noWeights(folder: String)
    case invalidIndex(file: String, reason: String)
    case invalidConfig(file: String, reason: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path): return "\(path): no such file or folder"
        case let .notAFolder(path): return "\(path): not a checkpoint folder"
        case let .unreadable(path, reason): return "\(path): cannot be read: \(reason)"
        case let .truncated(file, reason): return "\(file): file is truncated: \(reason)"
        case let .invalidHeader(file, reason): return "\(file): invalid header: \(reason)"
        case let .invalidTensor(file, tensor, reason): return "\(file): tensor '\(tensor)': \(reason)"
        case let .unsupportedDType(file, tensor, dtype): return "\(file): tensor '\(tensor)' has unsupported dtype '\(dtype)'"
        case let .overlappingTensors(file, a, b): return "\(file): the byte spans of tensors '\(a)' and '\(b)' overlap"
        case let .missingTensor(tensor, checkpoint): return "\(checkpoint): tensor '\(tensor)' is missing"
        case let .shapeMismatch(tensor, expected, found, file):
            return "\(file): tensor '\(tensor)' has shape \(found), expected \(expected)"
        case let .noWeights(folder): return "\(folder): no model.safetensors, model.safetensors.index.json or *.safetensors/*.gguf file "
            + "found"
        case let .invalidIndex(file, reason): return "\(file): invalid shard index: \(reason)"
        case let .invalidConfig(file, reason): return "\(file): invalid config: \(reason)"
        case let .writeFailed(path, reason): return "\(path): cannot write: \(reason)"
        }
    }
}
