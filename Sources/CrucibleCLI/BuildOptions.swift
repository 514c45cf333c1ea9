import ArgumentParser
import Checkpoints
import Export
import Foundation

/// A size in bytes on the command line: `5GB`, `500MB`, `1GiB`, `5B` (billions, as mergekit's `--out-shard-size`
/// reads it: k/m/b = ×1e3/1e6/1e9 bytes), or plain bytes.
struct ByteSize: ExpressibleByArgument, Sendable {
    let bytes: Int

    init(_ bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        let s = argument.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("gib", 1_073_741_824), ("mib", 1_048_576), ("kib", 1024), ("gb", 1e9), ("mb", 1e6),
                                         ("kb", 1e3), ("g", 1e9), ("m", 1e6), ("k", 1e3), ("b", 1e9)]
        for (suffix, factor) in units where s.hasSuffix(suffix) {
            guard let v = Double(s.dropLast(suffix.count)), v > 0, v * factor < Double(Int.max) else { return nil }
            bytes = Int(v * factor)
            return
        }
        guard let v = Int(s), v > 0 else { return nil }
        bytes = v
    }

    var defaultValueDescription: String { bytes % 1_000_000_000 == 0 ? "\(bytes / 1_000_000_000)GB" : "\(bytes)" }
}

/// What every command that builds a model folder from a recipe takes: `merge`, `moe` and `run`.
struct BuildOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Output folder (written atomically: it appears only when complete).")
    var out: String

    @Option(help: "Seed for random methods, random gates and noise (overrides the recipe's random_seed).")
    var seed: UInt64?

    @Option(help: "Maximum shard size, e.g. 5GB, 500MB, 5B (mergekit-style: k/m/b = ×1e3/1e6/1e9 bytes).")
    var shardSize = ByteSize(5_000_000_000)

    @Flag(help: "Replace an existing output folder once the new one is complete.")
    var overwrite = false

    @Flag(help: "Do not write a README.md model card.")
    var noModelCard = false

    @Flag(help: "Merge tensors whose parents hold NaN or infinite values (each is reported) instead of failing.")
    var allowNonFinite = false

    @Option(help: "Also write the model as GGUF, in one of llama-quantize's file types, into the output folder.")
    var gguf: GGUFFileType.Mixture?

    @Flag(help: "With --gguf: keep only the GGUF weights (the safetensors are removed once the GGUF file is complete).")
    var ggufOnly = false

    func validateGGUF() throws {
        if ggufOnly && gguf == nil { throw ValidationError("--gguf-only needs --gguf TYPE") }
    }

    /// Refuses --gguf for an output that cannot be written as GGUF, before the build starts.
    func checkGGUFWritable(config: JSONObject) throws {
        guard gguf != nil else { return }
        try GGUFExport.checkWritable(config: config, file: "the output config.json")
    }

    /// Writes the GGUF file into the finished output folder when --gguf was given, and says so.
    func writeGGUF(folder: String, threads: Int?, quiet: Bool) throws {
        guard let gguf else { return }
        let fileType = GGUFFileType(mixture: gguf)
        var options = GGUFExportOptions(fileType: fileType)
        if let threads { options.threads = max(1, threads) }
        let started = Date()
        let report = try GGUFExport.attach(toFolder: folder, options: options, only: ggufOnly)
        if !quiet {
            FileHandle.standardError.write(Data(String(format: "wrote %@ (%@, %.1f MB) in %.2f s\n", report.path, fileType.description,
                                                       Double(report.bytes) / 1e6, Date().timeIntervalSince(started)).utf8))
        }
    }
}

/// The flags only mixture-of-experts recipes use (`moe`, `run`).
struct MoEBuildFlags: ParsableArguments {
    @Flag(help: ArgumentHelp("Write Mixtral experts in transformers 5's fused layout (mlp.experts.gate_up_proj), "
                             + "as mergekit 0.1.5 does, instead of one tensor per expert."))
    var fusedExperts = false

    @Flag(name: .customLong("i-understand-this-is-not-useful-without-training"),
          help: "Allow every expert to come from the same model (only useful if you train the MoE afterwards).")
    var allowIdenticalExperts = false
}
