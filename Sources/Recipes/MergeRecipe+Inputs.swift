extension MergeRecipe {
    /// Every model the recipe names, each once, in order of first appearance: `base_model`, then `models:` entries or
    /// slice sources (and slice base models). Deterministic where mergekit iterates a hash set (docs/recipes.md, "Quirks handled").
    public var referencedModels: [ModelReference] {
        var result: [ModelReference] = []
        func add(_ ref: ModelReference?) {
            if let ref, !result.contains(ref) { result.append(ref) }
        }
        add(baseModel)
        for model in models ?? [] { add(model.model) }
        for slice in slices ?? [] {
            add(slice.baseModel)
            for source in slice.sources { add(source.model) }
        }
        if case .model(let ref)? = tokenizerSource { add(ref) }
        return result
    }

    /// The recipe as slices: a `models:` recipe is one slice with one source per model spanning the whole depth
    /// (`layerRange` nil) whose parameters are the model's, exactly as mergekit rewrites it; `slices:` are returned as written.
    public var normalizedSlices: [Slice] {
        if let slices { return slices }
        let location = keyLocations["models"] ?? mergeMethodLocation
        let sources = (models ?? []).map {
            SliceSource(model: $0.model, layerRange: nil, layerRangeLocation: nil, parameters: $0.parameters)
        }
        return [Slice(sources: sources, parameters: [:], baseModel: nil, location: location)]
    }
}
