import Checkpoints
import Recipes

/// How one vocabulary-indexed output tensor (embedding, lm_head) is re-indexed to the output vocabulary before the merge
/// method sees it: per input a row gather, plus default rows for tokens an input lacks (or that are forced) and
/// padding rows, exactly as mergekit 0.1.5's `PermutedVocabulary` fills them (docs/tokenizer-merging.md).
public struct TaskVocabulary: Sendable {
    /// Where a default row comes from.
    public enum Fill: Sendable, Equatable {
        case zero
        /// Row `row` of input `input`'s stored tensor.
        case row(input: Int, row: Int)
        /// The mean of these rows of these inputs, added in this order.
        case mean(inputs: [Int], rows: [Int])
    }

    /// The default row of one output token: used by every input that lacks the token, or by all when it is forced.
    public struct DefaultRow: Sendable {
        public let id: Int
        public let fill: Fill
        /// Which rule chose it, for `--dry-run`.
        public let rule: String
    }

    /// Output rows that are tokens; rows from here to `rowCount` are padding (each input's mean token row).
    public let tokenCount: Int
    public let rowCount: Int
    public let defaults: [DefaultRow]
    /// Per input: output row → row of its stored tensor, or -1 for the token's default row.
    public let rowMaps: [[Int32]]
    /// Per input: the tensor as stored (before re-indexing).
    public let stored: [TensorInfo]

    /// Bytes the default rows and the padding rows take while the task runs.
    var scratchBytes: Int {
        let width = stored.first?.rowLength ?? 0
        return (defaults.count + (rowCount > tokenCount ? stored.count : 0)) * width * 4 + rowMaps.count * tokenCount * 4
    }
}

extension VocabularyPlan {
    /// The alignment of one vocabulary-indexed tensor whose inputs are `inputs` (model index and stored tensor), with the
    /// rule mergekit applies to each token some input lacks: a `tokens:` entry's source; else the only parent that has
    /// it; zeros when none has it; the base's row when the base is an input and has it; else the mean of those that have it.
    func alignment(tensor: String, inputs: [(model: Int, info: TensorInfo)], models: [PlannedModel],
                   warnings: inout [String]) throws -> TaskVocabulary {
        for (m, info) in inputs where info.shape.count < 2 || Array(info.shape.dropFirst()) != Array(inputs[0].info.shape.dropFirst()) {
            throw PlanError.tensor(tensor, "\(models[m].reference) stores it as \(info.shape) but \(models[inputs[0].model].reference) as "
                + "\(inputs[0].info.shape): only the vocabulary (first) axis may differ")
        }
        // Each model counts once (its first input), as mergekit keys the gathered tensors by model.
        var firstInput: [Int: Int] = [:]
        for (k, inp) in inputs.enumerated() where firstInput[inp.model] == nil { firstInput[inp.model] = k }
        let present = inputs.indices.filter { firstInput[inputs[$0].model] == $0 }
        for k in present {
            let rows = inputs[k].info.rowCount
            if let bad = permutations[inputs[k].model].first(where: { Int($0) >= rows }) {
                throw PlanError.tensor(tensor, "\(models[inputs[k].model].reference) has \(rows) rows but its tokenizer and config "
                    + "(vocab_size) give a token id \(bad)")
            }
        }
        let name = { (k: Int) in models[inputs[k].model].reference.raw }
        var defaults: [TaskVocabulary.DefaultRow] = []
        var forced = Set<Int>()
        for id in 0..<tokenCount {
            let entry = override(forID: id)
            if entry?.setting.force == true { forced.insert(id) }
            let having = present.filter { permutations[inputs[$0].model][id] >= 0 }
            if entry?.setting.force != true && having.count == present.count { continue }
            let token = tokenizer.tokens[id]
            if let entry {
                defaults.append(try explicitDefault(entry, tensor: tensor, inputs: inputs, firstInput: firstInput, models: models))
                continue
            }
            let row = { (k: Int) in Int(self.permutations[inputs[k].model][id]) }
            if having.count == 1 {
                defaults.append(.init(id: id, fill: .row(input: having[0], row: row(having[0])), rule: "only \(name(having[0])) has it"))
            } else if having.isEmpty {
                defaults.append(.init(id: id, fill: .zero, rule: "no parent has it: zeros"))
                warnings.append("token `\(token)` (id \(id)) is in no parent of '\(tensor)'; its row is zeros (as in mergekit)")
            } else if let b = base, let k = firstInput[b], having.contains(k) {
                defaults.append(.init(id: id, fill: .row(input: k, row: row(k)), rule: "the base \(name(k))'s row"))
            } else {
                defaults.append(.init(id: id, fill: .mean(inputs: having, rows: having.map(row)),
                                      rule: "mean of " + having.map(name).joined(separator: ", ")))
            }
        }
        let rowMaps = inputs.map { inp in
            permutations[inp.model].enumerated().map { forced.contains($0.offset) ? -1 : $0.element }
        }
        return TaskVocabulary(tokenCount: tokenCount, rowCount: rowCount, defaults: defaults, rowMaps: rowMaps, stored: inputs.map(\.info))
    }

    /// The default row a `tokens:` entry gives; its model must be an input of this tensor.
    private func explicitDefault(_ entry: Override, tensor: String, inputs: [(model: Int, info: TensorInfo)], firstInput: [Int: Int],
                                 models: [PlannedModel]) throws -> TaskVocabulary.DefaultRow {
        let s = entry.setting
        let force = s.force ? " (forced)" : ""
        guard let source = s.source else {
            throw PlanError.recipe(s.location,
                                   "the `tokenizer.tokens` entry `\(s.token)` has no `source`, but '\(tensor)' needs a row for it")
        }
        if case .zero = source { return .init(id: entry.id, fill: .zero, rule: "tokens: {kind: zero}\(force)") }
        guard let m = entry.model, let k = firstInput[m], let row = entry.storedRow else {
            throw PlanError.recipe(s.location, "the `tokenizer.tokens` entry `\(s.token)` takes its row from \(source.model?.raw ?? "?"), "
                + "which is not an input of '\(tensor)'")
        }
        guard row < inputs[k].info.rowCount else {
            throw PlanError.recipe(s.location, "the `tokenizer.tokens` entry `\(s.token)`: token id \(row) is beyond the "
                + "\(inputs[k].info.rowCount) rows of \(models[m].reference)'s '\(inputs[k].info.name)'")
        }
        let what: String
        switch source {
        case let .modelToken(_, t): what = "the row of `\(t)` in \(models[m].reference.raw)"
        case let .modelTokenID(_, i): what = "row \(i) of \(models[m].reference.raw)"
        default: what = "\(models[m].reference.raw)'s row"
        }
        return .init(id: entry.id, fill: .row(input: k, row: row), rule: "tokens: \(what)\(force)")
    }
}
