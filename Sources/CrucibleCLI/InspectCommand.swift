import ArgumentParser
import Foundation
import Reports

/// `crucible inspect MODEL`: architecture, dimensions, storage, tensors, tokenizer, chat template and GGUF
/// metadata of one checkpoint, from its headers alone.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a checkpoint: architecture, dimensions, storage dtypes, tensors, tokenizer, chat template, GGUF metadata.",
        discussion: """
        MODEL is a model folder, a .gguf file, or a hub id (ORG/NAME) already in the local Hugging Face cache. Only \
        headers and metadata are read. Tensors are shown as per-layer patterns unless --tensors is given. The JSON \
        keys are documented in docs/inspect.md.
        """)

    @Argument(help: "Model folder, .gguf file or cached hub id.")
    var model: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "List every tensor instead of per-layer patterns.")
    var tensors = false

    func run() throws {
        let report = try ModelInspection.inspect(model)
        if json {
            print(report.json(allTensors: tensors).serialized())
        } else {
            print(report.text(allTensors: tensors), terminator: "")
        }
    }
}
