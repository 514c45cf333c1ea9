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
    var prompt: String

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
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if temp < 0 { throw ValidationError("--temp must not be negative") }
        if !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1]") }
        if !(minP >= 0 && minP < 1) { throw ValidationError("--min-p must be in [0, 1)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let lm = try LanguageModel(path: model, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let tokenizer = try TokenizerLoader.load(path: model)
        let ids = tokenizer.encode(prompt, addSpecial: true, parseSpecial: true)
        guard !ids.isEmpty else { throw CLIFailure("the prompt encodes to no tokens") }
        var stop = Set(lm.config.eosTokenIDs)
        if let eos = tokenizer.eosID { stop.insert(eos) }
        var generated: [Int] = []
        var printed = ""
        let sampling = SamplingOptions(temperature: temp, topP: topP, minP: minP, seed: seed)
        try lm.generate(prompt: ids, maxTokens: maxTokens, sampling: sampling, stopTokens: stop) { token in
            generated.append(token)
            // Decode the whole continuation and print what is new, holding back a trailing partial UTF-8 sequence.
            let text = tokenizer.decode(generated, skipSpecial: true)
            if !text.hasSuffix("\u{FFFD}"), text.hasPrefix(printed) {
                FileHandle.standardOutput.write(Data(text.dropFirst(printed.count).utf8))
                printed = text
            }
            return true
        }
        let text = tokenizer.decode(generated, skipSpecial: true)
        if text.hasPrefix(printed) { FileHandle.standardOutput.write(Data(text.dropFirst(printed.count).utf8)) }
        print("")
    }
}
