import ArgumentParser
import Foundation
import Planner

/// `crucible extract-lora --model FT --base BASE --out DIR`: a PEFT LoRA adapter of FT − BASE by truncated SVD.
struct ExtractLoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract-lora",
        abstract: "Extract a PEFT LoRA adapter of a fine-tune's difference from its base (truncated SVD per matrix), as "
            + "mergekit-extract-lora does.",
        discussion: "Each matrix's Δ = W_model − W_base is factored as B·A with LAPACK's SVD at rank min(--max-rank, "
            + "min(out, in)) (fewer with --sv-epsilon). The embedding and output head, and every tensor that is not a matrix "
            + "(norms), are saved whole in modules_to_save. Each module's reconstruction error ‖B·A − Δ‖_F/‖Δ‖_F is printed "
            + "and written to lora_extraction.json beside the adapter.")

    @Option(help: "The fine-tuned model (a folder, a .gguf, a hub id in the local cache, or MODEL+ADAPTER).")
    var model: String

    @Option(help: "The base model the adapter applies to.")
    var base: String

    @Option(name: .shortAndLong, help: "Output folder for the adapter.")
    var out: String

    @Option(help: "Largest rank of a module.")
    var maxRank: Int = 128

    @Option(help: "Drop singular values at or below this (0: keep max-rank of them).")
    var svEpsilon: Double = 0

    @Flag(inversion: .prefixedNo, help: "Split the singular values between A and B (√S each); without: A = S·Vh, B = U.")
    var distributeScale = true

    @Flag(help: "Decompose the embedding and the output head too, instead of saving them whole.")
    var embedLora = false

    @Flag(help: "Leave out tensors that are not matrices (norms) instead of saving them whole.")
    var skipUndecomposable = false

    @Flag(help: "Replace an existing output folder (once the new adapter is complete).")
    var overwrite = false

    @Flag(name: .shortAndLong, help: "Print only warnings and the summary line.")
    var quiet = false

    func run() throws {
        var options = LoRAExtraction.Options()
        options.maxRank = maxRank
        options.svEpsilon = svEpsilon
        options.distributeScale = distributeScale
        options.embedLoRA = embedLora
        options.skipUndecomposable = skipUndecomposable
        options.overwrite = overwrite
        let report = try LoRAExtraction.extract(model: model, base: base, out: out, options: options)
        for w in report.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        if !quiet {
            print("module                                      shape          rank   rel. error   optimal")
            for m in report.modules {
                let shape = m.shape.map(String.init).joined(separator: "×")
                print(m.module.padding(toLength: max(43, m.module.count), withPad: " ", startingAt: 0)
                      + " " + shape.padding(toLength: 14, withPad: " ", startingAt: 0)
                      + String(format: " %4d   %.4e   %.4e", m.rank, m.relativeError, m.optimalRelativeError))
            }
        }
        let worst = report.modules.map(\.relativeError).max() ?? 0
        print(String(format: "extracted %d modules (rank ≤ %d, worst relative error %.4e)", report.modules.count, report.rank, worst)
              + (report.modulesToSave.isEmpty ? "" : "; saved whole: \(report.modulesToSave.joined(separator: ", "))")
              + " into \(report.outputPath)")
    }
}
