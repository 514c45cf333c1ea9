import ArgumentParser
import Evaluation
import Foundation
import Host

/// `crucible ppl`: perplexity as llama.cpp's `llama-perplexity` computes it.
struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ppl",
        abstract: "Perplexity of a model on a text file, by llama.cpp's protocol (windows of --ctx, second half scored).",
        discussion: """
        The whole file is tokenized once (one trailing newline dropped, BOS if the vocabulary adds it), cut into \
        floor(tokens / ctx) windows, and the last ctx/2 - 1 predictions of each window are scored. The text must hold \
        at least one full window (llama.cpp asks for two). --save-logits writes llama.cpp's KL base file; --kl-ref \
        compares against one (tokens and ctx then come from that file).
        """)

    @Argument(help: "Checkpoint folder or .gguf file.")
    var model: String

    @Option(help: "Text file to score.")
    var data: String?

    @Option(help: "Window length (n_ctx).")
    var ctx: Int?

    @Option(help: "Tokens per forward call.")
    var batch: Int = 512

    @Option(help: "Evaluate only the first N windows.")
    var chunks: Int?

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Option(help: "Take the tokenizer from here (folder, tokenizer.json or .gguf) instead of MODEL.")
    var tokenizer: String?

    @Flag(help: "Print the result as one JSON object on stdout.")
    var json = false

    @Option(name: .customLong("save-logits"), help: "Write llama.cpp's KL-divergence base file.")
    var saveLogits: String?

    @Option(name: .customLong("kl-ref"), help: "Compare against a KL-divergence base file.")
    var klRef: String?

    @Flag(help: ArgumentHelp("Also report MoE routing per layer: each expert's share of tokens, router entropy, "
                             + "and how often the chosen experts change between adjacent tokens."))
    var routing = false

    func validate() throws {
        if data == nil && klRef == nil { throw ValidationError("--data FILE is required (unless --kl-ref gives the tokens)") }
        if saveLogits != nil && klRef != nil { throw ValidationError("--save-logits and --kl-ref cannot be combined") }
        if let ctx, ctx < 4 { throw ValidationError("--ctx must be at least 4") }
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        var job = PerplexityRun(modelPath: model, dataPath: data)
        job.contextLength = ctx ?? 512
        job.batchSize = batch
        job.maxChunks = chunks
        if let threads { job.threads = threads }
        job.saveLogitsPath = saveLogits
        job.klReferencePath = klRef
        job.tokenizerPath = tokenizer
        let routingStatistics = routing ? RoutingStatistics() : nil
        job.observer = routingStatistics
        job.onWarning = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }
        let result = try job.run { p in
            FileHandle.standardError.write(Data(String(format: "[%d/%d] PPL %.4f  (%.1f s, %.0f tokens/s)\n",
                                                       p.chunk, p.chunks, p.runningPerplexity, p.seconds, p.tokensPerSecond).utf8))
        }
        let rss = peakResidentBytes()
        if json {
            var object = result.json(peakResidentBytes: rss)
            if let routingStatistics { object = String(object.dropLast()) + ", \"routing\": \(routingStatistics.report.json)}" }
            print(object)
            return
        }
        if let routingStatistics { print(routingStatistics.report.table) }
        if let kl = result.klDivergence { print(kl.table + "\n") }
        print(String(format: "Final estimate: PPL = %.4f +/- %.5f", result.perplexity, result.standardError))
        print("tokens scored: \(result.tokensScored) in \(result.chunks) windows of \(result.contextLength)")
        print(String(format: "prompt processing: %.1f tokens/s (%.1f s)", result.promptTokensPerSecond, result.seconds))
        if let rss { print(String(format: "peak RSS: %.1f MiB", Double(rss) / 1_048_576)) }
    }
}
