import Checkpoints
import Foundation
import Recipes

/// Runs a multi-stage recipe (`MultiStageRecipe`): every stage is planned before anything is merged (a stage that
/// reads an earlier one is planned against that stage's planned output), then the stages run in dependency order.
/// Intermediate outputs go to `<intermediates>/<name>`; a complete one built from the same stage text is reused
/// (as mergekit-multi's `--lazy`), anything else there is rebuilt. A partial output never sits at that path: every
/// output is staged in a hidden folder and renamed into place only when complete.
public enum MultiStageMerge {
    public struct Stage: Sendable {
        /// nil for the final stage.
        public let name: String?
        public let output: String
        public let plan: MergePlan
        /// Built before from the same stage text: used as it is.
        public let reused: Bool
    }

    /// The default intermediate folder: `OUT.stages` beside the output.
    public static func defaultIntermediates(for output: String) -> String {
        let url = URL(fileURLWithPath: output).standardizedFileURL
        return url.deletingLastPathComponent().appendingPathComponent(url.lastPathComponent + ".stages").path
    }

    /// Plans every stage; throws what the first failing stage's plan throws.
    public static func plan(_ recipe: MultiStageRecipe, output: String, intermediates: String? = nil,
                            options: PlannerOptions = PlannerOptions()) throws -> [Stage] {
        let folder = URL(fileURLWithPath: intermediates ?? defaultIntermediates(for: output),
                         relativeTo: URL(fileURLWithPath: options.workingDirectory, isDirectory: true)).standardizedFileURL.path
        var options = options
        for stage in recipe.intermediates { options.stageOutputs[stage.name!] = (folder as NSString).appendingPathComponent(stage.name!) }
        var stages: [Stage] = []
        for stage in recipe.stages {
            let path = stage.name.map { options.stageOutputs[$0]! } ?? output
            let reused = stage.name != nil && isComplete(path, text: stage.recipe.text)
                && stage.dependencies.allSatisfy { dep in stages.first { $0.name == dep }?.reused == true }
            let plan: MergePlan
            do {
                plan = try MergePlanner.plan(stage.recipe, options: options)
            } catch let RecipeError.modelNotFound(at, reference, searched, hint) {
                // A misspelt stage name reads as a missing model: say which stage it likely meant.
                let names = recipe.intermediates.compactMap(\.name)
                let model = String(reference.split(separator: "+").first ?? "")
                let suggestion = closestName(to: model, among: names).map { " It is not a stage name either: did you mean stage `\($0)`?" }
                throw RecipeError.modelNotFound(at, reference: reference, searched: searched, hint: hint + (suggestion ?? ""))
            }
            if !reused { options.pendingStages[path] = plan }
            stages.append(Stage(name: stage.name, output: path, plan: plan, reused: reused))
        }
        return stages
    }

    /// Whether `path` holds a finished merge of a stage with this exact text.
    static func isComplete(_ path: String, text: String) -> Bool {
        let fm = FileManager.default
        func has(_ f: String) -> Bool { fm.fileExists(atPath: (path as NSString).appendingPathComponent(f)) }
        guard has("config.json"), has("model.safetensors") || has("model.safetensors.index.json"),
              let recorded = try? String(contentsOfFile: (path as NSString).appendingPathComponent("mergekit_config.yml"), encoding: .utf8)
        else { return false }
        return recorded == text
    }

    /// Runs the stages in order, each planned again against the real outputs of the stages before it. `stageDone`
    /// hears of each stage as it finishes (nil report: reused).
    @discardableResult
    public static func execute(_ recipe: MultiStageRecipe, stages: [Stage], options: PlannerOptions, execution: ExecutionOptions,
                               stageDone: ((Stage, MergeReport?) -> Void)? = nil) throws -> [MergeReport] {
        var options = options
        options.pendingStages = [:]
        for stage in stages { if let name = stage.name { options.stageOutputs[name] = stage.output } }
        var reports: [MergeReport] = []
        for (stage, recipeStage) in zip(stages, recipe.stages) {
            if stage.reused {
                stageDone?(stage, nil)
                continue
            }
            var run = execution
            if stage.name != nil {
                // An intermediate from another text (or an unfinished older run's leftovers) is replaced, but only when it
                // is a merge output: a user's folder at that path is never removed.
                let fm = FileManager.default
                let isMerge = fm.fileExists(atPath: (stage.output as NSString).appendingPathComponent("mergekit_config.yml"))
                if fm.fileExists(atPath: stage.output) && !isMerge {
                    throw PlanError.output(CheckpointError.writeFailed(path: stage.output,
                        reason: "it exists and is not a merge output; remove it or choose another --intermediate-dir"), folder: stage.output)
                }
                run.overwrite = isMerge
            }
            let plan = try MergePlanner.plan(recipeStage.recipe, options: options)
            let report = try PlanExecutor.execute(plan, outputPath: stage.output, options: run)
            reports.append(report)
            stageDone?(stage, report)
        }
        return reports
    }
}
