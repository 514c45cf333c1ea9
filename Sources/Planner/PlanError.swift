import Checkpoints
import Recipes

/// Why a merge cannot be planned or executed. Every case names the recipe line, the model or the tensor.
public enum PlanError: Error, CustomStringConvertible, Sendable {
    /// A problem with what the recipe says, at a recipe location.
    case recipe(SourceLocation, String)
    /// A problem with one parent model.
    case model(String, String)
    /// A problem with one output tensor.
    case tensor(String, String)
    /// The output folder cannot be written.
    case output(String, String)
    /// Something failed while merging or writing.
    case execution(String)

    /// A failure of the output folder or a shard file, as an `output` error naming that path.
    public static func output(_ error: Error, folder: String) -> PlanError {
        if let e = error as? PlanError { return e }
        if case let .writeFailed(path, reason)? = error as? CheckpointError { return .output(path, "cannot write: " + reason) }
        return .output(folder, "\(error)")
    }

    /// Any failure of a running merge or build: a write failure names its file (a full disk reads
    /// "PATH: error: cannot write: No space left on device"), anything else keeps its own description.
    public static func failure(_ error: Error) -> PlanError {
        if let e = error as? PlanError { return e }
        if error is CheckpointError, case .writeFailed = error as! CheckpointError { return output(error, folder: "") }
        return .execution("\(error)")
    }

    public var description: String {
        switch self {
        case let .recipe(loc, msg): return "\(loc): error: \(msg)"
        case let .model(path, msg): return "\(path): error: \(msg)"
        case let .tensor(name, msg): return "tensor '\(name)': error: \(msg)"
        case let .output(path, msg): return "\(path): error: \(msg)"
        // No "error: " prefix: the command line already prints "Error: " before it.
        case let .execution(msg): return msg
        }
    }
}
