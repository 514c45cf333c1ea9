import Foundation
import Recipes

/// The `README.md` written beside a merge: Hugging Face front matter, what was merged how, and the recipe verbatim.
public enum ModelCard {
    public static func render(plan: MergePlan, title: String) -> String {
        let refs = plan.models.map(\.reference.raw)
        // Hub ids among the inputs (org/name, not local paths) become `base_model` entries.
        let hubIDs = refs.filter(isHubID)
        var s = "---\n"
        if !hubIDs.isEmpty {
            s += "base_model:\n" + hubIDs.map { "- \($0)\n" }.joined()
        }
        s += "library_name: transformers\ntags:\n- merge\n- crucible\n- mergekit\n---\n\n"
        s += "# \(title)\n\n"
        s += "This model is a merge of pre-trained language models, built with Crucible from a mergekit-format recipe.\n\n"
        s += "## Merge details\n\n### Method\n\n"
        let link = plan.method.referenceURL.map { "[\(plan.method.prettyName)](\($0))" } ?? plan.method.prettyName
        let base = plan.recipe.baseModel.map(\.raw)
        if let base, plan.method.baseModel != .unused, !plan.method.baseIsEndpoint {
            s += "Merged with the \(link) merge method, using \(base) as the base.\n\n"
        } else {
            s += "Merged with the \(link) merge method.\n\n"
        }
        s += "### Models\n\n"
        for r in refs where r != base || plan.method.baseModel == .unused { s += "- \(r)\n" }
        s += "\n### Recipe\n\nThe following recipe produced this model:\n\n```yaml\n"
        s += plan.recipe.text.hasSuffix("\n") ? plan.recipe.text : plan.recipe.text + "\n"
        s += "```\n"
        return s
    }

    /// Whether a model reference is a hub id (`org/name`) rather than a local path: those become `base_model` entries.
    public static func isHubID(_ r: String) -> Bool {
        HubID(r) != nil && !FileManager.default.fileExists(atPath: r)
    }
}
