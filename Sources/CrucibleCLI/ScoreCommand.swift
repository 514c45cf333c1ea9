import ArgumentParser
import Foundation
import Reports
#if canImport(Glibc)
import Glibc
#endif

/// `crucible score MERGED`: the merge against its parents on evaluation texts (perplexity, bits per byte, KL
/// divergence, same top token, Δp, and a verdict), optionally written as a report folder.
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score a merge against its parents: PPL, bits per byte, KL divergence, top-token agreement and a verdict.",
        discussion: """
        Without --parents, the parents are read from the mergekit_config.yml in the merged folder. Every window of \
        every text is evaluated by each model in turn (llama.cpp's perplexity protocol, as `crucible ppl`) and the \
        merge is compared with each parent that tokenizes the text the same way. Definitions and the JSON schema: \
        docs/score.md.
        """)

    @Argument(help: "The merged checkpoint (folder or .gguf).")
    var merged: String

    @OptionGroup var options: ScoreOptions

    func run() throws {
        var job = ScoreJob(mergedPath: merged, parentPaths: options.parents.isEmpty ? nil : options.parents, evalPaths: options.eval)
        options.apply(to: &job)
        let progress = ProgressPrinter(label: "score")
        let report: ScoreReport
        do {
            report = try job.run { progress.update($0) }
            progress.finish()
        } catch {
            progress.finish()   // end the progress line before the parser prints the error
            throw error
        }
        try options.emit(report)
    }
}

/// The options `crucible score` and `crucible run` share.
struct ScoreOptions: ParsableArguments {
    @Option(parsing: .upToNextOption, help: "The parents to compare with (default: the models in MERGED/mergekit_config.yml).")
    var parents: [String] = []

    @Option(parsing: .upToNextOption, help: "Text files to score, each on its own (one trailing newline dropped, as llama.cpp).")
    var eval: [String] = []

    @Option(help: "Window length (n_ctx).")
    var ctx: Int = 512

    @Option(help: "Evaluate only the first N windows of each text.")
    var chunks: Int?

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Option(help: "The merge's tokenizer (folder, tokenizer.json or .gguf) when not its own; also for a parent without one.")
    var tokenizer: String?

    @Flag(help: "Print the result as one JSON object on stdout (schema: docs/score.md).")
    var json = false

    @Option(help: "Write report.json, report.md and report.html into this folder.")
    var report: String?

    func validate() throws {
        if eval.isEmpty { throw ValidationError("--eval FILE is required (one or more texts to score)") }
        if ctx < 4 { throw ValidationError("--ctx must be at least 4") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func apply(to job: inout ScoreJob) {
        job.contextLength = ctx
        job.maxChunks = chunks
        if let threads { job.threads = threads }
        job.tokenizerPath = tokenizer
        job.onWarning = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }
    }

    /// Prints the table or the JSON and writes the report folder.
    func emit(_ report: ScoreReport) throws {
        if let folder = self.report {
            let files = try report.write(toFolder: folder)
            FileHandle.standardError.write(Data("report written: \(files.joined(separator: ", "))\n".utf8))
        }
        if json {
            print(report.json())
        } else {
            print(report.table(color: isatty(1) != 0))
        }
    }
}
