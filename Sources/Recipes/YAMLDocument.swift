import Foundation
import Numerics
import Yams

/// Reading a whole recipe document and the pieces every recipe kind shares (merge recipes, MoE recipes): the
/// composed root node with libyaml's errors turned into located `RecipeError`s, model references, and warnings
/// for unknown keys.
extension NodeReader {
    /// Composes `text` into nodes that keep their marks. An empty document or a lone `null` is `emptyRecipe`.
    func compose(_ text: String) throws -> Node {
        // libyaml and Yams recurse per nesting level: refuse a hostile depth before they can overflow the stack.
        if let v = YAMLDepthLimit.firstViolation(in: text) {
            throw RecipeError.malformedYAML(SourceLocation(file: file, line: v.line, column: v.column),
                problem: "the YAML nests more than \(YAMLDepthLimit.maxDepth) levels deep here; a recipe needs far fewer")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw convert(error, text: text)
        } catch {
            throw RecipeError.malformedYAML(SourceLocation(file: file, line: 1, column: 1), problem: "\(error)")
        }
        guard let root else { throw RecipeError.emptyRecipe(file: file) }
        if YAMLDepthLimit.exceedsNodeLimit(root) {
            throw RecipeError.malformedYAML(SourceLocation(file: file, line: 1, column: 1),
                problem: "the recipe expands to more than \(YAMLDepthLimit.maxNodes) YAML nodes once its aliases (*name) are followed")
        }
        if case .null? = resolve(root) { throw RecipeError.emptyRecipe(file: file) }
        return root
    }

    /// Yams' error with its libyaml mark becomes a located `RecipeError`.
    private func convert(_ error: YamlError, text: String) -> RecipeError {
        func located(_ mark: Mark, _ problem: String, _ context: YamlError.Context?) -> RecipeError {
            var message = problem
            if let context, context.text.contains("single document") {
                message = "a recipe is one YAML document, but another one starts here (after `---`)"
            } else if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            if character(in: text, atLine: mark.line, column: mark.column) == "\t" {
                message += "; YAML indentation must use spaces, not tabs"
            }
            return .malformedYAML(SourceLocation(file: file, line: mark.line, column: mark.column), problem: message)
        }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            return located(mark, problem, context)
        case let .reader(problem, offset, _, _):
            let (line, column) = lineAndColumn(in: text, ofCharacterOffset: offset ?? 0)
            return .malformedYAML(SourceLocation(file: file, line: line, column: column), problem: problem)
        default:
            return .malformedYAML(SourceLocation(file: file, line: 1, column: 1), problem: "\(error)")
        }
    }

    /// The Unicode scalar at a 1-based libyaml position, if the text has one there.
    private func character(in text: String, atLine line: Int, column: Int) -> Unicode.Scalar? {
        let lines = text.split(separator: "\n", maxSplits: line, omittingEmptySubsequences: false)
        guard line >= 1, line <= lines.count, column >= 1 else { return nil }
        let scalars = Array(lines[line - 1].unicodeScalars)
        return column <= scalars.count ? scalars[column - 1] : nil
    }

    /// 1-based line and column (in Unicode scalars, as libyaml counts) of a Character offset into the text.
    private func lineAndColumn(in text: String, ofCharacterOffset offset: Int) -> (Int, Int) {
        var line = 1, column = 1
        for character in text.prefix(max(0, offset)) {
            if character == "\n" || character == "\r\n" { line += 1; column = 1 } else { column += character.unicodeScalars.count }
        }
        return (line, column)
    }

    /// A model reference: a string, or mergekit's dict form `{model: REF, lora?: …, override_architecture?: …}`.
    func modelReference(_ node: Node, key: String, warnings: inout [RecipeWarning]) throws -> ModelReference {
        switch node {
        case .scalar:
            guard let raw = rawText(node)?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else {
                throw RecipeError.wrongType(location(node), key: key, expected: "a model (a hub id `ORG/NAME` or a local path)",
                                            found: describe(node))
            }
            return ModelReference(raw: raw, location: location(node))
        case .mapping:
            let entry = try entries(of: node, what: "a model reference")
            guard let inner = entry["model"] else {
                throw RecipeError.missingKey(entry.location, key: "model", context: "this model reference", suggestion: nil)
            }
            var adapter: String? = nil
            if let lora = entry["lora"] {
                // `{model: M, lora: A}` is the same input as `M+A`.
                guard let raw = rawText(lora.value)?.trimmingCharacters(in: .whitespaces), !raw.isEmpty, !raw.contains("+") else {
                    throw RecipeError.wrongType(location(lora.value), key: "lora", expected: "the path or hub id of a PEFT LoRA adapter",
                                                found: describe(lora.value))
                }
                adapter = raw
            }
            if let override = entry["override_architecture"] {
                warnings.append(RecipeWarning("`override_architecture` is ignored: Crucible reads the architecture from the model's "
                    + "config.json", at: override.keyLocation))
            }
            warnings += unknownKeyWarnings(entry, known: ["model", "lora", "override_architecture"], context: "a model reference")
            let model = try modelReference(inner.value, key: key, warnings: &warnings)
            guard let adapter else { return model }
            if model.raw.contains("+") {
                throw RecipeError.invalidModel(model.location, reference: model.raw,
                                               reason: "this model already names an adapter (`+`); give `lora:` or `MODEL+ADAPTER`, not both")
            }
            return ModelReference(raw: model.raw + "+" + adapter, location: model.location)
        case .sequence:
            throw RecipeError.wrongType(location(node), key: key, expected: "a model (a hub id `ORG/NAME` or a local path)",
                                        found: "a list")
        }
    }

    /// One warning per key of `mapping` not in `known`, suggesting the closest known key for a likely typo.
    func unknownKeyWarnings(_ mapping: YAMLMapping, known: [String], context: String) -> [RecipeWarning] {
        mapping.unknownEntries(known: known).map { entry, suggestion in
            RecipeWarning("unknown key `\(entry.key)` in \(context) is ignored" + (suggestion.map { " (did you mean `\($0)`?)" } ?? ""),
                          at: entry.keyLocation)
        }
    }

    /// A floating-point dtype name (`bfloat16`, `torch.float16`, `float32`…); integer and bool dtypes are refused.
    func dtype(_ entry: YAMLMapping.Entry) throws -> DType {
        guard let name = rawText(entry.value) else {
            throw RecipeError.wrongType(location(entry.value), key: entry.key, expected: "a dtype name such as `bfloat16`",
                                        found: describe(entry.value))
        }
        // Merging is floating-point arithmetic: integer or bool dtypes (which DType also names) make no sense here.
        guard let dtype = DType(name: name), [.f32, .f16, .bf16, .f64].contains(dtype) else {
            throw RecipeError.unknownDType(location(entry.value), key: entry.key, value: name)
        }
        return dtype
    }
}
