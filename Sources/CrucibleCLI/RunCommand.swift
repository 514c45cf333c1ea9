import ArgumentParser
import Foundation
import Host
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

    @OptionGroup var build: BuildOptions

    @OptionGroup var moe: MoEBuildFlags

    @OptionGroup var scoring: ScoreOptions

    @Option(help: "Memory budget for merge tensors in flight, e.g. 2GB.")
    var memory: ByteSize?

    func run() throws {
        var job = RecipeRun(recipePath: recipe, outputPath: build.out, evalPaths: scoring.eval)
        scoring.apply(to: &job.score)
        if !scoring.parents.isEmpty { job.score.parentPaths = scoring.parents }
        var options = PlannerOptions(seed: build.seed, shardSize: build.shardSize.bytes, memoryBudget: memory?.bytes)
        if let threads = scoring.threads { options.threads = threads }
        job.planner = options
        job.moe.fusedExperts = moe.fusedExperts
        job.moe.allowIdenticalExperts = moe.allowIdenticalExperts
        job.overwrite = build.overwrite
        job.writeModelCard = !build.noModelCard
        job.allowNonFinite = build.allowNonFinite

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
            progress.finish()   // end the progress line before the parser prints the error
            throw error
        }
        try scoring.emit(result.score)
        try build.writeGGUF(folder: result.merge.outputPath, threads: scoring.threads, quiet: false)
    }

    func validate() throws { try build.validateGGUF() }
}
