import Checkpoints
import Foundation
import Host
import Recipes
import Tokenization

/// Gives the output the donor's tokenizer (copied from its folder, or exported from a GGUF vocabulary) and
/// applies `chat_template`.
enum TokenizerFiles {
    static func copy(plan: MergePlan, into folder: String) throws {
        let fm = FileManager.default
        let model = plan.models[plan.tokenizerDonor]
        do {
            if let vocabulary = plan.vocabulary {
                try writeBuilt(vocabulary, plan: plan, into: folder)
            } else {
                try TokenizerFileSet.write(from: model.source, path: model.path, into: folder)
            }
        } catch is GGUFTokenizerExportError {
            // Already reported as a plan warning: the output simply has no tokenizer files.
        } catch {
            throw PlanError.output(folder, "\(error)")
        }
        if let template = plan.recipe.chatTemplate, template != "auto" {
            let text = ChatTemplates.builtIn[template] ?? template
            let path = (folder as NSString).appendingPathComponent("tokenizer_config.json")
            var config = JSONObject()
            if fm.fileExists(atPath: path), case let .object(o) = try JSONValue.parse(file: path) { config = o }
            config["chat_template"] = .string(text)
            do {
                try (JSONValue.object(config).serialized(indent: 2) + "\n").write(toFile: path, atomically: false, encoding: .utf8)
            } catch {
                throw PlanError.output(folder, "cannot write tokenizer_config.json: \(error.localizedDescription)")
            }
        }
    }

    /// Files of the tokenizer donor that still describe a built vocabulary (the rest, such as merges.txt or
    /// tokenizer.model, would contradict tokenizer.json and are left out, as transformers' save_pretrained leaves them).
    static let carriedWithBuiltVocabulary = ["chat_template.jinja", "chat_template.json", "generation_config.json"]

    /// A built vocabulary's tokenizer: tokenizer.json as built, the donor's tokenizer_config.json loading it through
    /// the tokenizers backend (the BOS comes from tokenizer.json's post-processor, as in the files mergekit writes), its
    /// chat template and generation_config.json.
    static func writeBuilt(_ vocabulary: VocabularyPlan, plan: MergePlan, into folder: String) throws {
        var donorFiles: [(name: String, content: TokenizerFileSet.Content)] = []
        if let m = vocabulary.donorModel {
            donorFiles = try TokenizerFileSet.contents(of: plan.models[m].source, path: plan.models[m].path)
        } else if let path = vocabulary.donorFolder {
            donorFiles = TokenizerFileSet.names.compactMap { name in
                let file = (path as NSString).appendingPathComponent(name)
                return FileManager.default.fileExists(atPath: file) ? (name, .copy(from: file)) : nil
            }
        }
        func text(_ content: TokenizerFileSet.Content) throws -> String {
            switch content {
            case let .text(t): return t
            case let .copy(from): return String(decoding: try RegularFile.read(from), as: UTF8.self)
            }
        }
        var config = JSONObject()
        if let entry = donorFiles.first(where: { $0.name == "tokenizer_config.json" }),
           case let .object(o) = try JSONValue.parse(Data(try text(entry.content).utf8)) {
            config = o
        }
        // Ids changed: the old added-token table and the flags that rebuild the post-processor no longer apply.
        for key in ["added_tokens_decoder", "add_bos_token", "add_eos_token", "tokenizer_file", "vocab_file", "merges_file"] {
            config[key] = nil
        }
        config["tokenizer_class"] = .string("TokenizersBackend")
        config["backend"] = .string("tokenizers")
        let write = { (name: String, body: String) in
            try body.write(toFile: (folder as NSString).appendingPathComponent(name), atomically: false, encoding: .utf8)
        }
        try write("tokenizer.json", vocabulary.tokenizer.serialized())
        try write("tokenizer_config.json", JSONValue.object(config).serialized(indent: 2) + "\n")
        for (name, content) in donorFiles where carriedWithBuiltVocabulary.contains(name) { try write(name, try text(content)) }
    }
}
