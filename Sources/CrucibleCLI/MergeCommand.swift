import ArgumentParser
import Foundation
import Host
import Planner
import Recipes
import Reports

/// `crucible merge RECIPE --out DIR`: plan, check, and run a mergekit-format recipe.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge checkpoints as a mergekit-format YAML recipe says.",
        discussion: "Every tensor's sources, method and parameters are resolved and checked against the parents' headers "
            + "before any weight is read; --dry-run prints that plan with its byte counts and peak-memory estimate. A recipe of "
            + "several YAML documents is a multi-stage recipe (mergekit-multi): each named stage is merged into the "
            + "intermediate folder, in dependency order, and the unnamed one into --out.")

    @Argument(help: "The recipe (mergekit YAML).")
    var recipe: String

    @OptionGroup var build: BuildOptions

    @Flag(help: "Print the plan and its memory/disk estimate; read no tensor data and write nothing.")
    var dryRun = false

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Option(help: "Memory budget for tensors in flight, e.g. 2GB (default 1 GB or the largest tensor task).")
    var memory: ByteSize?

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    @Option(help: "Multi-stage recipes: where named stages are merged (default: OUT.stages beside the output).")
    var intermediateDir: String?

    func validate() throws { try build.validateGGUF() }

    func run() throws {
        var options = PlannerOptions(seed: build.seed, shardSize: build.shardSize.bytes, memoryBudget: memory?.bytes)
        if let threads { options.threads = max(1, threads) }
        let text = try RecipeParser.readText(file: recipe)
        if MultiStageRecipe.isMultiStage(text) {
            try runStages(MultiStageRecipe.parse(text: text, file: recipe), options: options)
            return
        }
        let parsed = try RecipeParser.parse(text: text, file: recipe)
        let plan = try MergePlanner.plan(parsed, options: options)
        try build.checkGGUFWritable(config: plan.outputConfig)
        if dryRun {
            print(plan.describe(), terminator: "")
            return
        }
        for w in plan.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        let reporter = quiet ? nil : ProgressPrinter(label: "merge")
        let report = try PlanExecutor.execute(plan, outputPath: build.out, options: ExecutionOptions(
            overwrite: build.overwrite, writeModelCard: !build.noModelCard, allowNonFinite: build.allowNonFinite,
            progress: reporter.map { r in { @Sendable p in r.update(p) } }))
        reporter?.finish()
        for w in report.warnings.dropFirst(plan.warnings.count) { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        summarise(report)
        try build.writeGGUF(folder: report.outputPath, threads: threads, quiet: quiet)
    }

    private func summarise(_ report: MergeReport) {
        guard !quiet else { return }
        let gbps = Double(report.bytesRead) / max(report.seconds, 1e-9) / 1e9
        let rss = report.peakResidentBytes.map { ", peak RSS \(formatBytes($0))" } ?? ""
        FileHandle.standardError.write(Data(String(format: "merged %d tensors into %@ in %.2f s (read %@ at %.2f GB/s, wrote %@%@)\n",
            report.tensors, report.outputPath, report.seconds, formatBytes(report.bytesRead), gbps,
            formatBytes(report.bytesWritten), rss).utf8))
    }

    /// A multi-stage recipe: every stage planned first (`--dry-run` prints each plan), then merged in order.
    private func runStages(_ recipe: MultiStageRecipe, options: PlannerOptions) throws {
        let stages = try MultiStageMerge.plan(recipe, output: build.out, intermediates: intermediateDir, options: options)
        try build.checkGGUFWritable(config: stages.last!.plan.outputConfig)
        func title(_ stage: MultiStageMerge.Stage) -> String {
            let which = stage.name.map { "stage `\($0)`" } ?? "final stage"
            return "\(which) -> \(stage.output)" + (stage.reused ? " (built before from the same text: reused)" : "")
        }
        if dryRun {
            print("Multi-stage recipe: \(stages.count) stages, in this order: "
                  + stages.map { $0.name ?? "(final)" }.joined(separator: ", ") + "\n")
            for stage in stages { print("== \(title(stage))\n" + stage.plan.describe()) }
            return
        }
        for stage in stages {
            for w in stage.plan.warnings { FileHandle.standardError.write(Data("warning: \(stage.name ?? "final"): \(w)\n".utf8)) }
        }
        let reporter = quiet ? nil : ProgressPrinter(label: "merge")
        try MultiStageMerge.execute(recipe, stages: stages, options: options, execution: ExecutionOptions(
            overwrite: build.overwrite, writeModelCard: !build.noModelCard, allowNonFinite: build.allowNonFinite,
            progress: reporter.map { r in { @Sendable p in r.update(p) } })) { stage, report in
            reporter?.finish()
            if let report { summarise(report) } else if !quiet {
                FileHandle.standardError.write(Data("\(title(stage))\n".utf8))
            }
        }
        try build.writeGGUF(folder: stages.last!.output, threads: threads, quiet: quiet)
    }
}

/// A progress bar on a terminal (one line rewritten in place), plain lines otherwise. One printer can follow
/// several stages (`crucible run`: merge, then score); each stage's label leads its line.
final class ProgressPrinter: @unchecked Sendable {
    private let label: String
    private let tty = isatty(2) != 0
    private let lock = NSLock()
    private var lastPrinted = -1
    private var lineOpen = false

    init(label: String) { self.label = label }

    func update(_ p: MergeProgress) {
        let fraction = p.bytesTotal > 0 ? Double(p.bytesRead) / Double(p.bytesTotal)
                                        : Double(p.tensorsDone) / Double(max(p.tensorsTotal, 1))
        let rate = Double(p.bytesRead) / max(p.seconds, 1e-9) / 1e9
        let eta = fraction > 0 ? p.seconds * (1 - fraction) / fraction : 0
        let decile = Int(fraction * 10)
        lock.lock()
        // Off a terminal: a line per tenth, and the last one.
        let due = tty || decile > lastPrinted || p.tensorsDone == p.tensorsTotal
        if due { lastPrinted = decile }
        lock.unlock()
        guard due else { return }
        show(stage: "merge", fraction: fraction,
             terminal: String(format: "%d/%d tensors  %.2f GB/s  ETA %.0fs", p.tensorsDone, p.tensorsTotal, rate, eta),
             plain: String(format: "%d/%d tensors, %.0f%%, %.2f GB/s, %.1fs elapsed", p.tensorsDone, p.tensorsTotal,
                           fraction * 100, rate, p.seconds))
    }

    /// One line per window off a terminal; on a terminal the bar line is rewritten.
    func update(_ p: ScoreProgress) {
        let text = p.textCount > 1 ? " \(p.text) (\(p.textIndex)/\(p.textCount))" : " \(p.text)"
        let ppl = p.running.map { "\($0.name) \($0.perplexity.isFinite ? String(format: "%.4f", $0.perplexity) : "-")" }
            .joined(separator: " | ")
        let detail = String(format: "window %d/%d%@  PPL so far: %@  (%.1f s)", p.window, p.windows, text, ppl, p.seconds)
        show(stage: "score", fraction: Double(p.window) / Double(max(p.windows, 1)), terminal: detail, plain: detail)
    }

    /// A stage's line: `label [bar] detail` rewritten in place on a terminal, `label: detail` lines otherwise.
    func show(stage: String, fraction: Double, terminal: String, plain: String) {
        lock.lock(); defer { lock.unlock() }
        let name = label == stage ? label : "\(label) \(stage)"
        if tty {
            let width = 30
            let filled = max(0, min(width, Int(fraction * Double(width))))
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            // Clear to the end of the line: a shorter line must not leave the tail of a longer one.
            FileHandle.standardError.write(Data("\r\(name) [\(bar)] \(terminal)\u{1B}[K".utf8))
            lineOpen = true
        } else {
            FileHandle.standardError.write(Data("\(name): \(plain)\n".utf8))
        }
    }

    /// Ends the terminal line (call once a stage is done).
    func finish() {
        lock.lock(); defer { lock.unlock() }
        if tty && lineOpen { FileHandle.standardError.write(Data("\n".utf8)) }
        lineOpen = false
        lastPrinted = -1
    }
}
