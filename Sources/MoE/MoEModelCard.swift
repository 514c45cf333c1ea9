import Foundation
import Planner
import Recipes

/// The `README.md` written beside a MoE: front matter, what each expert is for, how the router was made, and the
/// recipe verbatim (mergekit-moe writes no card; a model without one is hard to use or reproduce).
enum MoEModelCard {
    static func render(_ plan: MoEPlan, title: String) -> String {
        let recipe = plan.recipe
        let hubIDs = plan.models.map(\.reference.raw).filter(ModelCard.isHubID)
        var s = "---\n"
        if !hubIDs.isEmpty { s += "base_model:\n" + hubIDs.map { "- \($0)\n" }.joined() }
        s += "library_name: transformers\ntags:\n- moe\n- frankenmoe\n- merge\n- crucible\n- mergekit\n---\n\n"
        s += "# \(title)\n\n"
        s += "A mixture of experts (\(plan.output.name) architecture) assembled with Crucible from a mergekit-moe recipe: "
        s += "attention, norms and embeddings come from \(recipe.baseModel.raw); each expert's MLP comes from the model listed below. "
        s += "\(recipe.expertsPerToken) of \(recipe.experts.count) experts are active per token.\n\n"
        s += "## Experts\n\n| # | source | positive prompts | negative prompts |\n|---|---|---|---|\n"
        func row(_ label: String, _ e: MoEExpert) -> String {
            func list(_ p: [String]) -> String {
                let shown = p.prefix(3).map { prompt in
                    "`" + prompt.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") + "`"
                }
                return p.isEmpty ? "" : shown.joined(separator: ", ") + (p.count > 3 ? " (+\(p.count - 3))" : "")
            }
            return "| \(label) | \(e.sourceModel.raw) | \(list(e.positivePrompts)) | \(list(e.negativePrompts)) |\n"
        }
        for (i, e) in recipe.experts.enumerated() { s += row("\(i)", e) }
        for (i, e) in recipe.sharedExperts.enumerated() { s += row("shared \(i)", e) }
        s += "\n## Router\n\n`gate_mode: \(recipe.gateMode.rawValue)`: " + gateDescription(recipe.gateMode)
        s += " The router has not been trained.\n\n## Recipe\n\n```yaml\n"
        s += recipe.text.hasSuffix("\n") ? recipe.text : recipe.text + "\n"
        s += "```\n"
        return s
    }

    static func gateDescription(_ mode: MoEGateMode) -> String {
        switch mode {
        case .hidden: return "each expert's router row is the base model's hidden state entering each layer at the last token of its "
            + "prompts, averaged over the prompts and normalised."
        case .hiddenAverage: return "each expert's router row is the base model's hidden state entering each layer, averaged over all "
            + "positions of its (left-padded) prompts, then over the prompts, and normalised."
        case .cheapEmbed: return "each expert's router row is the normalised sum of its prompts' token embeddings, the same for every "
            + "layer."
        case .random: return "router rows are drawn from a standard normal distribution."
        case .uniformRandom: return "router rows are drawn uniformly from ±1/√hidden."
        case .routerInput: return "each expert's router row is what the router itself reads (the post-attention-norm hidden state of each "
            + "layer) at the last token of its prompts, averaged over the prompts and normalised."
        }
    }
}
