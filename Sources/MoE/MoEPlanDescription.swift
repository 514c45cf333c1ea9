import Foundation
import Host

extension MoEPlan {
    /// What `crucible moe --dry-run` prints: the output format and why, the experts, how the router rows are made,
    /// every output tensor with its sources, then bytes and the peak-memory estimate.
    public func describe() -> String {
        let c = context
        var s = "Plan: \(output.name) MoE of \(recipe.experts.count) expert(s)"
        if !recipe.sharedExperts.isEmpty { s += " + \(recipe.sharedExperts.count) shared" }
        s += ", \(recipe.expertsPerToken) per token, \(c.layerCount) layers, hidden \(c.hiddenSize), expert width \(c.intermediateSize), "
            + "\(c.outputDType.rawValue)\n"
        s += "  base: \(recipe.baseModel.raw) -> \(c.base.path) (\(c.base.architecture.name))\n"
        for (i, m) in c.experts.enumerated() {
            let e = recipe.experts[i]
            s += "  expert \(i): \(e.sourceModel.raw) -> \(models[m].path)"
            s += " [\(e.positivePrompts.count) positive, \(e.negativePrompts.count) negative prompt(s)"
            if let n = e.noiseScale { s += ", noise \(n)" }
            if let r = e.residualScale { s += ", residual scale \(r)" }
            s += "]\n"
        }
        for (i, m) in c.sharedExperts.enumerated() {
            s += "  shared expert \(i): \(recipe.sharedExperts[i].sourceModel.raw) -> \(models[m].path)\n"
        }
        s += "  router: gate_mode \(recipe.gateMode.rawValue): " + MoEModelCard.gateDescription(recipe.gateMode) + "\n"
        if let prompts {
            s += "  prompts: \(prompts.tokenCount) tokens" + (recipe.gateMode.runsModel ? " run through the base model" : "") + "\n"
        }
        if !recipe.gateMode.usesPrompts || recipe.experts.contains(where: { $0.noiseScale != nil }) { s += "  seed: \(seed)\n" }
        s += "\n"
        for t in tensors {
            s += "\(t.name) \(t.shape) \(t.dtype.rawValue) <- \(t.role)"
            let sources = t.pieces.compactMap { piece -> String? in
                switch piece {
                case let .tensor(model, name, _, noise, scale, _):
                    var text = "\(models[model].reference.raw):\(name)"
                    if let noise { text += " +noise \(noise)" }
                    if let scale { text += " ×\(scale)" }
                    return text
                case let .gate(layer, shared, _): return "router rows of layer \(layer)\(shared ? " (shared)" : "")"
                case .zeros: return "zeros"
                }
            }
            if sources.count == 1 { s += ": " + sources[0] + "\n" } else { s += "\n" + sources.map { "    \($0)\n" }.joined() }
        }
        s += "\nread:  \(formatBytes(estimate.bytesRead)) from \(models.count) model(s)\n"
        s += "write: \(formatBytes(estimate.bytesWritten)) in \(shards.files.count) shard(s): \(shards.files.joined(separator: ", "))\n"
        s += "peak memory (estimate): \(formatBytes(estimate.peakMemory))"
        if estimate.gateMemory > 0 { s += " (router rows \(formatBytes(estimate.gateMemory)), tensors "
            + "\(formatBytes(estimate.writeMemory)))" }
        s += ", \(threads) thread(s)\n"
        for w in warnings { s += "warning: \(w)\n" }
        return s
    }
}
