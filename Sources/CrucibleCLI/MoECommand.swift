import ArgumentParser
import Foundation
import MoE
import Planner
import Recipes
import Tensors

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

    @Option(name: .shortAndLong, help: "Output folder (written atomically: it appears only when complete).")
    var out: String

    @Flag(help: "Print the plan and its memory/disk estimate; read no tensor data and write nothing.")
    var dryRun = false

    @Option(help: "Seed for random gates and noise_scale (overrides the recipe's random_seed).")
    var seed: UInt64?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Option(help: "Maximum shard size, e.g. 5GB, 500MB.")
    var shardSize: String = "5GB"

    @Flag(help: "Write Mixtral experts in transformers 5's fused layout (mlp.experts.gate_up_proj), as mergekit 0.1.5 does, instead of one tensor per expert.")
    var fusedExperts = false

    @Flag(name: .customLong("i-understand-this-is-not-useful-without-training"),
          help: "Allow every expert to come from the same model (only useful if you train the MoE afterwards).")
    var allowIdenticalExperts = false

    @Flag(help: "Replace an existing output folder once the new one is complete.")
    var overwrite = false

    @Flag(help: "Do not write a README.md model card.")
    var noModelCard = false

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    func run() throws {
        let parsed = try MoERecipeParser.parse(file: recipe)
        guard let shard = parseByteSize(shardSize) else { throw ValidationError("--shard-size: cannot read '\(shardSize)'") }
        var options = MoEOptions(seed: seed, shardSize: shard, fusedExperts: fusedExperts, allowIdenticalExperts: allowIdenticalExperts)
        if let threads { options.threads = max(1, threads) }
        let plan = try MoEPlanner.plan(parsed, options: options)
        if dryRun {
            print(plan.describe(), terminator: "")
            return
        }
        for w in plan.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        let reporter = quiet ? nil : ProgressPrinter(label: "moe")
        let report = try MoEBuilder.build(plan, outputPath: out, options: MoEBuildOptions(
            overwrite: overwrite, writeModelCard: !noModelCard,
            progress: reporter.map { r in { @Sendable p in r.update(p) } }))
        reporter?.finish()
        for w in report.warnings.dropFirst(plan.warnings.count) { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        if !quiet {
            let rss = report.peakResidentBytes.map { ", peak RSS \(formatBytes($0))" } ?? ""
            FileHandle.standardError.write(Data(String(format: "built a %@ MoE of %d experts into %@ in %.2f s (router rows %.2f s; wrote %@ in %d tensors%@)\n",
                plan.output.name, plan.recipe.experts.count, report.outputPath, report.seconds, report.gateSeconds,
                formatBytes(report.bytesWritten), report.tensors, rss).utf8))
        }
    }
}
