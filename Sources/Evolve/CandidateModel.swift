import Architectures
import Foundation
import Inference
import Planner
import Recipes

/// A merged candidate in memory, ready for the engine: the recipe text is parsed and planned (headers only), its tensors
/// are merged into buffers kept from candidate to candidate, and one `LanguageModel` reads them. Nothing is written to
/// disk; the parents are read through their memory maps.
public final class CandidateModel {
    public let planner: PlannerOptions
    public private(set) var memory: InMemoryCheckpoint?
    public private(set) var model: LanguageModel?
    public private(set) var cache: KVCache?
    public private(set) var lastPlan: MergePlan?
    let contextLength: Int

    public init(planner: PlannerOptions, contextLength: Int) {
        self.planner = planner
        self.contextLength = contextLength
    }

    /// Plans `recipeText` (labelled `file` in messages) and merges it into memory. Returns the merge's warnings.
    @discardableResult
    public func load(recipeText: String, file: String) throws -> [String] {
        let recipe = try RecipeParser.parse(text: recipeText, file: file)
        let plan = try MergePlanner.plan(recipe, options: planner)
        if memory == nil || !memory!.fits(plan) || model == nil {
            // A new layout (the first candidate): new buffers, and an engine checked against them.
            model = nil
            memory = nil
            let m = InMemoryCheckpoint(layoutOf: plan)
            memory = m
            let config = try ModelConfig(json: plan.outputConfig, file: "\(file) (config.json of the merge)")
            let engine = try LanguageModel(source: m, config: config, threads: planner.threads)
            model = engine
            cache = engine.makeCache(capacity: contextLength)
        }
        lastPlan = plan
        return try PlanExecutor.execute(plan, into: memory!)
    }

    /// The path of the model whose tokenizer the merge uses.
    public var tokenizerDonorPath: String? {
        guard let plan = lastPlan else { return nil }
        return plan.models[plan.tokenizerDonor].path
    }
}
