import Foundation
import Recipes

/// Everything that stops `crucible score` or `crucible run` before or while scoring; each case names the file,
/// model or reference involved and what to do.
public enum ScoreError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The merged folder records no recipe, so its parents are unknown.
    case noRecipe(folder: String)
    /// A MoE output (`mergekit_moe_config.yml`): scoring against experts is not wired up yet.
    case moeNotYetSupported(path: String)
    /// A MoE recipe given to `crucible run`.
    case moeRecipeNotYetSupported(recipe: String)
    /// A recipe or a folder names no parent at all.
    case noParents(source: String)
    case invalidOption(String)
    /// A model (or its tokenizer) could not be opened.
    case unreadableModel(path: String, reason: String)

    public var description: String {
        switch self {
        case let .noRecipe(folder):
            return "\(folder): no mergekit_config.yml (or mergekit_moe_config.yml) records how it was merged, so its parents are unknown; "
                + "name them with --parents A B …"
        case let .moeNotYetSupported(path):
            return "\(path): this is a mixture-of-experts output; scoring it against its base and experts is not supported yet. "
                + "Name the models to compare with --parents A B …"
        case let .moeRecipeNotYetSupported(recipe):
            return "\(recipe): this is a mergekit-moe recipe (it has a top-level `experts:` key); `crucible run` cannot assemble "
                + "mixtures of experts yet. Build it with `crucible moe` once available, then `crucible score OUT --parents …`"
        case let .noParents(source):
            return "\(source): names no parent model to compare the merge with; name them with --parents A B …"
        case let .invalidOption(message):
            return message
        case let .unreadableModel(path, reason):
            return "\(path): cannot be scored: \(reason)"
        }
    }
}

/// The recipe a merged folder records, read back to find what it was merged from.
public struct RecordedParents: Sendable {
    /// The recipe file inside the merged folder.
    public let recipeFile: String
    /// Every model the recipe merges, in recipe order, each once.
    public let references: [ModelReference]
}

/// Finds the parents of a merge: from the recipe Crucible and mergekit both copy into the output folder.
public enum MergeParents {
    /// The file a merge writes its recipe to.
    public static let recipeFileName = "mergekit_config.yml"
    /// The file a mixture-of-experts build writes its recipe to.
    public static let moeRecipeFileName = "mergekit_moe_config.yml"

    /// The model references recorded in `folder`'s `mergekit_config.yml`: base model, `models:` entries, slice
    /// sources and slice base models (a `tokenizer_source` model that is not merged is not a parent).
    /// - Throws: `ScoreError.moeNotYetSupported` for a MoE output (`mergekit_moe_config.yml`), `noRecipe` when
    ///   neither file exists, `noParents` for a recipe without models, and the parser's `RecipeError` (file, line
    ///   and column) for a malformed one.
    public static func parentReferences(inMergedFolder folder: String) throws -> RecordedParents {
        let fm = FileManager.default
        let recipe = (folder as NSString).appendingPathComponent(recipeFileName)
        let moe = (folder as NSString).appendingPathComponent(moeRecipeFileName)
        if !fm.fileExists(atPath: recipe) {
            // Wired up once the MoE recipe parser lands: its base model, experts' source models and shared experts.
            if fm.fileExists(atPath: moe) { throw ScoreError.moeNotYetSupported(path: moe) }
            throw ScoreError.noRecipe(folder: folder)
        }
        let parsed = try RecipeParser.parse(file: recipe)
        let refs = references(of: parsed)
        guard !refs.isEmpty else { throw ScoreError.noParents(source: recipe) }
        return RecordedParents(recipeFile: recipe, references: refs)
    }

    /// The models a recipe merges, each once, in order of first appearance.
    public static func references(of recipe: MergeRecipe) -> [ModelReference] {
        var result: [ModelReference] = []
        func add(_ ref: ModelReference?) {
            if let ref, !result.contains(ref) { result.append(ref) }
        }
        add(recipe.baseModel)
        for model in recipe.models ?? [] { add(model.model) }
        for slice in recipe.slices ?? [] {
            add(slice.baseModel)
            for source in slice.sources { add(source.model) }
        }
        return result
    }

    /// Resolves the parents recorded in `folder` to paths: relative to the merged folder, then the working
    /// directory, then the Hugging Face cache (`Recipes.ModelResolver`). A reference that is not found is an error
    /// naming it, the recipe line that holds it and every place looked at.
    public static func resolveParents(inMergedFolder folder: String,
                                      workingDirectory: String = FileManager.default.currentDirectoryPath,
                                      environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String] {
        let recorded = try parentReferences(inMergedFolder: folder)
        let resolver = ModelResolver(recipeFolder: absolute(folder, in: workingDirectory), workingDirectory: workingDirectory,
                                     environment: environment)
        return try uniquePaths(recorded.references.map { try resolver.resolve($0) })
    }

    /// Resolves a recipe's parents the way the planner does (recipe folder, working directory, cache).
    public static func resolveParents(of recipe: MergeRecipe,
                                      workingDirectory: String = FileManager.default.currentDirectoryPath,
                                      environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String] {
        let resolver = ModelResolver(recipe: recipe, workingDirectory: workingDirectory, environment: environment)
        let refs = references(of: recipe)
        guard !refs.isEmpty else { throw ScoreError.noParents(source: recipe.file) }
        return try uniquePaths(refs.map { try resolver.resolve($0) })
    }

    /// Whether the YAML at `path` is a mergekit-moe recipe (a top-level `experts:` key) rather than a merge
    /// recipe. `crucible run` hands those to the MoE builder.
    public static func isMoERecipe(atPath path: String) -> Bool {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return false }
        return text.split(separator: "\n", omittingEmptySubsequences: true).contains { line in
            line.hasPrefix("experts:") || line.hasPrefix("\"experts\":") || line.hasPrefix("'experts':")
        }
    }

    static func absolute(_ path: String, in workingDirectory: String) -> String {
        URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: workingDirectory, isDirectory: true)).standardizedFileURL.path
    }

    private static func uniquePaths(_ paths: [String]) -> [String] {
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }
}
