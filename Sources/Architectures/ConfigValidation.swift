import Checkpoints

/// Checks on the numbers of a model's config, from a stranger like everything else: each is finite and in range,
/// and the sizes agree with the tensors the checkpoint actually holds.
///
/// `ModelConfig` (the engine's view) calls `checkNumbers` when it parses a config, so a config with
/// `rms_norm_eps: NaN` is refused instead of producing a `nan` perplexity. The planner calls `checkShapes` for every
/// parent matched to an architecture table, so a merge never writes a config its own engine would refuse.
public enum ConfigValidation {
    /// Largest accepted layer, head and expert counts.
    public static let maxCount = 1 << 16
    /// Largest accepted width or vocabulary size.
    public static let maxWidth = 1 << 24

    /// Range checks on a parsed config; `file` names it in errors.
    static func checkNumbers(_ c: ModelConfig, file: String) throws {
        func fail(_ reason: String) -> CheckpointError { .invalidConfig(file: file, reason: reason) }
        guard c.rmsNormEps.isFinite, c.rmsNormEps > 0, c.rmsNormEps < 1 else {
            throw fail("rms_norm_eps must be a finite number in (0, 1), found \(c.rmsNormEps)")
        }
        guard c.ropeTheta.isFinite else { throw fail("rope_theta must be finite, found \(c.ropeTheta)") }
        switch c.ropeScaling {
        case .none, .frequencyDivisors:
            break
        case let .linear(factor):
            guard factor.isFinite, factor > 0 else { throw fail("rope_scaling factor must be a finite positive number, found \(factor)") }
        case let .llama3(factor, low, high, original):
            for (name, v) in [("factor", factor), ("low_freq_factor", low), ("high_freq_factor", high)] where !(v.isFinite && v > 0) {
                throw fail("rope_scaling \(name) must be a finite positive number, found \(v)")
            }
            guard original > 0 else { throw fail("rope_scaling original_max_position_embeddings must be positive, found \(original)") }
        case let .longRope(short, long, original, attention):
            for v in short + long + [attention] where !(v.isFinite && v > 0) {
                throw fail("longrope factors and attention_factor must be finite positive numbers, found \(v)")
            }
            guard original > 0 else { throw fail("longrope original_max_position_embeddings must be positive, found \(original)") }
        }
        for (key, value, limit) in [("num_hidden_layers", c.layerCount, maxCount), ("num_attention_heads", c.headCount, maxCount),
                                    ("num_key_value_heads", c.kvHeadCount, maxCount), ("hidden_size", c.hiddenSize, maxWidth),
                                    ("intermediate_size", c.intermediateSize, maxWidth), ("vocab_size", c.vocabSize, maxWidth),
                                    ("head_dim", c.headDim, maxWidth)] where value > limit {
            throw fail("'\(key)' is \(value), more than the \(limit) accepted")
        }
        if let p = c.maxPositionEmbeddings, p <= 0 { throw fail("'max_position_embeddings' must be positive, found \(p)") }
        if let e = c.experts, e.count > maxCount { throw fail("the expert count \(e.count) is more than the \(maxCount) accepted") }
    }

    /// Checks a config's sizes (read leniently from the JSON, so settings the engine does not run, such as other RoPE
    /// types, do not matter) against the tensors of `source`: positive head counts, the embedding's
    /// `[vocab_size, hidden_size]`, the attention projections' `heads × head_dim` rows, the MLP width and the final norm.
    /// Throws `CheckpointError.invalidConfig` naming `file` and both sides of the contradiction.
    public static func checkShapes(config: JSONObject, file: String, source: any TensorSource) throws {
        func fail(_ reason: String) -> CheckpointError { .invalidConfig(file: file, reason: reason) }
        func int(_ key: String) throws -> Int? {
            guard let v = config[key], !v.isNull else { return nil }
            guard let n = v.intValue else { throw fail("'\(key)' must be an integer, found \(v.serialized(indent: 0).prefix(60))") }
            guard n > 0 else { throw fail("'\(key)' must be positive, found \(n)") }
            guard n <= (key.contains("layers") || key.contains("heads") ? maxCount : maxWidth) else {
                throw fail("'\(key)' is \(n), beyond what any model has")
            }
            return n
        }
        func real(_ key: String) throws {
            guard let v = config[key], !v.isNull else { return }
            guard let d = v.doubleValue, d.isFinite, d > 0 else {
                throw fail("'\(key)' must be a finite positive number, found \(v.serialized(indent: 0).prefix(60))")
            }
        }
        try real("rms_norm_eps")
        try real("rope_theta")
        let hidden = try int("hidden_size")
        let vocab = try int("vocab_size")
        let heads = try int("num_attention_heads")
        let kvHeads = try int("num_key_value_heads") ?? heads
        let width = try int("intermediate_size")
        _ = try int("num_hidden_layers")
        let headDim = try int("head_dim") ?? {
            guard let hidden, let heads, hidden % heads == 0 else { return nil }
            return hidden / heads
        }()

        func expect(_ tensor: String, _ expected: [Int?], what: String) throws {
            guard let info = source.info(tensor), info.shape.count == expected.count else { return }
            for (found, wanted) in zip(info.shape, expected) {
                if let wanted, wanted != found {
                    let shape = "[" + expected.map { $0.map(String.init) ?? "_" }.joined(separator: ", ") + "]"
                    throw fail("\(what) says '\(tensor)' should have shape \(shape), but it has \(info.shape)")
                }
            }
        }
        try expect("model.embed_tokens.weight", [vocab, hidden],
                   what: "vocab_size \(vocab.map(String.init) ?? "?") and hidden_size \(hidden.map(String.init) ?? "?")")
        try expect("lm_head.weight", [vocab, hidden], what: "vocab_size and hidden_size")
        try expect("model.norm.weight", [hidden], what: "hidden_size")
        let q = heads.flatMap { h in headDim.map { h * $0 } }
        let kv = kvHeads.flatMap { h in headDim.map { h * $0 } }
        try expect("model.layers.0.self_attn.q_proj.weight", [q, hidden], what: "num_attention_heads × head_dim and hidden_size")
        try expect("model.layers.0.self_attn.k_proj.weight", [kv, hidden], what: "num_key_value_heads × head_dim and hidden_size")
        try expect("model.layers.0.self_attn.v_proj.weight", [kv, hidden], what: "num_key_value_heads × head_dim and hidden_size")
        try expect("model.layers.0.mlp.gate_proj.weight", [width, hidden], what: "intermediate_size and hidden_size")
    }
}
