import Foundation

/// A recipe file of several YAML documents (mergekit-multi's format): every document but one has `name:` and is an
/// intermediate merge; the one without is the final output. A stage's models may name an earlier stage (also as
/// `NAME+ADAPTER`); stages are ordered so that each comes after the stages it reads.
public struct MultiStageRecipe: Sendable {
    public struct Stage: Sendable {
        /// nil for the final stage.
        public let name: String?
        public let nameLocation: SourceLocation?
        public let recipe: MergeRecipe
        /// Names of the stages this one reads, in order of first mention.
        public let dependencies: [String]
    }

    public let file: String
    /// In dependency order; the final stage is last.
    public let stages: [Stage]
    public var final: Stage { stages[stages.count - 1] }
    public var intermediates: ArraySlice<Stage> { stages.dropLast() }

    /// The documents of `text`, each padded with blank lines so that locations stay those of the whole file; documents
    /// holding nothing but comments are dropped.
    static func documents(_ text: String) -> [(text: String, firstLine: Int)] {
        var documents: [(String, Int)] = []
        var current: [Substring] = []
        var start = 1
        var line = 0
        func close() {
            let body = current.joined(separator: "\n")
            let meaningful = current.contains { l in
                let t = l.trimmingCharacters(in: .whitespaces)
                return !t.isEmpty && !t.hasPrefix("#") && t != "..."
            }
            if meaningful { documents.append((String(repeating: "\n", count: start - 1) + body, start)) }
            current = []
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            line += 1
            let l = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if l == "---" || l.hasPrefix("--- ") || l.hasPrefix("---\t") || l.hasPrefix("--- #") {
                close()
                start = line
                // Anything after the marker stays in place, in the new document's first line.
                current.append(Substring("   " + l.dropFirst(3)))
            } else {
                current.append(l)
            }
        }
        close()
        return documents
    }

    /// Whether `text` holds more than one document (then it is read as a multi-stage recipe).
    public static func isMultiStage(_ text: String) -> Bool { documents(text).count > 1 }

    public static func parse(file: String) throws -> MultiStageRecipe {
        try parse(text: RecipeParser.readText(file: file), file: file)
    }

    /// Parses every document as a merge recipe, checks the names (one unnamed final stage, no duplicates, names usable
    /// as folder names) and orders the stages; a cycle is reported at the reference that closes it.
    public static func parse(text: String, file: String) throws -> MultiStageRecipe {
        var parsed: [(name: String?, at: SourceLocation?, recipe: MergeRecipe)] = []
        for (document, _) in documents(text) {
            let recipe = try RecipeParser.parse(text: document, file: file)
            let reader = NodeReader(file: file)
            let top = try reader.entries(of: try reader.compose(document), what: "the recipe")
            let trimmed = document.drop { $0 == "\n" }
            var stageRecipe = recipe
            stageRecipe.text = String(trimmed)
            guard let entry = top.given("name") else {
                if let previous = parsed.first(where: { $0.name == nil }) {
                    throw RecipeError.invalidValue(top.location, key: "name",
                        reason: "this document has no `name:`, and neither has the one at line \(previous.recipe.mergeMethodLocation.line): "
                            + "only the final stage of a multi-stage recipe may leave out `name:`")
                }
                parsed.append((nil, nil, stageRecipe))
                continue
            }
            let at = reader.location(entry.value)
            guard let name = reader.text(entry.value)?.trimmingCharacters(in: .whitespaces), !name.isEmpty else {
                throw RecipeError.wrongType(at, key: "name", expected: "the stage's name", found: reader.describe(entry.value))
            }
            if name.contains("/") || name.contains("+") || name.contains("\\") || name.hasPrefix(".") || name.contains("\0") {
                throw RecipeError.invalidValue(at, key: "name",
                    reason: "`\(name)` cannot name a stage: it becomes a folder name and a model reference, so it may not contain `/`, "
                        + "`\\`, `+` or start with `.`")
            }
            if let first = parsed.first(where: { $0.name == name }) {
                throw RecipeError.invalidValue(at, key: "name",
                    reason: "the stage name `\(name)` is already used at line \(first.at!.line), column \(first.at!.column)")
            }
            parsed.append((name, at, stageRecipe))
        }
        guard let finalIndex = parsed.firstIndex(where: { $0.name == nil }) else {
            let last = parsed.last!
            throw RecipeError.invalidValue(last.at!, key: "name",
                reason: "every document has a `name:`; the final stage of a multi-stage recipe is the one document without it")
        }
        let names = Set(parsed.compactMap(\.name))
        func dependencies(_ recipe: MergeRecipe) -> [(String, SourceLocation)] {
            var out: [(String, SourceLocation)] = []
            for ref in recipe.referencedModels {
                let model = String(ref.raw.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false)[0])
                if names.contains(model), !out.contains(where: { $0.0 == model }) { out.append((model, ref.location)) }
            }
            return out
        }
        // Depth-first, in file order: each stage after the stages it reads.
        var order: [Int] = []
        var state = [Int](repeating: 0, count: parsed.count)   // 0 new, 1 on the path, 2 done
        func visit(_ i: Int, path: [String]) throws {
            if state[i] == 2 { return }
            state[i] = 1
            for (dep, at) in dependencies(parsed[i].recipe) {
                let j = parsed.firstIndex { $0.name == dep }!
                if state[j] == 1 {
                    let cycle = (path.drop { $0 != dep } + [dep]).joined(separator: " → ")
                    throw RecipeError.invalidValue(at, key: "model",
                        reason: "stage `\(dep)` is read here, but it depends on this stage: the stages form a cycle (\(cycle))")
                }
                try visit(j, path: path + [dep])
            }
            state[i] = 2
            order.append(i)
        }
        for i in parsed.indices where i != finalIndex { try visit(i, path: [parsed[i].name!]) }
        try visit(finalIndex, path: ["(final)"])
        let stages = order.map { i in
            Stage(name: parsed[i].name, nameLocation: parsed[i].at, recipe: parsed[i].recipe,
                  dependencies: dependencies(parsed[i].recipe).map(\.0))
        }
        return MultiStageRecipe(file: file, stages: stages)
    }
}
