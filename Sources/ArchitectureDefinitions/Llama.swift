extension ArchitectureDefinition {
    /// Llama (`LlamaForCausalLM`; also SmolLM2): optional attention biases (`attention_bias`); llama.cpp permutes Q/K.
    public static let llama = LlamaFamily.dense(
        modelType: "llama", className: "LlamaForCausalLM", biases: LlamaFamily.optionalBiases,
        gguf: LlamaFamily.llamaGGUF, ggufExport: LlamaFamily.llamaGGUF,
        synth: SynthConventions())
}
