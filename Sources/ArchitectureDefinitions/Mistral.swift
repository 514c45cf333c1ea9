extension ArchitectureDefinition {
    /// Mistral (`MistralForCausalLM`): Llama with a sliding attention window (`sliding_window`, null for none).
    public static let mistral = ArchitectureDefinition(
        modelType: "mistral", className: "MistralForCausalLM",
        weightTables: [LlamaFamily.denseTable("mistral", modelType: "mistral", className: "MistralForCausalLM",
                                               biases: LlamaFamily.optionalBiases)],
        decoder: LlamaFamily.decoder,
        gguf: GGUFConventions(architecture: "mistral", attentionBiasFromTensors: true, names: LlamaFamily.ggufNames),
        synth: SynthConventions(nullKeys: ["sliding_window"]))
}
