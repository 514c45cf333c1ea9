import ArgumentParser
import Foundation
import Host
import MoE
import Planner
import Recipes

/// `crucible moe RECIPE --out DIR`: assemble a FrankenMoE from a mergekit-moe recipe.
struct MoECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moe",
        abstract: "Assemble a mixture of experts from dense models, as a mergekit-moe YAML recipe says.",
        discussion: """
        Attention, norms and embeddings come from base_model; each expert's MLP comes from its source_model; the router \
        rows come from the experts' prompts (gate_mode hidden, hidden_avg, router_input, cheap_embed) or are drawn at \
        random (random, uniform_random), computed on the CPU by Crucible's own engine. Every check runs before any \
        weight is read; --dry-run prints the plan.
        """)

    @Argument(help: "The recipe (mergekit-moe YAML).")
    var recipe: String

    @OptionGroup var build: BuildOptions

    @OptionGroup var moe: MoEBuildFlags

    @Flag(help: "Print the plan and its memory/disk estimate; read no tensor data and write nothing.")
    var dryRun = false

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    func validate() throws { try build.validateGGUF() }

    func run() throws {
        let parsed = try MoERecipeParser.parse(file: recipe)
        var options = MoEOptions(seed: build.seed, shardSize: build.shardSize.bytes, fusedExperts: moe.fusedExperts,
                                 allowIdenticalExperts: moe.allowIdenticalExperts)
        if let threads { options.threads = max(1, threads) }
        let plan = try MoEPlanner.plan(parsed, options: options)
        try build.checkGGUFWritable(config: plan.outputConfig)
        if dryRun {
            print(plan.describe(), terminator: "")
            return
        }
        for w in plan.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        let reporter = quiet ? nil : ProgressPrinter(label: "moe")
        let report = try MoEBuilder.build(plan, outputPath: build.out, options: ExecutionOptions(
            overwrite: build.overwrite, writeModelCard: !build.noModelCard,
            progress: reporter.map { r in { @Sendable p in r.update(p) } }))
        reporter?.finish()
        for w in report.warnings.dropFirst(plan.warnings.count) { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        if !quiet {
            let rss = report.peakResidentBytes.map { ", peak RSS \(formatBytes($0))" } ?? ""
            FileHandle.standardError.write(Data(String(format: "built a %@ MoE of %d experts into %@ in %.2f s "
                + "(router rows %.2f s; wrote %@ in %d tensors%@)\n",
                plan.output.name, plan.recipe.experts.count, report.outputPath, report.seconds, report.gateSeconds,
                formatBytes(report.bytesWritten), report.tensors, rss).utf8))
        }
        try build.writeGGUF(folder: report.outputPath, threads: threads, quiet: quiet)
    }
}
