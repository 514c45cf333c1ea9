import Architectures
import ArgumentParser
import Foundation
import Tokenization

/// `crucible synth`: random but valid checkpoints to merge in examples, tests and benchmarks.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a random but valid Hugging Face checkpoint with a byte-level tokenizer (or a seeded \"fine-tune\" of one).")

    @Option(help: "Architecture.")
    var arch = SynthArchitecture(argument: "llama")!

    @Option(help: "Dimensions.")
    var preset = SynthPreset(argument: "tiny")!

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    @Option(help: "Storage dtype.")
    var dtype = StorageDType.bf16

    @Option(help: "Make a fine-tune of this checkpoint folder instead: W + delta·rms(W)·N(0,1).")
    var finetuneOf: String?

    @Option(help: "Relative size of the fine-tune's change.")
    var delta: Float = 0.02

    @Option(name: .shortAndLong, help: "Output folder.")
    var out: String

    func run() throws {
        let d = dtype.dtype
        if let base = finetuneOf {
            try SyntheticCheckpoint.writeFineTune(of: base, delta: delta, seed: seed, dtype: d, to: out)
        } else {
            try SyntheticCheckpoint.write(arch: arch.name, preset: preset.name, seed: seed, dtype: d, to: out)
            try SyntheticTokenizer.write(vocabularySize: SyntheticCheckpoint.presets[preset.name]!.vocab, into: out)
        }
        print(out)
    }
}
