import Architectures
import ArgumentParser
import Checkpoints
import Foundation
import Host
import Planner
import Tokenization

/// `crucible bench moe`: whole-process FrankenMoE assembly on SmolLM2-135M-shaped BF16 experts.
struct BenchMoE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moe",
        abstract: "Assemble a 4-expert Mixtral from SmolLM2-135M-shaped BF16 parents (made once by `crucible synth`, cached) "
            + "with hidden gates and 8 prompts per expert.")

    @OptionGroup var cache: BenchCache

    @Option(help: "Comma-separated gate modes to run (hidden, hidden_avg, router_input, cheap_embed, random).")
    var modes: String = "hidden,cheap_embed"

    @Option(help: "Runs per case (the best is reported; all are printed).")
    var runs: Int = 3

    @Option(help: "Preset of the parents.")
    var preset = SynthPreset(argument: "smollm2-135m")!

    /// Eight prompts per expert topic: code, maths, stories, chat.
    static let prompts: [[String]] = [
        ["def parse(line):", "import numpy as np", "for i in range(10):", "return x + y", "class Stack:",
         "SELECT * FROM users", "#include <stdio.h>", "if err != nil {"],
        ["Solve 3x + 7 = 22", "The integral of x^2", "What is 17 times 23?", "Prove that 2 is prime",
         "sqrt(144) equals", "The derivative of sin(x)", "Let n be an integer", "7 + 8 = 15, so"],
        ["Once upon a time", "The dragon woke up", "She opened the door", "In a village by the sea",
         "The knight rode north", "It was a dark night", "The old man smiled", "They sailed at dawn"],
        ["Hi! How are you?", "Thanks for the help", "Can you recommend a book?", "Good morning!",
         "What do you think?", "Tell me about yourself", "I feel tired today", "See you tomorrow"],
    ]

    func run() throws {
        let parents = try BenchParents(cache: cache.root, preset: preset.name, fineTunes: 3)
        let base = parents.base, root = parents.root
        let experts = parents.fineTunes + [base]
        let fm = FileManager.default
        // Prompts are tokenized as a real model would: with SmolLM2's own tokenizer when its GGUF is cached (same
        // vocabulary size as the smollm2-135m preset), else the byte-level tokenizer synth writes (about 3× the tokens).
        let shape = SyntheticCheckpoint.presets[preset.name]!   // SynthPreset holds only known presets
        let smol = (root as NSString).appendingPathComponent("SmolLM2-135M-Instruct.Q4_1.gguf")
        var tokenizerName = "byte-level (synth)"
        if shape.vocab == 49152, fm.fileExists(atPath: smol) {
            try TokenizerFileSet.write(from: try GGUFFile(path: smol), path: smol, into: base)
            tokenizerName = "SmolLM2's"
        } else {
            try SyntheticTokenizer.write(vocabularySize: shape.vocab, into: base)
        }
        let work = fm.temporaryDirectory.appendingPathComponent("crucible-bench-moe-\(getpid())").path
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: work) }
        let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        print("experts: 4 × \(preset.name) BF16, 8 prompts each (\(tokenizerName) tokenizer), Mixtral per-expert layout; "
            + "\(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("gate mode       best wall   peak RSS    output      (all runs)")
        for mode in modes.split(separator: ",").map(String.init) {
            var text = "base_model: \(base)\ngate_mode: \(mode)\ndtype: bfloat16\nexperts_per_token: 2\nrandom_seed: 1\nexperts:\n"
            for (path, list) in zip(experts, Self.prompts) {
                text += "  - source_model: \(path)\n    positive_prompts:\n" + list.map { "      - \"\($0)\"\n" }.joined()
            }
            let recipe = work + "/\(mode).yml"
            try text.write(toFile: recipe, atomically: true, encoding: .utf8)
            var results: [(Double, Int)] = []
            var written = 0
            for _ in 0..<max(1, runs) {
                let out = work + "/out-\(mode)"
                try? fm.removeItem(atPath: out)
                let r = try runChild(exe, ["moe", recipe, "--out", out, "--quiet"])
                if r.status != 0 { throw CLIFailure("bench moe \(mode) failed (exit \(r.status))") }
                results.append((r.seconds, r.maxRSS))
                written = ((try? fm.attributesOfItem(atPath: out + "/model.safetensors")[.size] as? Int) ?? 0)
                try? fm.removeItem(atPath: out)
            }
            let best = results.min { $0.0 < $1.0 }!
            let all = results.map { String(format: "%.2fs", $0.0) }.joined(separator: " ")
            print(mode.padding(toLength: 13, withPad: " ", startingAt: 0) + String(format: "%8.3f s   ", best.0)
                  + formatBytes(results.map(\.1).max()!).padding(toLength: 12, withPad: " ", startingAt: 0)
                  + formatBytes(written).padding(toLength: 12, withPad: " ", startingAt: 0) + "(\(all))")
        }
    }
}
