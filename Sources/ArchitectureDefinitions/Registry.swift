extension ArchitectureDefinition {
    /// Every architecture Crucible knows, one line each. Order matters where two serve the same input: the first
    /// match wins (weight tables in this order; GGUF files by `general.architecture`).
    public static let all: [ArchitectureDefinition] = [
        .llama,
        .mistral,
        .qwen2,
        .mixtral,
        .qwen2MoE,
        .qwen3MoE,
    ]

    /// The definition for a `config.json` `model_type`.
    public static func forModelType(_ modelType: String) -> ArchitectureDefinition? {
        all.first { $0.modelType == modelType }
    }

    /// The definition serving GGUF files of `general.architecture` `architecture`: among several, the one declared for
    /// files with experts (or without).
    public static func forGGUF(architecture: String, hasExperts: Bool) -> ArchitectureDefinition? {
        let candidates = all.filter { $0.gguf?.architecture == architecture }
        return candidates.first { $0.gguf?.withExperts == hasExperts } ?? candidates.first
    }

    /// The GGUF architectures with a Hugging Face mapping, for messages (`llama, mistral, qwen2, llama with experts as mixtral`).
    public static var ggufArchitectures: [String] {
        all.compactMap { d in d.gguf.map { $0.withExperts ? "\($0.architecture) with experts as \(d.modelType)" : $0.architecture } }
    }
}
