import Foundation

/// Everything Crucible knows about one architecture family, in one value: the merge planner's weight tables, the
/// engine's weight names, the `config.json` conventions the config reader applies, llama.cpp's GGUF names and
/// metadata, and what `crucible synth` writes.
///
/// Each architecture is one file in this folder declaring a `static let` on this type, plus one line in
/// `ArchitectureDefinition.all` (`Registry.swift`). The consumers look the definition up (by `model_type`, by
/// `architectures[0]`, or by GGUF `general.architecture`) and never spell an architecture's name themselves. The types
/// here are built with their memberwise initializers, so definitions are written in this module.
public struct ArchitectureDefinition: Sendable, Equatable {
    /// The `config.json` `model_type` (`llama`, `qwen2_moe`…); also the name `synth --arch` takes.
    public let modelType: String
    /// The `config.json` `architectures[0]` class (`LlamaForCausalLM`…).
    public let className: String
    /// The merge planner's tables, tried in order against a checkpoint's tensor names (Mixtral has two: one
    /// tensor per expert, and transformers 5's fused experts). Empty: the planner infers a table from the names.
    public let weightTables: [WeightTable]
    /// The engine's weight lookup.
    public let decoder: DecoderNames
    /// How the config reader completes a `config.json` of this family.
    public var config: ConfigConventions = .generic
    /// llama.cpp's spelling of this family in GGUF files; nil when no GGUF of it is read.
    public var gguf: GGUFConventions? = nil
    /// What `crucible synth --arch` writes; nil when synth cannot write this family.
    public var synth: SynthConventions? = nil
    /// The tokenizer class transformers 5 builds for this `model_type` whatever the folder declares (Qwen2's), or nil.
    public var transformersTokenizer: String? = nil
    /// The forward-pass conventions that are not in `config.json` (Gemma's (1 + w) norms and embedding scale).
    public var forward: ForwardConventions = .llama
    /// How llama.cpp's converter writes this family as GGUF (`crucible export`); nil when Crucible does not write it
    /// yet. It can differ from `gguf`, which says how files are read: Mistral is written as `llama`, Q/K permuted.
    public var ggufExport: GGUFConventions? = nil
}

/// How the family computes what `config.json` does not say: the engine reads these from the definition.
public struct ForwardConventions: Sendable, Equatable {
    /// Added to every RMSNorm weight before it scales (Gemma's `x̂ · (1 + w)`: 1; the Llama family: 0). The
    /// weights are stored (and merged) as `w`.
    public var normWeightOffset: Float = 0
    /// The token embeddings are multiplied by √hidden_size (in the weights' dtype) before the first layer (Gemma).
    public var scalesEmbedding = false
    /// Whether `attn_logit_softcapping` in `config.json` is applied (Gemma 2). Gemma 3's transformers code never
    /// passes it to the attention, so a Gemma 3 config's value is not read.
    public var appliesAttentionSoftCap = false
    /// Whether `final_logit_softcapping` is applied to the logits (Gemma 2 and 3).
    public var appliesFinalSoftCap = false

    /// The Llama family: `w · x̂`, embeddings as stored, no soft-caps.
    public static let llama = ForwardConventions()
}

/// The names the engine reads a decoder's weights under. Layer names are relative to `layer`; a linear's name gets
/// `.weight` (and `.bias`, when present) appended.
public struct DecoderNames: Sendable, Equatable {
    public let embedding: String
    public let finalNorm: String
    /// Absent from a model that ties its head to the embedding.
    public let head: String
    /// Prefix of layer N's weights, with `${layer_index}`.
    public let layer: String
    public let inputNorm: String
    public var postAttentionNorm: String
    /// Attention projections (linear names).
    public let query: String
    public let key: String
    public let value: String
    public let output: String
    /// The dense feed-forward (linear names).
    public let mlp: MLPNames
    /// Where routed experts may be stored, tried in order: the first layout whose `probe` tensor a layer holds is
    /// read, else the last one.
    public let expertLayouts: [ExpertLayout]
    /// Qwen2-MoE's shared expert and its sigmoid gate (linear names), read when the config declares one.
    public let sharedExpert: MLPNames
    public let sharedExpertGate: String
    /// Per-head RMSNorms of the queries and keys over head_dim, applied after the projection and before RoPE
    /// (Qwen3, Gemma 3), or nil.
    public var queryNorm: String? = nil
    public var keyNorm: String? = nil
    /// Sandwich norms (Gemma 2 and 3): the attention output and the feed-forward output are normalised before
    /// they are added to the residual. `postAttentionNorm` is then the norm in front of the feed-forward.
    public var attentionOutputNorm: String? = nil
    public var feedForwardOutputNorm: String? = nil
    /// Fused projections (Phi-3), linear names: `qkvProjection` rows are [q (heads · head_dim) | k | v (kv heads ·
    /// head_dim each)] and replace `query` / `key` / `value`; `gateUpProjection` rows are [gate (I) | up (I)] and
    /// replace `mlp.gate` / `mlp.up`. Merged as whole tensors; the engine reads the row blocks.
    public var qkvProjection: String? = nil
    public var gateUpProjection: String? = nil

    /// The prefix of layer `index`'s weights.
    public func layerPrefix(_ index: Int) -> String {
        layer.replacingOccurrences(of: "${layer_index}", with: String(index))
    }
}

/// A SwiGLU MLP's three linear names.
public struct MLPNames: Sendable, Equatable {
    public let gate: String
    public let up: String
    public let down: String

    /// The names of expert `index`, for names holding `${expert_index}`.
    public func expert(_ index: Int) -> MLPNames {
        func name(_ s: String) -> String { s.replacingOccurrences(of: "${expert_index}", with: String(index)) }
        return MLPNames(gate: name(gate), up: name(up), down: name(down))
    }
}

/// One way a layer's routed experts are stored.
public struct ExpertLayout: Sendable, Equatable {
    public enum Storage: Sendable, Equatable {
        /// One linear per expert and projection; names hold `${expert_index}`.
        case perExpert(MLPNames)
        /// All experts in two tensors: `gateUp` [E, 2·I, H] (each expert's gate rows, then its up rows) and
        /// `down` [E, H, I].
        case fused(gateUp: String, down: String)
    }

    /// The router (a linear name).
    public let router: String
    public let storage: Storage
    /// The tensor (relative to the layer) whose presence selects this layout.
    public let probe: String
}

/// How a `config.json` of the family is read where the file leaves something out.
public struct ConfigConventions: Sendable, Equatable {
    /// Whether q/k/v carry biases when the config has no `attention_bias` (Qwen2 always has them).
    public var attentionBias = false
    /// The mixture-of-experts keys; families without their own read them the generic way.
    public var experts: ExpertConventions = .generic
    /// The key naming the MLP activation (Gemma: `hidden_activation`) and its value when the config leaves it out.
    public var activationKey = "hidden_act"
    public var defaultActivation = "silu"
    /// Keys the config must hold (possibly as null) because the family's defaults are not the engine's: Gemma's
    /// `query_pre_attn_scalar` and soft-caps, which transformers fills with non-trivial values when absent.
    public var requiredKeys: [String] = []
    /// Which layers use the sliding window when the config has no `layer_types`: layer i is full iff
    /// (i + 1) % period == 0 (Gemma 2: period 2; Gemma 3: `sliding_window_pattern`, default 6). Nil: every layer.
    public var slidingPattern: PositionalConfigArray? = nil
    /// Which layers apply RoPE (SmolLM3's `no_rope_layers`: 1 = RoPE, 0 = none), read from `key`; when the config
    /// has no such list, layer i has none iff (i + 1) % period == 0 (`no_rope_layer_interval`, default 4). Nil: every
    /// layer applies RoPE.
    public var ropeLayers: PositionalConfigArray? = nil
    /// The sliding layers' RoPE base when the config does not nest RoPE per layer type (Gemma 3's
    /// `rope_local_base_freq`, default 10000); nil: the sliding layers share the full layers' RoPE.
    public var slidingRopeThetaKey: String? = nil
    public var defaultSlidingRopeTheta: Double? = nil

    /// For configs whose family declares nothing.
    public static let generic = ConfigConventions()
}

/// How a family spells its mixture of experts in `config.json`.
public struct ExpertConventions: Sendable, Equatable {
    /// `num_experts_per_tok` when the config leaves it out.
    public let defaultPerToken: Int
    /// Top-k probabilities always renormalised (Mixtral); otherwise `norm_topk_prob`, default false.
    public var alwaysNormalizeTopK = false
    /// A shared expert of `shared_expert_intermediate_size` (default `intermediate_size`).
    public var sharedExpert = false
    /// Dense layers named by `decoder_sparse_step` and `mlp_only_layers` (Qwen-MoE).
    public var denseLayerKeys = false

    /// For configs whose family declares nothing: two experts per token, `norm_topk_prob`, no shared expert.
    public static let generic = ExpertConventions(defaultPerToken: 2)
}

/// A family as llama.cpp writes it to GGUF: `general.architecture`, metadata conventions and tensor names.
public struct GGUFConventions: Sendable, Equatable {
    /// `general.architecture` (Mixtral is `llama` with `llama.expert_count` > 0).
    public let architecture: String
    /// This definition serves the files of `architecture` that have experts (else those without).
    public var withExperts = false
    /// llama.cpp's converter reorders Q/K rows for RoPE (`LlamaModel.permute`); reading undoes it.
    public var permutesQK = false
    /// `rope_theta` when `<arch>.rope.freq_base` is absent.
    public var defaultRopeTheta: Double = 10_000
    /// `attention_bias` is written from whether the file holds `attn_q.bias` tensors.
    public var attentionBiasFromTensors = false
    /// llama.cpp's converter stores RMSNorm weights as w + shift (Gemma: 1 + w, since llama.cpp's norm is w · x̂);
    /// reading subtracts it so the weights are Hugging Face's again.
    public var normWeightShift: Float = 0
    /// Numbers copied from `<arch>.<key>` metadata into `config.json` keys (Gemma 2's soft-caps), when present.
    public var metadataKeys: [String: String] = [:]
    /// Config keys llama.cpp does not store but fixes for the family (Gemma's `hidden_activation`).
    public var constantKeys: [String: String] = [:]
    /// `query_pre_attn_scalar` as llama.cpp derives it: head_dim (`attention.key_length`), or hidden / heads for a
    /// 46-layer model (Gemma 2 27B).
    public var queryPreAttnScalarAsLlamaCpp = false
    public let names: GGUFNameTable
}

/// llama.cpp's tensor names (`llama-arch.cpp`) against Hugging Face's, both ways.
public struct GGUFNameTable: Sendable, Equatable {
    /// Whole-model tensors: GGUF name → Hugging Face name.
    public let global: [String: String]
    /// Per-layer tensors: GGUF base name (`attn_q`) → Hugging Face name inside the layer (`self_attn.q_proj`).
    public let layer: [String: String]
    /// Per-expert tensors: GGUF base name (`ffn_gate`, also stacked as `ffn_gate_exps`) → expert weight (`w1`).
    public let expert: [String: String]
    /// Hugging Face prefix of layer N (`model.layers.N.`), with `${layer_index}`.
    public let layerPrefix: String
    /// Hugging Face prefix of expert E inside a layer, with `${expert_index}`.
    public let expertPrefix: String

    /// The Hugging Face name of a layer tensor (`attn_q`, layer 3, suffix `weight`), or nil when the base is unknown.
    public func hfName(layer index: Int, base: String, expert: Int? = nil, suffix: String) -> String? {
        let prefix = layerPrefix.replacingOccurrences(of: "${layer_index}", with: String(index))
        if let expert {
            guard let w = self.expert[base] else { return nil }
            return prefix + expertPrefix.replacingOccurrences(of: "${expert_index}", with: String(expert)) + w + "." + suffix
        }
        guard let hf = layer[base] else { return nil }
        return prefix + hf + "." + suffix
    }

    /// The GGUF name llama.cpp gives a Hugging Face tensor (one expert as `blk.N.ffn_gate.E.weight`), or nil.
    public func ggufName(hf name: String) -> String? {
        if let g = global.first(where: { $0.value == name })?.key { return g }
        guard let (index, rest) = Self.match(layerPrefix, "${layer_index}", in: name[...]) else { return nil }
        if let (e, inExpert) = Self.match(expertPrefix, "${expert_index}", in: rest) {
            let parts = inExpert.split(separator: ".", maxSplits: 1)
            guard parts.count == 2, let base = expert.first(where: { $0.value == String(parts[0]) })?.key else { return nil }
            return "blk.\(index).\(base).\(e).\(parts[1])"
        }
        for (base, hf) in layer where rest.hasPrefix(hf + ".") {
            let suffix = rest.dropFirst(hf.count + 1)
            if !suffix.contains(".") { return "blk.\(index).\(base).\(suffix)" }
        }
        return nil
    }

    /// Matches `template` (holding `slot` once) at the start of `name`: the number in the slot and what follows.
    private static func match(_ template: String, _ slot: String, in name: Substring) -> (Int, Substring)? {
        guard let r = template.range(of: slot) else { return nil }
        let head = template[..<r.lowerBound], tail = template[r.upperBound...]
        guard name.hasPrefix(head) else { return nil }
        let afterHead = name.dropFirst(head.count)
        let digits = afterHead.prefix(while: { $0.isASCII && $0.isNumber })
        guard let n = Int(digits), afterHead.dropFirst(digits.count).hasPrefix(tail) else { return nil }
        return (n, afterHead.dropFirst(digits.count + tail.count))
    }
}

/// What `crucible synth --arch` writes for a family besides the keys every family shares.
public struct SynthConventions: Sendable, Equatable {
    /// Keys written as `null` (Mistral's `sliding_window`).
    public var nullKeys: [String] = []
    /// Further keys with the family's values (Gemma's soft-caps, window, activation).
    public var numberKeys: [String: Double] = [:]
    public var stringKeys: [String: String] = [:]
    /// `query_pre_attn_scalar` written as head_dim (Gemma).
    public var queryPreAttnScalarIsHeadDim = false
}
