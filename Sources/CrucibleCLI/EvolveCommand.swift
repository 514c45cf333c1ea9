import ArgumentParser
import Evolve
import Foundation
import Host

/// `crucible evolve CONFIG --out DIR`: search a recipe's parameters for the merge that scores best on the user's texts.
struct EvolveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evolve",
        abstract: "Search a recipe's parameters (CMA-ES or random search) for the merge that scores best on your texts.",
        discussion: """
        Every candidate is merged into memory and scored in-process; nothing is written per candidate. DIR receives \
        best.yml (a plain recipe), evaluations.jsonl (every candidate; --resume continues from it) and report.html. At the \
        end the best recipe, the method's default recipe and each parent are scored on the held-out part of every text. \
        The config schema: docs/evolve.md.
        """)

    @Argument(help: "The evolve config (YAML).")
    var config: String

    @Option(help: "The output folder.")
    var out: String

    @Option(help: "Candidates to evaluate in all (default: the config's optimizer.budget).")
    var budget: Int?

    @Option(help: "The optimizer's seed (default: the config's optimizer.seed).")
    var seed: UInt64?

    @Flag(help: "Continue the search logged in DIR/evaluations.jsonl.")
    var resume = false

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Flag(help: "Skip scoring the default recipe and the parents at the end.")
    var noFinalScores = false

    @Flag(help: "No progress lines.")
    var quiet = false

    func run() throws {
        var job = EvolveJob(configPath: config, outputPath: out)
        job.budget = budget
        job.seed = seed
        job.resume = resume
        if let threads { job.threads = threads }
        job.finalScores = !noFinalScores
        let result = try job.run { p in if !quiet { Self.show(p) } }
        print(Self.summary(result))
    }

    static func fmt(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "n/a" }
        return String(format: "%.4f", v)
    }

    static func show(_ p: EvolveProgress) {
        let line: String
        switch p {
        case let .started(dimensions, population, windows, budget, resumed, notes):
            line = notes.map { "note: \($0)\n" }.joined() + "evolve: \(dimensions) parameters, \(population) candidates per generation, "
                + "\(windows) windows per candidate, budget \(budget)" + (resumed > 0 ? ", \(resumed) taken from the log" : "")
        case let .evaluated(r, best, budget, resumed):
            let status = r.fitness != nil ? "fitness \(fmt(r.fitness))" : "failed: \(r.error ?? "?")"
            line = String(format: "[%4d/%d] gen %d  ", r.index + 1, budget, r.generation) + status
                + "  best \(fmt(best?.fitness))" + (best.map { " (#\($0.index))" } ?? "")
                + (resumed ? "  (from the log)" : String(format: "  %.1f s", r.seconds))
        case let .finalScoring(name):
            line = "scoring \(name) on the search and held-out parts"
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    static func summary(_ r: EvolveResult) -> String {
        var s = "\(r.records.count) evaluations (\(r.optimizer.rawValue), seed \(r.seed), \(r.threads) threads) in "
            + String(format: "%.1f s", r.seconds) + (r.peakResidentBytes.map { ", peak RSS \(formatBytes($0))" } ?? "") + "\n"
        if let best = r.best {
            s += "best: candidate \(best.index), fitness \(fmt(best.fitness))\n"
            for (label, value) in best.parameters { s += "  \(label) = \(String(format: "%.4f", value))\n" }
        } else {
            s += "no candidate was scored successfully\n"
        }
        if !r.finals.isEmpty {
            s += "model".padding(toLength: 44, withPad: " ", startingAt: 0) + "search fitness   held-out fitness\n"
            for f in r.finals {
                s += f.name.padding(toLength: 44, withPad: " ", startingAt: 0)
                s += f.error.map { "failed: \($0)" } ?? (fmt(f.searchFitness).padding(toLength: 17, withPad: " ", startingAt: 0)
                                                          + fmt(f.heldOutFitness))
                s += "\n"
            }
        }
        s += "wrote \(r.outputPath)/best.yml, evaluations.jsonl, report.html"
        return s
    }
}
