import Architectures
import ArgumentParser
import Foundation
import Tokenization
import Tensors

/// `crucible synth`: random but valid checkpoints to merge in examples, tests and benchmarks.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a random but valid Hugging Face checkpoint with a byte-level tokenizer (or a seeded \"fine-tune\" of one).")

    @Option(help: "Architecture: \(SyntheticCheckpoint.architectures.joined(separator: ", ")).")
    var arch: String = "llama"

    @Option(help: "Dimensions: smollm2-135m or tiny.")
    var preset: String = "tiny"

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    @Option(help: "Storage dtype: bf16, f16 or f32.")
    var dtype: String = "bf16"

    @Option(help: "Make a fine-tune of this checkpoint folder instead: W + delta·rms(W)·N(0,1).")
    var finetuneOf: String?

    @Option(help: "Relative size of the fine-tune's change.")
    var delta: Float = 0.02

    @Option(name: .shortAndLong, help: "Output folder.")
    var out: String

    func run() throws {
        guard let d = DType(name: dtype), d.isFloatingPoint, d != .f64 else {
            throw ValidationError("--dtype must be bf16, f16 or f32")
        }
        if let base = finetuneOf {
            try SyntheticCheckpoint.writeFineTune(of: base, delta: delta, seed: seed, dtype: d, to: out)
        } else {
            try SyntheticCheckpoint.write(arch: arch, preset: preset, seed: seed, dtype: d, to: out)
            try SyntheticTokenizer.write(vocabularySize: SyntheticCheckpoint.presets[preset]!.vocab, into: out)
        }
        print(out)
    }
}
