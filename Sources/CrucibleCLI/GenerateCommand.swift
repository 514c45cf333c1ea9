import ArgumentParser
import Foundation
import Inference
import Tokenization

/// `crucible generate`: stream a continuation of a prompt.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue a prompt with a model, streaming tokens to stdout (greedy at --temp 0, seeded sampling otherwise).")

    @Argument(help: "Checkpoint folder or .gguf file.")
    var model: String

    @Option(help: "Prompt text (special tokens such as <|im_start|> written in it are recognised).")
    var prompt: String?

    @Option(name: .customLong("prompt-file"), help: "Read the prompt text from this file instead.")
    var promptFile: String?

    @Flag(name: .customLong("ignore-eos"), help: "Keep generating past end-of-sequence tokens (for benchmarks).")
    var ignoreEOS = false

    @Flag(help: ArgumentHelp("Print prompt and generation speed to stderr when done (`timings: …` lines).",
                             discussion: "Generated tokens/s counts the tokens after the first, which the prompt's logits give."))
    var timings = false

    @Option(name: .customLong("max-tokens"), help: "Most tokens to generate.")
    var maxTokens: Int = 128

    @Option(help: "Temperature; 0 is greedy.")
    var temp: Float = 0

    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold.")
    var topP: Float = 1

    @Option(name: .customLong("min-p"), help: "Drop tokens below this fraction of the top probability.")
    var minP: Float = 0

    @Option(help: "Seed of the sampler.")
    var seed: UInt64 = 0

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        if (prompt == nil) == (promptFile == nil) { throw ValidationError("give exactly one of --prompt and --prompt-file") }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if temp < 0 { throw ValidationError("--temp must not be negative") }
        if !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1]") }
        if !(minP >= 0 && minP < 1) { throw ValidationError("--min-p must be in [0, 1)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let lm = try LanguageModel(path: model, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let tokenizer = try TokenizerLoader.load(path: model)
        let text: String
        if let promptFile {
            do { text = try String(contentsOfFile: promptFile, encoding: .utf8) } catch {
                throw CLIFailure("\(promptFile): cannot read the prompt: \(error.localizedDescription)")
            }
        } else {
            text = prompt ?? ""
        }
        let ids = tokenizer.encode(text, addSpecial: true, parseSpecial: true)
        guard !ids.isEmpty else { throw CLIFailure("the prompt encodes to no tokens") }
        var stop = Set(lm.config.eosTokenIDs)
        if let eos = tokenizer.eosID { stop.insert(eos) }
        if ignoreEOS { stop = [] }
        let started = Date()
        var firstToken: Date?
        var generated: [Int] = []
        var printed = ""
        let sampling = SamplingOptions(temperature: temp, topP: topP, minP: minP, seed: seed)
        try lm.generate(prompt: ids, maxTokens: maxTokens, sampling: sampling, stopTokens: stop) { token in
            if firstToken == nil { firstToken = Date() }
            generated.append(token)
            // Decode the whole continuation and print what is new, holding back a trailing partial UTF-8 sequence.
            let text = tokenizer.decode(generated, skipSpecial: true)
            if !text.hasSuffix("\u{FFFD}"), text.hasPrefix(printed) {
                FileHandle.standardOutput.write(Data(text.dropFirst(printed.count).utf8))
                printed = text
            }
            return true
        }
        let output = tokenizer.decode(generated, skipSpecial: true)
        if output.hasPrefix(printed) { FileHandle.standardOutput.write(Data(output.dropFirst(printed.count).utf8)) }
        print("")
        if timings, let first = firstToken {
            let prompt = first.timeIntervalSince(started), rest = Date().timeIntervalSince(first)
            let line = String(format: "timings: prompt %d tokens in %.3f s (%.1f tokens/s, with the first token)\n", ids.count, prompt,
                              Double(ids.count) / max(prompt, 1e-9))
                + String(format: "timings: generated %d tokens after the first in %.3f s (%.2f tokens/s)\n", generated.count - 1, rest,
                         Double(generated.count - 1) / max(rest, 1e-9))
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}
