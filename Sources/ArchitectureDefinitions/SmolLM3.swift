extension ArchitectureDefinition {
    /// SmolLM3 (`SmolLM3ForCausalLM`): the Llama block, tied, where some layers apply no RoPE at all (`no_rope_layers`:
    /// 1 = RoPE, 0 = none; by default every fourth layer, `no_rope_layer_interval`). `no_rope_layers` and `layer_types`
    /// describe positions: a frankenmerge keeps them by position and continues their pattern. GGUF files of it are
    /// not read yet. Checked against transformers 5.24 in Tests/References/smollm3.
    public static let smolLM3: ArchitectureDefinition = {
        let table = WeightTable(
            name: "smollm3", modelTypes: ["smollm3"], architectures: ["SmolLM3ForCausalLM"], preWeights: LlamaFamily.embed,
            layerWeights: LlamaFamily.attention + LlamaFamily.optionalBiases + LlamaFamily.denseMLP, postWeights: LlamaFamily.head,
            positionalConfigArrays: [PositionalConfigArray(key: "layer_types"),
                                     PositionalConfigArray(key: "no_rope_layers", periodKey: "no_rope_layer_interval", period: 4)])
        var config = ConfigConventions()
        config.ropeLayers = PositionalConfigArray(key: "no_rope_layers", periodKey: "no_rope_layer_interval", period: 4)
        return ArchitectureDefinition(modelType: "smollm3", className: "SmolLM3ForCausalLM", weightTables: [table],
                                      decoder: LlamaFamily.decoder, config: config,
                                      synth: SynthConventions(nullKeys: ["sliding_window"], numberKeys: ["no_rope_layer_interval": 4]))
    }()
}
