import Checkpoints
import Foundation
import Host
import Recipes

extension MergePlan {
    /// The human-readable plan `--dry-run` prints: every output tensor with its sources, method and resolved
    /// parameters, then the bytes to read and write and the estimated peak memory.
    public func describe() -> String {
        var s = "Plan: \(method.name) merge of \(models.count) model(s) into \(tasks.count) tensors, \(shardFiles.count) shard(s)\n"
        for (i, m) in models.enumerated() {
            let lora = m.adapter.map { " with the LoRA adapter \($0)" } ?? ""
            s += "  model \(i): \(m.reference.raw) -> \(m.path)\(lora) (\(m.architecture.name), \(m.layerCount) layers)\n"
        }
        if isRandom { s += "  seed: \(seed)\n" }
        s += "\n"
        for t in tasks {
            let op = t.operation == .copy ? "copy" : method.name
            s += "\(t.outputName) \(t.shape) \(t.outputDType.rawValue) <- \(op)"
            if let layer = t.layer { s += " (layer \(layer), position \(format(t.t)))" }
            if !t.global.isEmpty { s += " " + params(t.global) }
            s += "\n"
            for (k, inp) in t.inputs.enumerated() {
                let base = k == t.baseIndex ? " [base]" : ""
                let lora = (models[inp.model].source as? LoRASource)?.adapts(inp.tensorName) == true ? " +LoRA" : ""
                s += "    \(models[inp.model].reference.raw):\(inp.tensorName) \(inp.info.storage)\(lora)\(base)"
                if !inp.parameters.isEmpty { s += " " + params(inp.parameters) }
                s += "\n"
            }
        }
        if let vocabulary { s += "\n" + describe(vocabulary) }
        s += "\n" + summary()
        return s
    }

    /// The vocabulary plan: size, tokens each parent added, forced tokens, and per vocabulary-indexed tensor every row
    /// filled by a default with the rule that chose it.
    func describe(_ v: VocabularyPlan) -> String {
        let source: String
        switch recipe.tokenizerSource {
        case .union?: source = "union"
        case .base?: source = "base"
        case let .model(ref)?: source = ref.raw
        case nil: source = "-"
        }
        var s = "Vocabulary (tokenizer source: \(source)): \(v.tokenCount) tokens, \(v.rowCount) embedding rows "
            + "(config vocab_size \(v.rowCount))"
        s += v.rowCount > v.tokenCount ? "; rows \(v.tokenCount)..<\(v.rowCount) are padding (each input's mean token row)\n" : "\n"
        let quote = { (t: String) in "`\(t)`" }
        var byModel: [Int?: [VocabularyPlan.AddedToken]] = [:]
        for a in v.added { byModel[a.model, default: []].append(a) }
        for m in models.indices {
            let added = byModel[m] ?? []
            let list = added.isEmpty ? "none" : added.map { "\(quote($0.token)) (\($0.id))" }.joined(separator: ", ")
            s += "  tokens added from \(models[m].reference.raw): \(list)\n"
        }
        if let extra = byModel[nil] {
            s += "  tokens added by `tokens:`: " + extra.map { "\(quote($0.token)) (\($0.id))" }.joined(separator: ", ") + "\n"
        }
        let forced = v.overrides.filter(\.setting.force)
        if !forced.isEmpty { s += "  forced: " + forced.map { "\(quote($0.setting.token)) (\($0.id))" }.joined(separator: ", ") + "\n" }
        let shown = 64
        for t in tasks {
            guard let tv = t.vocabulary else { continue }
            s += "  \(t.outputName): \(tv.defaults.count) row(s) filled by default\n"
            for d in tv.defaults.prefix(shown) {
                let lacking = t.inputs.indices.filter { tv.rowMaps[$0][d.id] < 0 }.map { models[t.inputs[$0].model].reference.raw }
                s += "    row \(d.id) \(quote(v.tokenizer.tokens[d.id])): \(d.rule); used by " + lacking.joined(separator: ", ") + "\n"
            }
            if tv.defaults.count > shown { s += "    … and \(tv.defaults.count - shown) more\n" }
        }
        return s
    }

    var isRandom: Bool { method.isRandom }

    /// Totals: bytes to read and write and the peak memory estimate.
    public func summary() -> String {
        var s = "read:  \(formatBytes(estimate.bytesRead)) from \(models.count) parent(s)\n"
        s += "write: \(formatBytes(estimate.bytesWritten)) in \(shardFiles.count) shard(s): \(shardFiles.joined(separator: ", "))\n"
        s += "peak memory (estimate): \(formatBytes(estimate.peakMemory)) (largest tensor task \(formatBytes(estimate.largestTaskBytes)), "
            + "budget \(formatBytes(estimate.memoryBudget)), \(threads) thread(s))\n"
        for w in warnings { s += "warning: \(w)\n" }
        return s
    }

    private func params(_ p: [String: ParameterValue]) -> String {
        "{" + p.keys.sorted().map { "\($0): \(p[$0]!)" }.joined(separator: ", ") + "}"
    }

    private func format(_ x: Double) -> String { String(format: "%.4g", x) }
}
