import Foundation
import Yams

/// A YAML scalar after tag resolution (YAML 1.1 core rules as Yams applies them, like PyYAML's safe loader:
/// `yes`/`on` are bools, quoted text is always a string).
enum ResolvedScalar {
    case int(Int)
    case float(Double)
    case bool(Bool)
    case null
    case string(String)
}

/// Reading helpers shared by the recipe decoder: node locations, typed scalars, mappings with located keys.
struct NodeReader {
    let file: String

    func location(_ node: Node) -> SourceLocation {
        // Composed nodes always carry a mark; (1, 1) only guards hand-built nodes.
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    /// Resolves a scalar by its tag; anything that fails to construct under its tag is kept as text.
    func resolve(_ node: Node) -> ResolvedScalar? {
        guard case .scalar(let scalar) = node else { return nil }
        switch node.tag.description {   // Tag.name is internal to Yams; description is its raw name
        case Tag.Name.int.rawValue:
            if let i = node.int { return .int(i) }
            if let d = node.float { return .float(d) }   // an integer too large for Int
            return .string(scalar.string)
        case Tag.Name.float.rawValue:
            if let d = node.float { return .float(d) }
            return .string(scalar.string)
        case Tag.Name.bool.rawValue:
            if let b = node.bool { return .bool(b) }
            return .string(scalar.string)
        case Tag.Name.null.rawValue:
            return .null
        default:
            return .string(scalar.string)
        }
    }

    /// A short description of a node for "expected X, found Y" messages.
    func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let s):
            switch resolve(node) {
            case .int, .float: return "the number \(s.string)"
            case .bool: return "the boolean `\(s.string)`"
            case .null: return "an empty value"
            default: return "the text `\(s.string)`"
            }
        }
    }

    /// The node as text when it is a string scalar (quoted or plain, not a number/bool/null).
    func text(_ node: Node) -> String? {
        if case .string(let s)? = resolve(node) { return s }
        return nil
    }

    /// The node's raw scalar text whatever its resolved type (a model named `2024` is still a name).
    func rawText(_ node: Node) -> String? {
        guard case .scalar(let s) = node else { return nil }
        if case .null? = resolve(node) { return nil }
        return s.string
    }

    /// A mapping's entries with string keys, in file order; duplicate or non-text keys are errors.
    func entries(of node: Node, what: String) throws -> YAMLMapping {
        guard case .mapping(let mapping) = node else {
            throw RecipeError.notAMapping(location(node), what: what, found: describe(node))
        }
        var result = YAMLMapping(location: location(node), entries: [])
        var seen: [String: SourceLocation] = [:]
        var merged: [Node] = []
        for (keyNode, valueNode) in mapping {
            if keyNode.tag.description == Tag.Name.merge.rawValue {
                // YAML merge key `<<: *anchor` (or a list of anchors), as PyYAML's safe loader honours it.
                switch valueNode {
                case .mapping: merged.append(valueNode)
                case .sequence(let sources) where sources.allSatisfy({ if case .mapping = $0 { return true } else { return false } }):
                    merged.append(contentsOf: sources)
                default:
                    throw RecipeError.wrongType(location(valueNode), key: "<<", expected: "a mapping (or list of mappings) to merge in",
                                                found: describe(valueNode))
                }
                continue
            }
            guard case .scalar(let keyScalar) = keyNode else {
                throw RecipeError.wrongType(location(keyNode), key: "(key)", expected: "a plain text key", found: describe(keyNode))
            }
            let key = keyScalar.string
            let keyLocation = location(keyNode)
            if let first = seen[key] {
                throw RecipeError.duplicateKey(keyLocation, key: key, firstAt: first)
            }
            seen[key] = keyLocation
            result.entries.append(YAMLMapping.Entry(key: key, keyLocation: keyLocation, value: valueNode))
        }
        // Keys written explicitly win over merged ones; among merged mappings the first listed wins (YAML merge semantics).
        for source in merged {
            for entry in try entries(of: source, what: "a merged mapping").entries where seen[entry.key] == nil {
                seen[entry.key] = entry.keyLocation
                result.entries.append(entry)
            }
        }
        return result
    }
}

/// A YAML mapping with its keys' locations kept.
struct YAMLMapping {
    struct Entry {
        let key: String
        let keyLocation: SourceLocation
        let value: Node
    }
    let location: SourceLocation
    var entries: [Entry]

    subscript(key: String) -> Entry? { entries.first { $0.key == key } }

    /// The entry for `key` unless it is absent or its value is empty/`null` (mergekit's optional fields treat both alike).
    func given(_ key: String) -> Entry? {
        guard let entry = self[key] else { return nil }
        if case .scalar = entry.value, entry.value.tag.description == Tag.Name.null.rawValue { return nil }
        return entry
    }

    /// Keys not in `known`, with the closest known key when one is a likely typo.
    func unknownEntries(known: [String]) -> [(entry: Entry, suggestion: String?)] {
        entries.filter { !known.contains($0.key) }.map { ($0, closestName(to: $0.key, among: known)) }
    }
}

/// The known name a mistyped one most likely meant: a case or separator variant, else the closest by edit distance
/// when that is at most 2 (keys, merge-method names, gate modes).
public func closestName(to key: String, among known: [String]) -> String? {
    let normalized = key.lowercased().replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: " ", with: "_")
    if let exact = known.first(where: { $0 == normalized }) { return exact }
    var best: (String, Int)?
    for candidate in known {
        let d = editDistance(normalized, candidate)
        if d <= 2, d < (best?.1 ?? Int.max) { best = (candidate, d) }
    }
    return best?.0
}

/// Levenshtein distance over characters (recipes' keys are short, so the quadratic table is fine).
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous = Array(0...y.count)
    var current = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in 1...y.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[y.count]
}
