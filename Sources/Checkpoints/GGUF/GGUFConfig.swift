import ArchitectureDefinitions
import Foundation

extension GGUFFile {
    /// The `config.json` a Hugging Face checkpoint of this model would carry, derived from the metadata
    /// (`<arch>.embedding_length` → `hidden_size` and so on; see docs/formats.md for the whole table).
    ///
    /// Architectures: those whose `ArchitectureDefinition` has GGUF conventions (`llama`, Mixtral when
    /// `llama.expert_count` > 0, `mistral`, `qwen2`). The result uses the
    /// transformers 4 spelling (`rope_theta`, `rope_scaling`, `torch_dtype`); `torch_dtype` is float32 because
    /// tensors are served dequantized. Throws `CheckpointError.invalidConfig` naming the file and the missing key.
    public func hfConfig() throws -> JSONObject {
        guard let arch = architecture else {
            throw CheckpointError.invalidConfig(file: path, reason: "general.architecture is missing")
        }
        func value(_ key: String) -> GGUFValue? { metadata["\(arch).\(key)"] }
        func int(_ key: String) throws -> Int? {
            guard let v = value(key) else { return nil }
            if let n = v.intValue { return n }
            // Some converters store per-layer head counts as arrays; a uniform array is one number.
            if let a = v.intArray, let first = a.first, a.allSatisfy({ $0 == first }) { return first }
            throw CheckpointError.invalidConfig(file: path, reason: "\(arch).\(key) is \(v.typeName), expected an integer")
        }
        func required(_ key: String) throws -> Int {
            guard let n = try int(key) else {
                throw CheckpointError.invalidConfig(file: path, reason: "\(arch).\(key) is missing")
            }
            guard n > 0 else { throw CheckpointError.invalidConfig(file: path, reason: "\(arch).\(key) is \(n), expected > 0") }
            return n
        }

        let experts = try int("expert_count") ?? 0
        guard let definition = ArchitectureDefinition.forGGUF(architecture: arch, hasExperts: experts > 0),
              let gguf = definition.gguf else {
            let supported = ArchitectureDefinition.ggufArchitectures.joined(separator: ", ")
            throw CheckpointError.invalidConfig(file: path,
                reason: "architecture '\(arch)' has no Hugging Face mapping (supported: \(supported))")
        }

        let hidden = try required("embedding_length")
        let heads = try required("attention.head_count")
        let kvHeads = try int("attention.head_count_kv") ?? heads
        var c = JSONObject()
        c["architectures"] = .array([.string(definition.className)])
        c["model_type"] = .string(definition.modelType)
        c["hidden_size"] = .int(Int64(hidden))
        c["intermediate_size"] = .int(Int64(try required("feed_forward_length")))
        c["num_hidden_layers"] = .int(Int64(try required("block_count")))
        c["num_attention_heads"] = .int(Int64(heads))
        c["num_key_value_heads"] = .int(Int64(kvHeads))
        c["head_dim"] = .int(Int64(try int("attention.key_length") ?? hidden / heads))
        c["hidden_act"] = .string("silu")
        let eps = value("attention.layer_norm_rms_epsilon")?.doubleValue ?? 1e-5
        c["rms_norm_eps"] = .double(roundedFromFloat(eps))
        c["rope_theta"] = .double(roundedFromFloat(value("rope.freq_base")?.doubleValue ?? gguf.defaultRopeTheta))
        if let scaling = try ropeScaling(arch) { c["rope_scaling"] = .object(scaling) }
        if let ctx = try int("context_length") { c["max_position_embeddings"] = .int(Int64(ctx)) }
        if let window = try int("attention.sliding_window"), window > 0 { c["sliding_window"] = .int(Int64(window)) }

        let embedding = rawTensor("token_embd.weight")
        if let rows = embedding?.dims.last, embedding?.dims.count == 2 {
            c["vocab_size"] = .int(Int64(rows))
        } else if let tokens = metadata["tokenizer.ggml.tokens"]?.arrayValue {
            c["vocab_size"] = .int(Int64(tokens.count))
        }
        c["tie_word_embeddings"] = .bool(rawTensor("output.weight") == nil)
        if gguf.attentionBiasFromTensors {
            let hasBias = rawTensors.contains { $0.name.hasSuffix(".attn_q.bias") }
            c["attention_bias"] = .bool(hasBias)
        }
        if experts > 0 {
            c["num_local_experts"] = .int(Int64(experts))
            c["num_experts_per_tok"] = .int(Int64(try int("expert_used_count") ?? 2))
        }
        for (gguf, hf) in [("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"), ("padding_token_id", "pad_token_id")] {
            if let id = metadata["tokenizer.ggml.\(gguf)"]?.intValue { c[hf] = .int(Int64(id)) }
        }
        c["torch_dtype"] = .string("float32")
        return c
    }

    /// `rope_scaling` from `<arch>.rope.scaling.*` (linear and YaRN; `none` gives nil).
    private func ropeScaling(_ arch: String) throws -> JSONObject? {
        guard let type = metadata["\(arch).rope.scaling.type"]?.stringValue, type != "none" else { return nil }
        guard let factor = metadata["\(arch).rope.scaling.factor"]?.doubleValue else {
            throw CheckpointError.invalidConfig(file: path,
                                                reason: "\(arch).rope.scaling.type is '\(type)' but rope.scaling.factor is missing")
        }
        var s = JSONObject()
        s["rope_type"] = .string(type)
        s["factor"] = .double(roundedFromFloat(factor))
        if let original = metadata["\(arch).rope.scaling.original_context_length"]?.intValue {
            s["original_max_position_embeddings"] = .int(Int64(original))
        }
        return s
    }
}

/// GGUF stores most reals as float32; print them as the shortest decimal that reads back as the same
/// float32 (1e-5, not 9.999999747378752e-06), which is what the Hugging Face config held.
private func roundedFromFloat(_ d: Double) -> Double {
    let f = Float(d)
    guard Double(f) == d, f.isFinite else { return d }
    return Double("\(f)") ?? d
}
