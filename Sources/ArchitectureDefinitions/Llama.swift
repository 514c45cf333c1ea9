extension ArchitectureDefinition {
    /// Llama (`LlamaForCausalLM`; also SmolLM2): optional attention biases (`attention_bias`).
    public static let llama = ArchitectureDefinition(
        modelType: "llama", className: "LlamaForCausalLM",
        weightTables: [LlamaFamily.denseTable("llama", modelType: "llama", className: "LlamaForCausalLM",
                                               biases: LlamaFamily.optionalBiases)],
        decoder: LlamaFamily.decoder,
        gguf: GGUFConventions(architecture: "llama", permutesQK: true, attentionBiasFromTensors: true, names: LlamaFamily.ggufNames),
        synth: SynthConventions())
}
