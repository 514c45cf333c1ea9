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
        s += "\n" + summary()
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
