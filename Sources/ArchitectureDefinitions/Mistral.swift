extension ArchitectureDefinition {
    /// Mistral (`MistralForCausalLM`): Llama with a sliding attention window (`sliding_window`, null for none).
    public static let mistral = LlamaFamily.dense(
        modelType: "mistral", className: "MistralForCausalLM", biases: LlamaFamily.optionalBiases,
        gguf: GGUFConventions(architecture: "mistral", attentionBiasFromTensors: true, names: LlamaFamily.ggufNames),
        ggufExport: LlamaFamily.llamaGGUF,
        synth: SynthConventions(nullKeys: ["sliding_window"]))
}
