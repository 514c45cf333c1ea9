import Architectures
import ArgumentParser
import Foundation
import Tokenization

/// `crucible synth`: random but valid checkpoints to merge in examples, tests and benchmarks.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a random but valid Hugging Face checkpoint with a byte-level tokenizer (or a seeded \"fine-tune\" of one, or a "
            + "seeded LoRA adapter for one).")

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

    @Option(help: "Make a PEFT LoRA adapter for this checkpoint instead (A ~ N(0, 1/√in), B ~ N(0, 0.02), lora_alpha = 2·rank).")
    var loraOf: String?

    @Option(help: "Rank of the --lora-of adapter.")
    var rank: Int = 16

    @Option(help: "Comma-separated module names the --lora-of adapter targets.")
    var targets: String = "q_proj,v_proj,down_proj"

    @Option(name: .shortAndLong, help: "Output folder.")
    var out: String

    func run() throws {
        let d = dtype.dtype
        if let base = loraOf {
            try SyntheticCheckpoint.writeLoRA(of: base, rank: rank, targets: targets.split(separator: ",").map(String.init), seed: seed,
                                              to: out)
        } else if let base = finetuneOf {
            try SyntheticCheckpoint.writeFineTune(of: base, delta: delta, seed: seed, dtype: d, to: out)
        } else {
            try SyntheticCheckpoint.write(arch: arch.name, preset: preset.name, seed: seed, dtype: d, to: out)
            try SyntheticTokenizer.write(vocabularySize: SyntheticCheckpoint.presets[preset.name]!.vocab, into: out)
        }
        print(out)
    }
}
