import ArgumentParser
import Foundation
import Host
import Tokenization

/// `crucible tokenize MODEL (--file F | --text T)`: prints token ids the way llama.cpp's
/// `llama-tokenize --ids` does (one line, `[id, id, ...]`), or `{"ids": [...]}` with `--json`.
public struct TokenizeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a text with a model's tokenizer.",
        discussion: """
            MODEL is a model folder (tokenizer.json, tokenizer_config.json) or a .gguf file. By default the \
            model's BOS/EOS rule applies and special-token spellings such as <s> are tokenized as plain text, \
            as llama-perplexity does.
            """
    )

    @Argument(help: "Model folder (with tokenizer.json) or .gguf file.")
    public var model: String

    @Option(name: .long, help: "Read the text from this file (raw bytes, decoded as UTF-8).")
    public var file: String?

    @Option(name: .long, help: "The text to tokenize.")
    public var text: String?

    @Flag(name: .customLong("no-add-special"), help: "Do not add BOS/EOS.")
    public var noAddSpecial = false

    @Flag(name: .customLong("parse-special"), help: "Match special-token spellings (e.g. <|im_start|>) in the text.")
    public var parseSpecial = false

    @Flag(name: .long, help: "Print {\"ids\": [...]} instead of a plain list.")
    public var json = false

    public init() {}

    public func validate() throws {
        if (file == nil) == (text == nil) { throw ValidationError("give exactly one of --file and --text") }
    }

    public func run() throws {
        // Loader errors describe themselves (file and reason); ArgumentParser prints them as "Error: ...".
        let tokenizer = try TokenizerLoader.load(path: model)
        let input: String
        if let file {
            let data: Data
            do { data = try RegularFile.read(file) } catch let e as RegularFile.Failure {
                throw CLIFailure("\(file): cannot read the file: \(e.reason)")
            }
            input = String(decoding: data, as: UTF8.self)
        } else {
            input = text ?? ""
        }
        let ids = tokenizer.encode(input, addSpecial: !noAddSpecial, parseSpecial: parseSpecial)
        print(Self.format(ids, json: json))
    }

    /// `[1, 2, 3]`, or `{"ids": [1, 2, 3]}`.
    public static func format(_ ids: [Int], json: Bool) -> String {
        let list = "[" + ids.map(String.init).joined(separator: ", ") + "]"
        return json ? "{\"ids\": \(list)}" : list
    }
}
