import Checkpoints
import Foundation
import Recipes
import Tokenization

/// Gives the output the donor's tokenizer (copied from its folder, or exported from a GGUF vocabulary) and
/// applies `chat_template`.
enum TokenizerFiles {
    static func copy(plan: MergePlan, into folder: String) throws {
        let fm = FileManager.default
        let model = plan.models[plan.tokenizerDonor]
        do {
            try TokenizerFileSet.write(from: model.source, path: model.path, into: folder)
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
