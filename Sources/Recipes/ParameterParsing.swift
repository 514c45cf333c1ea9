import Yams

/// Turns the YAML of a `parameters:` block into `ParameterSetting`s, following mergekit's accepted value forms
/// (docs/recipes.md, "Parameter values"): scalar, gradient, step list, conditional list.
struct ParameterDecoder {
    let reader: NodeReader

    /// `parameters:` → name → setting. Legacy `embed_slerp` is dropped with a warning.
    func parameters(_ node: Node, warnings: inout [RecipeWarning]) throws -> [String: LocatedSetting] {
        if case .null? = reader.resolve(node) { return [:] }   // `parameters:` left empty
        let mapping = try reader.entries(of: node, what: "`parameters`")
        var result: [String: LocatedSetting] = [:]
        for entry in mapping.entries {
            if entry.key == "embed_slerp" {
                warnings.append(RecipeWarning(
                    "`embed_slerp` is a legacy parameter (removed from mergekit with the July 2024 tokenizer rework); it is ignored",
                    at: entry.keyLocation))
                continue
            }
            if case .null? = reader.resolve(entry.value) {
                // An empty value has no useful position of its own; the key is where the user looks.
                throw RecipeError.invalidParameter(entry.keyLocation, name: entry.key,
                    reason: "no value given: expected a number, boolean, text, list of numbers or list of `{filter, value}` conditions")
            }
            let setting = try self.setting(entry.value, name: entry.key, warnings: &warnings)
            result[entry.key] = LocatedSetting(setting, at: reader.location(entry.value))
        }
        return result
    }

    /// One parameter value in any of the accepted forms.
    func setting(_ node: Node, name: String, warnings: inout [RecipeWarning]) throws -> ParameterSetting {
        switch node {
        case .scalar:
            return .scalar(try scalarValue(node, name: name))
        case .sequence(let sequence):
            let items = Array(sequence)
            guard !items.isEmpty else {
                throw RecipeError.invalidParameter(reader.location(node), name: name,
                    reason: "empty list: expected a number, a list of numbers (a gradient over the layers) or a list of `{filter, value}` "
                        + "conditions")
            }
            if items.allSatisfy({ if case .mapping = $0 { return true } else { return false } }) {
                return .conditional(try items.map { try condition($0, name: name, warnings: &warnings) })
            }
            return try valueList(items, listNode: node, name: name)
        case .mapping:
            // mergekit's schema lets a lone `{filter, value}` mapping through, then fails on it at evaluation time
            // ("Unexpected setting value"). Reading it as the one-element list the author surely meant is kinder.
            let entry = try condition(node, name: name, warnings: &warnings)
            warnings.append(RecipeWarning(
                "parameter `\(name)`: a single `{filter, value}` mapping is read as a one-element condition list; "
                    + "write it as a list (`- filter: …`) for mergekit, which fails on this form", at: reader.location(node)))
            return .conditional([entry])
        }
    }

    /// A list of scalars: a gradient of numbers, or a step list when any element is text.
    private func valueList(_ items: [Node], listNode: Node, name: String) throws -> ParameterSetting {
        var values: [ParameterValue] = []
        for item in items {
            switch item {
            case .sequence:
                throw RecipeError.invalidParameter(reader.location(item), name: name,
                    reason: "nested list: a gradient is a flat list of numbers such as [0, 0.5, 1]")
            case .mapping:
                throw RecipeError.invalidParameter(reader.location(item), name: name,
                    reason: "a list mixing `{filter, value}` conditions with plain values: expected either all conditions or all values")
            case .scalar:
                values.append(try scalarValue(item, name: name))
            }
        }
        let numbers = values.compactMap { v -> Double? in
            switch v {
            case .number(let d): return d
            case .bool(let b): return b ? 1 : 0    // mergekit counts bools as numbers in gradients
            case .string: return nil
            }
        }
        if numbers.count == values.count { return .gradient(numbers) }
        return .steps(values)
    }

    /// One `{filter, value}` entry of a conditional list.
    private func condition(_ node: Node, name: String, warnings: inout [RecipeWarning]) throws -> ConditionalSetting {
        let mapping = try reader.entries(of: node, what: "a condition of parameter `\(name)`")
        guard let valueEntry = mapping["value"] else {
            throw RecipeError.invalidParameter(reader.location(node), name: name,
                reason: "a condition has no `value`: expected `{filter: NAME_PART, value: X}` or `{value: X}`")
        }
        var filter: String?
        if let filterEntry = mapping["filter"] {
            switch reader.resolve(filterEntry.value) {
            case .null?: filter = nil
            case .some: filter = reader.rawText(filterEntry.value)
            case nil:
                throw RecipeError.invalidParameter(reader.location(filterEntry.value), name: name,
                    reason: "`filter` must be text (a part of the tensor name such as `self_attn` or `mlp`), found "
                        + "\(reader.describe(filterEntry.value))")
            }
        }
        for (entry, suggestion) in mapping.unknownEntries(known: ["filter", "value"]) {
            warnings.append(RecipeWarning(
                "parameter `\(name)`: unknown key `\(entry.key)` in a condition is ignored"
                    + (suggestion.map { " (did you mean `\($0)`?)" } ?? ""), at: entry.keyLocation))
        }
        let value: ParameterSetting
        switch valueEntry.value {
        case .mapping:
            throw RecipeError.invalidParameter(reader.location(valueEntry.value), name: name,
                reason: "a condition's `value` must be a number, boolean, text or list of numbers, not another mapping")
        case .sequence(let sequence):
            let items = Array(sequence)
            guard !items.isEmpty else {
                throw RecipeError.invalidParameter(reader.location(valueEntry.value), name: name,
                    reason: "empty list: expected a number or a list of numbers (a gradient over the layers)")
            }
            value = try valueList(items, listNode: valueEntry.value, name: name)
        case .scalar:
            value = .scalar(try scalarValue(valueEntry.value, name: name))
        }
        return ConditionalSetting(filter: filter, value: value, location: reader.location(node))
    }

    private func scalarValue(_ node: Node, name: String) throws -> ParameterValue {
        switch reader.resolve(node) {
        case .int(let i)?: return .number(Double(i))
        case .float(let d)?:
            guard d.isFinite else {
                throw RecipeError.invalidParameter(reader.location(node), name: name,
                                                   reason: "expected a finite number, found \(reader.describe(node))")
            }
            return .number(d)
        case .bool(let b)?: return .bool(b)
        case .string(let s)?: return .string(s)
        case .null?, nil:
            throw RecipeError.invalidParameter(reader.location(node), name: name,
                reason: "no value given: expected a number, boolean or text (e.g. `\(name): 0.5`)")
        }
    }
}
