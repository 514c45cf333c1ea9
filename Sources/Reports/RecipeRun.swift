import Foundation
import MoE
import Planner
import Recipes

/// What `crucible run` reports as it goes: the plan, the merge's progress, then the score's.
public enum RecipeRunProgress: Sendable {
    /// The recipe was planned: tensors to write and bytes to read and write.
    case planned(tensors: Int, bytesRead: Int, bytesWritten: Int, warnings: [String])
    case merging(MergeProgress)
    case merged(MergeReport)
    case scoring(ScoreProgress)
}

/// The outcome of `crucible run`.
public struct RecipeRunResult: Sendable {
    public let merge: MergeReport
    public let score: ScoreReport
}

/// `crucible run RECIPE --out DIR --eval FILE…`: plan the recipe, merge it (or build the mixture of experts, for a
/// mergekit-moe recipe), then score the output against the recipe's models, in one process. The merge is exactly
/// `crucible merge` (`MergePlanner`, `PlanExecutor`), the MoE exactly `crucible moe` (`MoEPlanner`, `MoEBuilder`), the
/// score exactly `crucible score` (`ScoreJob`) with the parents taken from the recipe.
public struct RecipeRun {
    public var recipePath: String
    public var outputPath: String
    /// The scoring settings; its `mergedPath` is replaced by `outputPath`, and its `parentPaths`, when nil, by the
    /// recipe's models (resolved as the planner resolves them).
    public var score: ScoreJob
    public var planner = PlannerOptions()
    /// MoE recipes: the MoE-only options (`fusedExperts`, `allowIdenticalExperts`); seed, threads, shard size and
    /// working directory come from `planner`.
    public var moe = MoEOptions()
    public var overwrite = false
    public var writeModelCard = true
    /// Merge despite NaN/infinite parent values (`--allow-non-finite`).
    public var allowNonFinite = false

    public init(recipePath: String, outputPath: String, evalPaths: [String]) {
        self.recipePath = recipePath
        self.outputPath = outputPath
        self.score = ScoreJob(mergedPath: outputPath, evalPaths: evalPaths)
    }

    /// Plans, merges and scores. The eval texts are checked before any work starts.
    public func run(progress: ((RecipeRunProgress) -> Void)? = nil) throws -> RecipeRunResult {
        for path in score.evalPaths where !FileManager.default.isReadableFile(atPath: path) {
            throw ScoreError.invalidOption("\(path): the text to score cannot be read (no such file or not readable)")
        }
        guard !score.evalPaths.isEmpty else { throw ScoreError.invalidOption("--eval FILE is required (one or more texts to score)") }
        let parents: [String]
        let merge: MergeReport
        if MergeParents.isMoERecipe(atPath: recipePath) {
            (merge, parents) = try Self.buildMixtureOfExperts(recipePath: recipePath, outputPath: outputPath, run: self, progress: progress)
        } else {
            let recipe = try RecipeParser.parse(file: recipePath)
            let plan = try MergePlanner.plan(recipe, options: planner)
            progress?(.planned(tensors: plan.tasks.count, bytesRead: plan.estimate.bytesRead, bytesWritten: plan.estimate.bytesWritten,
                               warnings: plan.warnings))
            merge = try PlanExecutor.execute(plan, outputPath: outputPath, options: ExecutionOptions(
                overwrite: overwrite, writeModelCard: writeModelCard, allowNonFinite: allowNonFinite,
                progress: progress.map { report in { @Sendable p in report(.merging(p)) } }))
            parents = try MergeParents.resolveParents(of: recipe, workingDirectory: planner.workingDirectory,
                                                      environment: score.environment)
        }
        progress?(.merged(merge))
        var job = score
        job.mergedPath = merge.outputPath
        if job.parentPaths == nil { job.parentPaths = parents }
        let report = try job.run { progress?(.scoring($0)) }
        return RecipeRunResult(merge: merge, score: report)
    }

    /// Builds a mixture of experts from a mergekit-moe recipe exactly as `crucible moe` does (`MoEPlanner`,
    /// `MoEBuilder`) and returns its report and the models to score it against: its base and every expert's source.
    static func buildMixtureOfExperts(recipePath: String, outputPath: String, run: RecipeRun,
                                      progress: ((RecipeRunProgress) -> Void)?) throws -> (MergeReport, [String]) {
        let recipe = try MoERecipeParser.parse(file: recipePath)
        var options = run.moe
        options.seed = run.planner.seed ?? options.seed
        options.threads = run.planner.threads
        options.shardSize = run.planner.shardSize
        options.workingDirectory = run.planner.workingDirectory
        let plan = try MoEPlanner.plan(recipe, options: options)
        progress?(.planned(tensors: plan.tensors.count, bytesRead: plan.estimate.bytesRead, bytesWritten: plan.estimate.bytesWritten,
                           warnings: plan.warnings))
        let built = try MoEBuilder.build(plan, outputPath: outputPath, options: ExecutionOptions(
            overwrite: run.overwrite, writeModelCard: run.writeModelCard,
            progress: progress.map { report in { @Sendable p in report(.merging(p)) } }))
        let report = MergeReport(outputPath: built.outputPath, seconds: built.seconds, bytesRead: plan.estimate.bytesRead,
                                 bytesWritten: built.bytesWritten, tensors: built.tensors, shards: built.shards,
                                 peakResidentBytes: built.peakResidentBytes, warnings: built.warnings)
        let parents = try MergeParents.resolveParents(of: recipe, workingDirectory: options.workingDirectory,
                                                      environment: run.score.environment)
        return (report, parents)
    }
}
