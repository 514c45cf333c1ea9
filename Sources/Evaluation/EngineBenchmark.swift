import Foundation
import Host
import Tokenization

/// Whole-process benchmarks of the inference engine (`crucible bench ppl`, `crucible bench generate`): Crucible's
/// `ppl` or `generate` as a child process on each file, and, when a llama.cpp build folder is given, llama.cpp's
/// `llama-perplexity` or `llama-completion` on the same file in the same process tree, run alternately (Crucible,
/// llama.cpp, Crucible, …) so both see the same machine load. Each tool's own throughput figure is parsed from its
/// output (prompt tokens/s over the windows; generated tokens/s after the prompt); peak RSS comes from `wait4`.
public struct EngineBenchmark {
    public enum Kind: String, Sendable {
        /// Prompt processing by the perplexity protocol: `chunks` windows of `ctx` tokens.
        case perplexity = "ppl"
        /// Greedy decoding of `generateTokens` tokens after a `promptTokens`-token prompt.
        case generation = "generate"
    }

    public struct Settings: Sendable {
        public var threads = 2
        public var contextLength = 512
        public var chunks = 10
        public var promptTokens = 64
        public var generateTokens = 128
        public var runs = 3
        public init() {}
    }

    /// One run of one tool on one file.
    public struct Measurement: Sendable {
        public let tool: String
        public let file: String
        /// Prompt tokens/s (perplexity) or generated tokens/s (generation), as the tool reports it.
        public let tokensPerSecond: Double
        public let wallSeconds: Double
        public let peakRSS: Int
        /// The perplexity the run reported (perplexity runs).
        public let perplexity: Double?
    }

    public let kind: Kind
    public let settings: Settings
    /// The `crucible` executable to run.
    public let crucible: String
    /// A llama.cpp build folder (with `bin/llama-perplexity`, `bin/llama-completion`), or nil for Crucible alone.
    public let llamaCpp: String?
    /// The text: the perplexity windows, or the source of the generation prompt.
    public let textFile: String
    /// Where logs and the prompt file go.
    public let workFolder: String

    public init(kind: Kind, settings: Settings, crucible: String, llamaCpp: String?, textFile: String, workFolder: String) {
        self.kind = kind
        self.settings = settings
        self.crucible = crucible
        self.llamaCpp = llamaCpp
        self.textFile = textFile
        self.workFolder = workFolder
    }

    /// The llama.cpp tool this benchmark runs.
    public var llamaTool: String? {
        llamaCpp.map { ($0 as NSString).appendingPathComponent("bin/" + (kind == .perplexity ? "llama-perplexity" : "llama-completion")) }
    }

    /// Command lines (executable first) for each tool on `file`; `prompt` is the generation prompt's text file.
    public func commands(file: String, prompt: String) -> [(tool: String, argv: [String])] {
        let s = settings
        var out: [(String, [String])] = []
        switch kind {
        case .perplexity:
            out.append(("crucible", [crucible, "ppl", file, "--data", textFile, "--ctx", "\(s.contextLength)",
                                     "--chunks", "\(s.chunks)", "--threads", "\(s.threads)", "--json"]))
            if let tool = llamaTool {
                out.append(("llama.cpp", [tool, "-m", file, "-f", textFile, "-c", "\(s.contextLength)", "-b", "\(s.contextLength)",
                                          "--chunks", "\(s.chunks)", "-t", "\(s.threads)", "--perf"]))
            }
        case .generation:
            out.append(("crucible", [crucible, "generate", file, "--prompt-file", prompt, "--max-tokens", "\(s.generateTokens)",
                                     "--temp", "0", "--ignore-eos", "--threads", "\(s.threads)", "--timings"]))
            if let tool = llamaTool {
                out.append(("llama.cpp", [tool, "-m", file, "-f", prompt, "-n", "\(s.generateTokens)", "--temp", "0", "--ignore-eos",
                                          "-t", "\(s.threads)", "-c", "\(s.promptTokens + s.generateTokens + 64)", "-no-cnv", "--perf"]))
            }
        }
        return out
    }

    /// Runs every tool on every file `settings.runs` times, alternating tools within each file and round.
    /// `prompt` is the generation prompt's text file (ignored for perplexity). `log` sees one line per run.
    public func run(files: [String], prompt: String, log: (String) -> Void) throws -> [Measurement] {
        var results: [Measurement] = []
        for round in 0..<max(1, settings.runs) {
            for file in files {
                var commands = commands(file: file, prompt: prompt)
                if round % 2 == 1 { commands.reverse() }   // neither tool always runs right after the other
                for (tool, argv) in commands {
                    let outPath = (workFolder as NSString).appendingPathComponent("\(tool)-\(round).out")
                    let errPath = (workFolder as NSString).appendingPathComponent("\(tool)-\(round).err")
                    let r = try ChildProcess.run(argv[0], Array(argv.dropFirst()), stdout: .file(outPath), stderr: .file(errPath))
                    let text = ((try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "") + "\n"
                        + ((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
                    guard r.status == 0 else {
                        throw EngineBenchmarkError(message: "\(tool) failed (exit \(r.status)): \(argv.joined(separator: " "))\n"
                            + String(text.suffix(2000)))
                    }
                    let passRate = { kind == .perplexity ? Self.llamaPassRate(text, contextLength: self.settings.contextLength) : nil }
                    let rate = tool == "crucible" ? Self.crucibleRate(kind, text) : Self.llamaRate(kind, text) ?? passRate()
                    guard let rate else {
                        throw EngineBenchmarkError(message: "no throughput figure in the output of \(argv.joined(separator: " "))\n"
                            + String(text.suffix(2000)))
                    }
                    let m = Measurement(tool: tool, file: file, tokensPerSecond: rate, wallSeconds: r.seconds, peakRSS: r.maxRSS,
                                        perplexity: kind == .perplexity ? Self.perplexity(tool, text) : nil)
                    results.append(m)
                    log(String(format: "round %d  %-9@ %@  %.1f tokens/s  %.2f s wall  %@%@", round + 1, tool as NSString,
                               (file as NSString).lastPathComponent as NSString, rate, r.seconds, formatBytes(r.maxRSS) as NSString,
                               m.perplexity.map { String(format: "  PPL %.4f", $0) as NSString } ?? ""))
                }
            }
        }
        return results
    }

    // MARK: - Reading the tools' outputs

    /// Crucible: `prompt_tokens_per_second` of `ppl --json`; the `generated … tokens/s` line of `generate --timings`.
    static func crucibleRate(_ kind: Kind, _ text: String) -> Double? {
        switch kind {
        case .perplexity: return number(after: "\"prompt_tokens_per_second\": ", in: text)
        case .generation:
            guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("timings: generated") }) else { return nil }
            return number(after: "(", in: String(line))
        }
    }

    /// llama.cpp's `llama_perf_context_print` lines (printed with `--perf`, off by default in 2026 builds): "prompt eval time = … tokens per second)" for perplexity,
    /// "eval time = … tokens per second)" (the decode steps after the prompt) for generation.
    static func llamaRate(_ kind: Kind, _ text: String) -> Double? {
        let lines = text.split(separator: "\n").map(String.init)
        let line = lines.last { l in
            guard l.contains("eval time =") else { return false }
            return kind == .perplexity ? l.contains("prompt eval time") : !l.contains("prompt eval time")
        }
        guard let line, let end = line.range(of: " tokens per second") else { return nil }
        let head = line[..<end.lowerBound]
        guard let start = head.lastIndex(where: { $0 == " " || $0 == "," }) else { return nil }
        return Double(head[head.index(after: start)...])
    }

    /// llama-perplexity builds that print no perf lines: n_ctx over the "N seconds per pass" it reports (timed on the
    /// first window, so a slightly less steady figure than the perf lines').
    static func llamaPassRate(_ text: String, contextLength: Int) -> Double? {
        guard let end = text.range(of: " seconds per pass", options: .backwards) else { return nil }
        let head = text[..<end.lowerBound]
        guard let start = head.lastIndex(where: { $0 == " " }), let seconds = Double(head[head.index(after: start)...]),
              seconds > 0 else { return nil }
        return Double(contextLength) / seconds
    }

    /// The final perplexity either tool printed.
    static func perplexity(_ tool: String, _ text: String) -> Double? {
        tool == "crucible" ? number(after: "\"ppl\": ", in: text) : number(after: "Final estimate: PPL = ", in: text)
    }

    private static func number(after marker: String, in text: String) -> Double? {
        guard let r = text.range(of: marker, options: .backwards) else { return nil }
        let digits = text[r.upperBound...].prefix { "0123456789.eE+-".contains($0) }
        return Double(digits)
    }

    // MARK: - Summary

    /// Best and median of one tool's runs on one file.
    public struct Summary: Sendable {
        public let best: Double
        public let median: Double
        public let peakRSS: Int
        public let runs: Int
    }

    public static func summarize(_ ms: [Measurement]) -> Summary? {
        guard !ms.isEmpty else { return nil }
        let rates = ms.map(\.tokensPerSecond).sorted()
        let n = rates.count
        let median = n % 2 == 1 ? rates[n / 2] : (rates[n / 2 - 1] + rates[n / 2]) / 2
        return Summary(best: rates[n - 1], median: median, peakRSS: ms.map(\.peakRSS).max()!, runs: n)
    }

    /// A table per file: each tool's best and median tokens/s and peak RSS, and Crucible ÷ llama.cpp.
    public static func report(_ results: [Measurement], files: [String]) -> String {
        var lines = ["file                                tool       best tok/s  median tok/s  peak RSS    ratio best (median)  RSS ratio"]
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        for file in files {
            let name = (file as NSString).lastPathComponent
            let ours = summarize(results.filter { $0.file == file && $0.tool == "crucible" })
            let theirs = summarize(results.filter { $0.file == file && $0.tool == "llama.cpp" })
            for (tool, s) in [("crucible", ours), ("llama.cpp", theirs)] {
                guard let s else { continue }
                var line = pad(name, 36) + pad(tool, 11) + pad(String(format: "%.1f", s.best), 12)
                    + pad(String(format: "%.1f", s.median), 14) + pad(formatBytes(s.peakRSS), 12)
                if tool == "crucible", let o = ours, let t = theirs {
                    line += pad(String(format: "%.2f× (%.2f×)", o.best / t.best, o.median / t.median), 21)
                        + String(format: "%.2f", Double(o.peakRSS) / Double(t.peakRSS))
                }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }
}

public struct EngineBenchmarkError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

extension EngineBenchmark {
    /// The generation prompt: the first `count` tokens of `textFile` by `model`'s tokenizer, decoded back to text
    /// (both tools then tokenize that text themselves).
    public static func promptText(model: String, textFile: String, count: Int) throws -> String {
        let tokenizer = try TokenizerLoader.load(path: model)
        let text = try String(contentsOfFile: textFile, encoding: .utf8)
        // A few characters per token: tokenize only the head of a large file.
        let head = String(text.prefix(max(4096, count * 32)))
        let ids = tokenizer.encode(head, addSpecial: false, parseSpecial: false)
        guard ids.count >= count else {
            throw EngineBenchmarkError(message: "\(textFile): its first \(head.count) characters hold \(ids.count) tokens, "
                + "fewer than the \(count) the prompt needs")
        }
        return tokenizer.decode(Array(ids.prefix(count)), skipSpecial: true)
    }
}
