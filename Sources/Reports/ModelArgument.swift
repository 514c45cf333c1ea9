import Checkpoints
import Foundation
import Recipes

/// A model named on the command line (`crucible inspect MODEL`, `crucible compare A B`): a folder, a `.gguf`
/// file, or a hub id in the local Hugging Face cache, found with `Recipes.ModelResolver` exactly as a recipe's
/// model references are (relative paths against the working directory).
public enum ModelArgument {
    /// The path `argument` names.
    /// - Throws: `ModelArgumentError` with the resolver's explanation (where it looked, how to fetch a hub id).
    public static func resolve(_ argument: String, workingDirectory: String = FileManager.default.currentDirectoryPath,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let resolver = ModelResolver(recipeFolder: workingDirectory, workingDirectory: workingDirectory, environment: environment)
        let reference = ModelReference(raw: argument, location: SourceLocation(file: "<command line>", line: 1, column: 1))
        do {
            return try resolver.resolve(reference)
        } catch let e as RecipeError {
            // The recipe location ("<command line>:1:1") means nothing here; the reason names the model.
            throw ModelArgumentError(argument: argument, reason: e.reason)
        }
    }

    /// Resolves `argument` and opens it as a checkpoint.
    public static func open(_ argument: String) throws -> Checkpoint {
        try Checkpoint.open(resolve(argument))
    }
}

/// A model argument that names nothing Crucible can open.
public struct ModelArgumentError: Error, CustomStringConvertible, Equatable, Sendable {
    public let argument: String
    public let reason: String
    public var description: String { reason }
}

/// JSON helpers shared by the inspect and compare reports.
enum ReportJSON {
    /// A finite number as a JSON number; NaN and infinities as `null` (JSON has no spelling for them, and
    /// reports say separately why a value is missing).
    static func number(_ x: Double?) -> JSONValue {
        guard let x, x.isFinite else { return .null }
        return .double(x)
    }

    static func int(_ x: Int?) -> JSONValue {
        guard let x else { return .null }
        return .int(Int64(x))
    }

    static func string(_ s: String?) -> JSONValue {
        guard let s else { return .null }
        return .string(s)
    }

    static func object(_ pairs: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(pairs)) }
}
