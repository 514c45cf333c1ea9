import ArgumentParser
import Foundation
import Planner
import Reports

/// `crucible run RECIPE --out DIR --eval FILE…`: plan, merge, then score the result against the recipe's parents.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Merge a recipe (or build a MoE) and score the result against its parents in one go (plan, build, score).",
        discussion: """
        A merge recipe runs as `crucible merge RECIPE --out DIR`, a mergekit-moe recipe (a top-level `experts:` key) \
        as `crucible moe RECIPE --out DIR`; then `crucible score DIR` with the parents taken from the recipe (for a \
        MoE: its base and experts) or --parents. One progress display follows the stages.
        """)

    @Argument(help: "The recipe (mergekit or mergekit-moe YAML).")
    var recipe: String

    @Option(name: .shortAndLong, help: "Output folder of the merge (written atomically).")
    var out: String

    @OptionGroup var scoring: ScoreOptions

    @Option(help: "Seed for random methods (overrides the recipe's random_seed).")
    var seed: UInt64?

    @Option(help: "Maximum shard size, e.g. 5GB, 500MB (mergekit-style: k/m/b = ×1e3/1e6/1e9 bytes).")
    var shardSize: String = "5GB"

    @Option(help: "Memory budget for merge tensors in flight, e.g. 2GB.")
    var memory: String?

    @Flag(help: "Replace an existing output folder once the new merge is complete.")
    var overwrite = false

    @Flag(help: "Do not write a README.md model card.")
    var noModelCard = false

    @Flag(help: "MoE recipes: write Mixtral experts in transformers 5's fused layout.")
    var fusedExperts = false

    @Flag(name: .customLong("i-understand-this-is-not-useful-without-training"),
          help: "MoE recipes: allow every expert to come from the same model.")
    var allowIdenticalExperts = false

    func run() throws {
        guard let shard = parseByteSize(shardSize) else { throw ValidationError("--shard-size: cannot read '\(shardSize)'") }
        var job = RecipeRun(recipePath: recipe, outputPath: out, evalPaths: scoring.eval)
        scoring.apply(to: &job.score)
        if !scoring.parents.isEmpty { job.score.parentPaths = scoring.parents }
        var options = PlannerOptions(seed: seed, shardSize: shard)
        if let memory {
            guard let budget = parseByteSize(memory) else { throw ValidationError("--memory: cannot read '\(memory)'") }
            options.memoryBudget = budget
        }
        if let threads = scoring.threads { options.threads = threads }
        job.planner = options
        job.moe.fusedExperts = fusedExperts
        job.moe.allowIdenticalExperts = allowIdenticalExperts
        job.overwrite = overwrite
        job.writeModelCard = !noModelCard

        let progress = ProgressPrinter(label: "run")
        let result: RecipeRunResult
        do {
            result = try job.run { event in
                switch event {
                case let .planned(tensors, read, written, warnings):
                    for w in warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
                    let line = "\(tensors) tensors, reads \(formatBytes(read)), writes \(formatBytes(written))"
                    progress.show(stage: "plan", fraction: 1, terminal: line, plain: line)
                    progress.finish()
                case let .merging(p):
                    progress.update(p)
                case let .merged(report):
                    progress.finish()
                    let line = String(format: "%d tensors into %@ in %.2f s", report.tensors, report.outputPath, report.seconds)
                    progress.show(stage: "merge", fraction: 1, terminal: line, plain: line)
                    progress.finish()
                case let .scoring(p):
                    progress.update(p)
                }
            }
            progress.finish()
        } catch {
            progress.finish()
            let text = "\(error)"
            FileHandle.standardError.write(Data((text.contains("error:") ? text : "error: " + text).utf8 + [0x0A]))
            throw ExitCode.failure
        }
        try scoring.emit(result.score)
    }
}
