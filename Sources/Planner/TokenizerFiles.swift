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
