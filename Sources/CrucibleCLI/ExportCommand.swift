import ArgumentParser
import Checkpoints
import Export
import Foundation
import Reports

/// What `export` and `quantize` share besides the type option.
struct ExportTarget: ParsableArguments {
    @Argument(help: "Model folder, .gguf file or cached hub id.")
    var model: String

    @Option(help: "The GGUF file to write.")
    var out: String

    @Flag(help: "Every quantizable tensor in TYPE's base type (llama-quantize --pure).")
    var pure = false

    @Flag(help: "Replace FILE if it exists.")
    var overwrite = false

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Option(help: "general.name (default: the model's folder or file name).")
    var name: String?

    @Flag(help: "No summary.")
    var quiet = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Exports `model` as `type` and prints what was written.
    func run(type: GGUFFileType.Mixture) throws {
        let fileType = GGUFFileType(mixture: type, pure: pure)
        let started = Date()
        let checkpoint = try Checkpoint.open(try ModelArgument.resolve(model))
        var options = GGUFExportOptions(fileType: fileType, overwrite: overwrite, name: name)
        if let threads { options.threads = threads }
        let report = try GGUFExport.export(checkpoint, to: out, options: options)
        guard !quiet else { return }
        let types = report.typeCounts.map { "\($0.1) \($0.0.name)" }.joined(separator: ", ")
        print("wrote \(report.path): \(report.architecture), \(fileType), \(report.tensors.count) tensors (\(types)), "
              + String(format: "%.1f MB in %.2f s", Double(report.bytes) / 1e6, Date().timeIntervalSince(started)))
        if !report.fallbacks.isEmpty {
            let shown = report.fallbacks.prefix(3).map { "\($0.0) → \($0.1.name)" }.joined(separator: ", ")
            print("  \(report.fallbacks.count) tensors have rows that are not whole blocks and fell back as llama-quantize does "
                  + "(\(shown)\(report.fallbacks.count > 3 ? ", …" : ""))")
        }
    }
}

/// `crucible export MODEL --gguf TYPE --out FILE`: any model Crucible reads, written as a llama.cpp-ready GGUF file.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a model as a GGUF file that llama.cpp loads, quantized as llama-quantize would.",
        discussion: """
        MODEL is a model folder, a .gguf file or a cached hub id. TYPE is one of llama-quantize's file types: \
        \(GGUFFileType.names.joined(separator: ", ")). Quantized types follow llama-quantize's per-tensor rules \
        (which tensors get more bits, which stay F32, the fallbacks for rows that are not whole blocks) unless \
        --pure is given; the bytes are those of llama.cpp's reference quantizers. See docs/formats.md.
        """)

    @OptionGroup var target: ExportTarget

    @Option(help: "llama-quantize's file type.")
    var gguf: GGUFFileType.Mixture

    func run() throws { try target.run(type: gguf) }
}

/// `crucible quantize MODEL --type TYPE --out FILE`: shorthand for `crucible export MODEL --gguf TYPE`.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Shorthand for `crucible export MODEL --gguf TYPE --out FILE`.")

    @OptionGroup var target: ExportTarget

    @Option(name: .customLong("type"), help: "llama-quantize's file type.")
    var type: GGUFFileType.Mixture

    func run() throws { try target.run(type: type) }
}
