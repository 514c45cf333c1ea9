import ArgumentParser
import Evaluation
import Foundation
import Host

/// Options shared by `crucible bench ppl` and `crucible bench generate`.
struct EngineBenchOptions: ParsableArguments {
    @Argument(help: "GGUF files to run (e.g. the F32, F16, Q8_0, Q4_K_M and Q4_1 encodings of SmolLM2-135M).")
    var files: [String]

    @Option(name: .customLong("llama-cpp"), help: "A llama.cpp build folder (bin/llama-perplexity, bin/llama-completion) to run alternately.")
    var llamaCpp: String?

    @Option(help: "Text file: the perplexity windows, or the source of the generation prompt (default ../shared WikiText-2 test).")
    var data: String = "../shared/data/wikitext-2-raw/wiki.test.raw"

    @Option(help: "Runs per tool and file (best and median are reported).")
    var runs: Int = 3

    @Option(help: "Threads for both tools.")
    var threads: Int = 2

    func validate() throws {
        if files.isEmpty { throw ValidationError("give one or more GGUF files") }
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run(_ kind: EngineBenchmark.Kind, configure: (inout EngineBenchmark.Settings) -> Void) throws {
        var settings = EngineBenchmark.Settings()
        settings.runs = runs
        settings.threads = threads
        configure(&settings)
        let fm = FileManager.default
        let work = fm.temporaryDirectory.appendingPathComponent("crucible-bench-\(kind.rawValue)-\(getpid())").path
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: work) }
        let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let bench = EngineBenchmark(kind: kind, settings: settings, crucible: exe, llamaCpp: llamaCpp, textFile: data, workFolder: work)
        if let tool = bench.llamaTool, !fm.isExecutableFile(atPath: tool) { throw CLIFailure("\(tool) is not an executable") }
        let prompt = work + "/prompt.txt"
        if kind == .generation {
            try EngineBenchmark.promptText(model: files[0], textFile: data, count: settings.promptTokens)
                .write(toFile: prompt, atomically: true, encoding: .utf8)
        }
        print("\(ProcessInfo.processInfo.activeProcessorCount) cores; load average before: \(loadAverage())")
        for (tool, argv) in bench.commands(file: files[0], prompt: prompt) { print("\(tool): \(argv.joined(separator: " "))") }
        let results = try bench.run(files: files, prompt: prompt) { print($0) }
        print("")
        print(EngineBenchmark.report(results, files: files))
        print("load average after: \(loadAverage())")
    }
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg gives them.
func loadAverage() -> String {
    ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
}

struct BenchPerplexity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ppl",
        abstract: "Prompt processing (perplexity protocol) on GGUF files, whole-process, optionally against llama-perplexity.")

    @OptionGroup var options: EngineBenchOptions

    @Option(help: "Window length.")
    var ctx: Int = 512

    @Option(help: "Windows per run.")
    var chunks: Int = 10

    func run() throws {
        try options.run(.perplexity) { $0.contextLength = ctx; $0.chunks = chunks }
    }
}

struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Greedy generation after a prompt on GGUF files, whole-process, optionally against llama-completion.")

    @OptionGroup var options: EngineBenchOptions

    @Option(name: .customLong("prompt-tokens"), help: "Prompt length (the first tokens of --data).")
    var promptTokens: Int = 64

    @Option(name: .customLong("max-tokens"), help: "Tokens to generate.")
    var maxTokens: Int = 128

    func run() throws {
        try options.run(.generation) { $0.promptTokens = promptTokens; $0.generateTokens = maxTokens }
    }
}
