import Checkpoints
import Foundation

/// A minimal Hugging Face → GGUF converter for tests, written from llama.cpp's conventions: GGUF names, reversed
/// dimensions, Q/K rows permuted for the llama architecture, Mixtral experts stacked.
public enum GGUFConversion {
    public struct ConversionError: Error, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    static let layerParts: [String: String] = [
        "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
        "block_sparse_moe.gate": "ffn_gate_inp", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
    ]

    /// llama.cpp's `LlamaModel.permute`: within each head, row i·(d/2) + j moves to row 2j + i.
    public static func permuteRows(_ w: [Float], rows: Int, heads: Int) -> [Float] {
        let rowLength = w.count / rows
        let d = rows / heads, half = d / 2
        var out = [Float](repeating: 0, count: w.count)
        for h in 0..<heads {
            for i in 0..<2 {
                for j in 0..<half {
                    let src = h * d + i * half + j, dst = h * d + 2 * j + i
                    out.replaceSubrange((dst * rowLength)..<((dst + 1) * rowLength), with: w[(src * rowLength)..<((src + 1) * rowLength)])
                }
            }
        }
        return out
    }

    /// Q8_0 blocks of 32 consecutive values.
    public static func q8_0(_ v: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in stride(from: 0, to: v.count, by: 32) {
            let block = v[b..<(b + 32)]
            let d = Float16(block.map(abs).max()! / 127)
            out += [UInt8(d.bitPattern & 0xFF), UInt8(d.bitPattern >> 8)]
            for x in block { out.append(UInt8(bitPattern: Int8(d == 0 ? 0 : max(-127, min(127, (x / Float(d)).rounded()))))) }
        }
        return out
    }

    static func f32Bytes(_ v: [Float]) -> [UInt8] {
        var b: [UInt8] = []
        b.reserveCapacity(v.count * 4)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { b.append(contentsOf: $0) } }
        return b
    }

    /// Converts the checkpoint folder at `folder` to GGUF bytes. 2-D tensors whose rows are whole Q8_0 blocks are
    /// quantized when `q8` is set; `extraMetadata` is appended to the metadata (e.g. a tokenizer).
    /// Gemma's names and conventions: sandwich norms as llama.cpp names them, norm weights stored as 1 + w.
    static let gemmaParts: [String: String] = [
        "post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
        "post_feedforward_layernorm": "post_ffw_norm",
    ]

    public static func convert(folder: String, arch: String, q8: Bool = false,
                               extraMetadata: [(String, GGUFValue)] = []) throws -> (bytes: [UInt8], source: CheckpointFolder) {
        let gemma = arch.hasPrefix("gemma")
        let source = try CheckpointFolder(path: folder)
        let model = (folder as NSString).lastPathComponent
        let c = source.config
        func cfg(_ k: String) -> Int { c[k]?.intValue ?? 0 }
        let heads = cfg("num_attention_heads"), kvHeads = cfg("num_key_value_heads")
        var meta: [(String, GGUFValue)] = [
            ("general.architecture", .string(arch)),
            ("general.name", .string(model)),
            ("\(arch).block_count", .uint32(UInt32(cfg("num_hidden_layers")))),
            ("\(arch).context_length", .uint32(UInt32(cfg("max_position_embeddings")))),
            ("\(arch).embedding_length", .uint32(UInt32(cfg("hidden_size")))),
            ("\(arch).feed_forward_length", .uint32(UInt32(cfg("intermediate_size")))),
            ("\(arch).attention.head_count", .uint32(UInt32(heads))),
            ("\(arch).attention.head_count_kv", .uint32(UInt32(kvHeads))),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(c["rms_norm_eps"]?.doubleValue ?? 0))),
            ("\(arch).rope.freq_base", .float32(Float((c["rope_parameters"]?["full_attention"] ?? c["rope_parameters"])?["rope_theta"]?
                .doubleValue ?? 0))),
            ("tokenizer.ggml.bos_token_id", .uint32(1)),
            ("tokenizer.ggml.eos_token_id", .uint32(2)),
        ]
        for key in ["attn_logit_softcapping", "final_logit_softcapping"] {
            if let v = c[key]?.doubleValue { meta.append(("\(arch).\(key)", .float32(Float(v)))) }
        }
        if cfg("sliding_window_pattern") > 0 {
            meta.append(("\(arch).attention.sliding_window_pattern", .uint32(UInt32(cfg("sliding_window_pattern")))))
        }
        if cfg("sliding_window") > 0 { meta.append(("\(arch).attention.sliding_window", .uint32(UInt32(cfg("sliding_window"))))) }
        if let full = c["rope_parameters"]?["full_attention"], full["rope_type"]?.stringValue == "linear",
           let factor = full["factor"]?.doubleValue {
            meta.append(("\(arch).rope.scaling.type", .string("linear")))
            meta.append(("\(arch).rope.scaling.factor", .float32(Float(factor))))
        }
        if cfg("head_dim") > 0 {
            meta.append(("\(arch).attention.key_length", .uint32(UInt32(cfg("head_dim")))))
            meta.append(("\(arch).attention.value_length", .uint32(UInt32(cfg("head_dim")))))
        }
        if cfg("num_local_experts") > 0 {
            meta.append(("\(arch).expert_count", .uint32(UInt32(cfg("num_local_experts")))))
            meta.append(("\(arch).expert_used_count", .uint32(UInt32(cfg("num_experts_per_tok")))))
        }
        var tensors: [GGUFBytes.Tensor] = []
        var stacked: [String: [(Int, [Float], [Int])]] = [:]   // GGUF name → (expert, values, HF shape)
        var stackOrder: [String] = []
        func emit(_ name: String, _ values: [Float], _ shape: [Int]) {
            let dims = shape.reversed().map(Int64.init)
            if q8, shape.count >= 2, shape.last! % 32 == 0 {
                tensors.append(.init(name: name, dims: dims, type: GGMLType.q8_0.rawValue, data: Self.q8_0(values)))
            } else {
                tensors.append(.init(name: name, dims: dims, type: GGMLType.f32.rawValue, data: Self.f32Bytes(values)))
            }
        }
        for name in source.tensorNames {
            guard let info = source.info(name) else { throw ConversionError("no info for \(name)") }
            var values = try source.readAllFloats(name)
            if gemma, name.hasSuffix("norm.weight") { values = values.map { $0 + 1 } }
            switch name {
            case "model.embed_tokens.weight": emit("token_embd.weight", values, info.shape); continue
            case "model.norm.weight": emit("output_norm.weight", values, info.shape); continue
            case "lm_head.weight": emit("output.weight", values, info.shape); continue
            default: break
            }
            let parts = name.split(separator: ".").map(String.init)   // model layers N ... weight|bias
            guard Array(parts[0..<2]) == ["model", "layers"] else { throw ConversionError("unexpected tensor \(name)") }
            let layer = parts[2], suffix = parts.last!
            let middle = parts[3..<(parts.count - 1)].joined(separator: ".")
            if parts[3] == "block_sparse_moe", parts[4] == "experts" {
                let w = ["w1": "ffn_gate_exps", "w2": "ffn_down_exps", "w3": "ffn_up_exps"][parts[6]]!
                let key = "blk.\(layer).\(w).\(suffix)"
                if stacked[key] == nil { stackOrder.append(key) }
                stacked[key, default: []].append((Int(parts[5])!, values, info.shape))
                continue
            }
            guard let base = (gemma ? Self.gemmaParts[middle] : nil) ?? Self.layerParts[middle] else { throw ConversionError("no GGUF name for \(name)") }
            if arch == "llama", base == "attn_q" || base == "attn_k" {
                values = Self.permuteRows(values, rows: info.shape[0], heads: base == "attn_q" ? heads : kvHeads)
            }
            emit("blk.\(layer).\(base).\(suffix)", values, info.shape)
        }
        for key in stackOrder {
            let experts = stacked[key]!.sorted { $0.0 < $1.0 }
            emit(key, experts.flatMap(\.1), [experts.count] + experts[0].2)
        }
        return (GGUFBytes.file(metadata: meta + extraMetadata, tensors: tensors), source)
    }

}
