extension LlamaFamily {
    static let qwen2GGUF = GGUFConventions(architecture: "qwen2", defaultRopeTheta: 1_000_000, names: ggufNames)
}

extension ArchitectureDefinition {
    /// Qwen2 (`Qwen2ForCausalLM`): Llama with q/k/v biases always present; RoPE base 1e6 by default in GGUF files.
    public static let qwen2 = LlamaFamily.dense(
        modelType: "qwen2", className: "Qwen2ForCausalLM", biases: LlamaFamily.requiredQKVBiases,
        config: ConfigConventions(attentionBias: true),
        gguf: LlamaFamily.qwen2GGUF, ggufExport: LlamaFamily.qwen2GGUF,
        synth: SynthConventions(),
        transformersTokenizer: "Qwen2Tokenizer")
}
