import Architectures
import ArgumentParser
import Export
import Numerics

// Typed option values: the parser checks them, lists them in --help and completions, and a command receives a value
// it need not check again.

/// A `crucible synth` preset (`SyntheticCheckpoint.presets`).
struct SynthPreset: ExpressibleByArgument, Sendable {
    let name: String
    init?(argument: String) {
        guard SyntheticCheckpoint.presets[argument] != nil else { return nil }
        name = argument
    }
    static var allValueStrings: [String] { SyntheticCheckpoint.presets.keys.sorted() }
    var defaultValueDescription: String { name }
}

/// An architecture `crucible synth` writes (`SyntheticCheckpoint.architectures`).
struct SynthArchitecture: ExpressibleByArgument, Sendable {
    let name: String
    init?(argument: String) {
        guard SyntheticCheckpoint.architectures.contains(argument) else { return nil }
        name = argument
    }
    static var allValueStrings: [String] { SyntheticCheckpoint.architectures }
    var defaultValueDescription: String { name }
}

/// A float storage dtype for written checkpoints.
enum StorageDType: String, ExpressibleByArgument, CaseIterable, Sendable {
    case bf16, f16, f32
    var dtype: DType { DType(name: rawValue)! }
}

/// llama-quantize's file types, case-insensitively (`q4_k_m` is `Q4_K_M`).
extension GGUFFileType.Mixture: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
}
