import Checkpoints
import Foundation
import Recipes

/// Copies the tokenizer and generation files from the donor model into the output (or, for a GGUF donor,
/// writes the files `GGUFTokenizerExport` derives from its vocabulary), and applies `chat_template`.
enum TokenizerFiles {
    /// Files copied as they are when present (the set transformers and mergekit carry along).
    static let names = [
        "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer.model", "added_tokens.json",
        "merges.txt", "vocab.json", "chat_template.jinja", "chat_template.json", "generation_config.json",
    ]

    static func copy(plan: MergePlan, into folder: String) throws {
        let fm = FileManager.default
        let model = plan.models[plan.tokenizerDonor]
        if let donor = model.folder {
            for name in names {
                let src = (donor as NSString).appendingPathComponent(name)
                guard fm.fileExists(atPath: src) else { continue }
                do {
                    try fm.copyItem(atPath: src, toPath: (folder as NSString).appendingPathComponent(name))
                } catch {
                    throw PlanError.output(folder, "cannot copy \(name) from \(donor): \(error.localizedDescription)")
                }
            }
        } else if let files = try? exportedFiles(gguf: model.path) {
            // A GGUF donor: its vocabulary is written as Hugging Face files. One the export cannot convert
            // was already reported as a plan warning, so the output simply has no tokenizer files.
            for (name, text) in files.sorted(by: { $0.key < $1.key }) {
                do {
                    try text.write(toFile: (folder as NSString).appendingPathComponent(name), atomically: false, encoding: .utf8)
                } catch {
                    throw PlanError.output(folder, "cannot write \(name) (exported from \(model.path)): \(error.localizedDescription)")
                }
            }
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
}

extension TokenizerFiles {
    /// The Hugging Face tokenizer files exported from the vocabulary of the GGUF file at `path`.
    static func exportedFiles(gguf path: String) throws -> [String: String] {
        try GGUFTokenizerExport.files(from: GGUFFile(path: path))
    }
}

/// The built-in chat templates a recipe may name (`chat_template: chatml`).
public enum ChatTemplates {
    public static let builtIn: [String: String] = [
        "chatml": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        "llama3": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
        "alpaca": "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}",
        "mistral": "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
    ]
}
