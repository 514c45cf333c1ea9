import Foundation
import Recipes

/// Everything that stops `crucible score` or `crucible run` before or while scoring; each case names the file,
/// model or reference involved and what to do.
public enum ScoreError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The merged folder records no recipe, so its parents are unknown.
    case noRecipe(folder: String)
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
    /// The recipe file inside the merged folder (`mergekit_config.yml`, or `mergekit_moe_config.yml` for a MoE).
    public let recipeFile: String
    /// Every model the recipe merges (for a MoE: base, experts, shared experts), in recipe order, each once.
    public let references: [ModelReference]
}

/// Finds the parents of a merge: from the recipe Crucible and mergekit both copy into the output folder.
public enum MergeParents {
    /// The file a merge writes its recipe to.
    public static let recipeFileName = "mergekit_config.yml"
    /// The file a mixture-of-experts build writes its recipe to.
    public static let moeRecipeFileName = "mergekit_moe_config.yml"

    /// The model references recorded in `folder`'s `mergekit_config.yml` (base model, `models:` entries, slice
    /// sources and slice base models; a `tokenizer_source` model that is not merged is not a parent) or, for a
    /// mixture of experts, its `mergekit_moe_config.yml` (base model, experts, shared experts).
    /// - Throws: `noRecipe` when neither file exists, `noParents` for a recipe without models, and the parser's
    ///   `RecipeError` (file, line and column) for a malformed one.
    public static func parentReferences(inMergedFolder folder: String) throws -> RecordedParents {
        let fm = FileManager.default
        let recipe = (folder as NSString).appendingPathComponent(recipeFileName)
        let moe = (folder as NSString).appendingPathComponent(moeRecipeFileName)
        if !fm.fileExists(atPath: recipe) {
            guard fm.fileExists(atPath: moe) else { throw ScoreError.noRecipe(folder: folder) }
            return RecordedParents(recipeFile: moe, references: try MoERecipeParser.parse(file: moe).referencedModels)
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

    /// Resolves a MoE recipe's models (base, experts, shared experts) as the MoE planner does.
    public static func resolveParents(of recipe: MoERecipe,
                                      workingDirectory: String = FileManager.default.currentDirectoryPath,
                                      environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String] {
        let resolver = ModelResolver(recipeFile: recipe.file, workingDirectory: workingDirectory, environment: environment)
        return try uniquePaths(recipe.referencedModels.map { try resolver.resolve($0) })
    }

    /// Whether the YAML at `path` is a mergekit-moe recipe (a top-level `experts:` key) rather than a merge
    /// recipe. `crucible run` hands those to the MoE builder.
    public static func isMoERecipe(atPath path: String) -> Bool {
        guard let text = try? RecipeParser.readText(file: path) else { return false }
        return MoERecipeParser.isMoERecipe(text: text)
    }

    static func absolute(_ path: String, in workingDirectory: String) -> String {
        URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: workingDirectory, isDirectory: true)).standardizedFileURL.path
    }

    private static func uniquePaths(_ paths: [String]) -> [String] {
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }
}
