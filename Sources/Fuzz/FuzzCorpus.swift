import Checkpoints
import Foundation
import Numerics

/// The valid inputs every fuzz case starts from, generated from nothing but a seed so a campaign needs no files:
/// three micro Llama checkpoints (config.json, model.safetensors, tokenizer.json, tokenizer_config.json), one of
/// them also sharded with an index, the same model as a GGUF file (F32, F16 and Q8_0 tensors and a GPT-2 style
/// vocabulary), and recipe templates (merges with every family of methods, a slice merge, a GGUF parent and a MoE).
public struct FuzzCorpus: Sendable {
    /// Micro model dimensions: small enough that a merge or one forward window takes a millisecond.
    public static let hidden = 16, intermediate = 32, layers = 2, heads = 2, kvHeads = 1, vocab = 512, maxPositions = 64

    public let folder: String
    /// Model folders `a`, `b`, `c`.
    public var models: [String] { ["a", "b", "c"].map { (folder as NSString).appendingPathComponent($0) } }
    public var sharded: String { (folder as NSString).appendingPathComponent("sharded") }
    public var gguf: String { (folder as NSString).appendingPathComponent("micro.gguf") }
    /// The GGUF file's bytes and the header fields a mutation may target.
    public let ggufBytes: [UInt8]
    public let ggufFields: [GGUFField]
    /// Recipe templates with `{A}`, `{B}`, `{C}`, `{GGUF}` standing for absolute paths.
    public let recipes: [String]

    /// Writes the corpus into `folder` (created if needed).
    public init(folder: String, seed: UInt64 = 1) throws {
        self.folder = folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let tokenizer = Self.tokenizerJSON()
        for (i, name) in ["a", "b", "c"].enumerated() {
            let dir = (folder as NSString).appendingPathComponent(name)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let tensors = Self.tensors(seed: seed &+ UInt64(i) &* 7919)
            try Data(Self.safetensors(tensors)).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
            try Self.configJSON().write(toFile: dir + "/config.json", atomically: false, encoding: .utf8)
            try tokenizer.write(toFile: dir + "/tokenizer.json", atomically: false, encoding: .utf8)
            try Self.tokenizerConfig.write(toFile: dir + "/tokenizer_config.json", atomically: false, encoding: .utf8)
        }
        // The first model again, in two shards with an index.
        let dir = (folder as NSString).appendingPathComponent("sharded")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let all = Self.tensors(seed: seed)
        let half = all.count / 2
        var map: [(String, JSONValue)] = []
        for (k, part) in [Array(all[..<half]), Array(all[half...])].enumerated() {
            let file = "model-0000\(k + 1)-of-00002.safetensors"
            try Data(Self.safetensors(part)).write(to: URL(fileURLWithPath: dir + "/" + file))
            map += part.map { ($0.name, .string(file)) }
        }
        let total = all.reduce(0) { $0 + $1.values.count * 4 }
        let index = JSONValue.object(JSONObject([("metadata", .object(JSONObject([("total_size", .int(Int64(total)))]))),
                                                 ("weight_map", .object(JSONObject(map)))]))
        try index.serialized(indent: 2).write(toFile: dir + "/model.safetensors.index.json", atomically: false, encoding: .utf8)
        try Self.configJSON().write(toFile: dir + "/config.json", atomically: false, encoding: .utf8)
        try tokenizer.write(toFile: dir + "/tokenizer.json", atomically: false, encoding: .utf8)

        let (bytes, fields) = Self.ggufFile(tensors: Self.tensors(seed: seed &+ 99))
        ggufBytes = bytes
        ggufFields = fields
        try Data(bytes).write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent("micro.gguf")))
        recipes = Self.recipeTemplates
    }

    /// A template with its placeholders replaced by the corpus paths.
    public func recipe(_ template: String) -> String {
        let m = models
        return template.replacingOccurrences(of: "{A}", with: m[0]).replacingOccurrences(of: "{B}", with: m[1])
            .replacingOccurrences(of: "{C}", with: m[2]).replacingOccurrences(of: "{GGUF}", with: gguf)
            .replacingOccurrences(of: "{SHARDED}", with: sharded)
    }

    // MARK: Models

    public struct Tensor: Sendable {
        public let name: String
        public let shape: [Int]
        public var values: [Float]
    }

    /// Every tensor of the micro Llama, Hugging Face names, random values of a plausible scale.
    static func tensors(seed: UInt64) -> [Tensor] {
        var rng = SplitMix64(seed: seed, stream: "fuzz-corpus")
        func t(_ name: String, _ shape: [Int], norm: Bool = false) -> Tensor {
            let n = shape.reduce(1, *)
            let scale = 1 / Float(shape.last ?? 1).squareRoot()
            return Tensor(name: name, shape: shape,
                          values: (0..<n).map { _ in norm ? 1 + 0.05 * rng.nextGaussian() : scale * rng.nextGaussian() })
        }
        let h = hidden, q = heads * (hidden / heads), kv = kvHeads * (hidden / heads)
        var out = [t("model.embed_tokens.weight", [vocab, h])]
        for l in 0..<layers {
            let p = "model.layers.\(l)."
            out += [t(p + "input_layernorm.weight", [h], norm: true),
                    t(p + "self_attn.q_proj.weight", [q, h]), t(p + "self_attn.k_proj.weight", [kv, h]),
                    t(p + "self_attn.v_proj.weight", [kv, h]), t(p + "self_attn.o_proj.weight", [h, q]),
                    t(p + "post_attention_layernorm.weight", [h], norm: true),
                    t(p + "mlp.gate_proj.weight", [intermediate, h]), t(p + "mlp.up_proj.weight", [intermediate, h]),
                    t(p + "mlp.down_proj.weight", [h, intermediate])]
        }
        out += [t("model.norm.weight", [h], norm: true), t("lm_head.weight", [vocab, h])]
        return out
    }

    /// A float32 safetensors file holding `tensors`.
    static func safetensors(_ tensors: [Tensor]) -> [UInt8] {
        var entries: [(String, JSONValue)] = [("__metadata__", .object(JSONObject([("format", .string("pt"))])))]
        var offset = 0
        for t in tensors {
            let size = t.values.count * 4
            entries.append((t.name, .object(JSONObject([("dtype", .string("F32")), ("shape", .array(t.shape.map { .int(Int64($0)) })),
                                                        ("data_offsets", .array([.int(Int64(offset)), .int(Int64(offset + size))]))]))))
            offset += size
        }
        var header = Array(JSONValue.object(JSONObject(entries)).serialized(indent: 0).utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
        out += header
        for t in tensors { for v in t.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } } }
        return out
    }

    static func configJSON() -> String {
        let c = JSONObject([
            ("architectures", .array([.string("LlamaForCausalLM")])), ("model_type", .string("llama")),
            ("hidden_size", .int(Int64(hidden))), ("intermediate_size", .int(Int64(intermediate))),
            ("num_hidden_layers", .int(Int64(layers))), ("num_attention_heads", .int(Int64(heads))),
            ("num_key_value_heads", .int(Int64(kvHeads))), ("head_dim", .int(Int64(hidden / heads))),
            ("vocab_size", .int(Int64(vocab))), ("max_position_embeddings", .int(Int64(maxPositions))),
            ("rms_norm_eps", .double(1e-5)), ("rope_theta", .double(10000)), ("rope_scaling", .null),
            ("hidden_act", .string("silu")), ("tie_word_embeddings", .bool(false)), ("attention_bias", .bool(false)),
            ("bos_token_id", .int(1)), ("eos_token_id", .int(2)), ("torch_dtype", .string("float32")),
        ])
        return JSONValue.object(c).serialized(indent: 2) + "\n"
    }

    // MARK: Tokenizer

    /// GPT-2's byte → printable character table.
    static let byteCharacters: [String] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var table = [Int](repeating: 0, count: 256)
        var extra = 0
        for b in 0..<256 {
            if printable.contains(b) { table[b] = b } else { table[b] = 256 + extra; extra += 1 }
        }
        printable.removeAll()
        return table.map { String(UnicodeScalar(UInt32($0))!) }
    }()

    /// The vocabulary: three control tokens, the 256 byte tokens, then merged pairs up to `vocab`.
    static func vocabulary() -> (tokens: [String], merges: [(String, String)]) {
        var tokens = ["<pad>", "<s>", "</s>"] + byteCharacters
        var merges: [(String, String)] = []
        let letters = Array("etaoinshrdlucmfwyp").map(String.init) + ["Ġ"]
        outer: for a in letters {
            for b in letters where a != "Ġ" || b != "Ġ" {
                if tokens.count >= vocab { break outer }
                merges.append((a, b))
                tokens.append(a + b)
            }
        }
        return (tokens, merges)
    }

    static func tokenizerJSON() -> String {
        let (tokens, merges) = vocabulary()
        var vocabObject = JSONObject()
        for (i, t) in tokens.enumerated() { vocabObject[t] = .int(Int64(i)) }
        let added: [JSONValue] = ["<pad>", "<s>", "</s>"].enumerated().map { i, s in
            .object(JSONObject([("id", .int(Int64(i))), ("content", .string(s)), ("single_word", .bool(false)), ("lstrip", .bool(false)),
                                ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(true))]))
        }
        let byteLevel = JSONValue.object(JSONObject([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)),
                                                     ("trim_offsets", .bool(true)), ("use_regex", .bool(true))]))
        let model = JSONObject([("type", .string("BPE")), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .null),
                                ("end_of_word_suffix", .null), ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
                                ("ignore_merges", .bool(false)), ("vocab", .object(vocabObject)),
                                ("merges", .array(merges.map { .array([.string($0.0), .string($0.1)]) }))])
        let root = JSONObject([("version", .string("1.0")), ("truncation", .null), ("padding", .null), ("added_tokens", .array(added)),
                               ("normalizer", .null), ("pre_tokenizer", byteLevel), ("post_processor", .null), ("decoder", byteLevel),
                               ("model", .object(model))])
        return JSONValue.object(root).serialized(indent: 1) + "\n"
    }

    static let tokenizerConfig = """
    {"add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", \
    "tokenizer_class": "PreTrainedTokenizerFast"}

    """

    // MARK: GGUF

    /// A header field of the corpus GGUF file: where it is and how wide, so a mutation can rewrite it.
    public struct GGUFField: Sendable {
        public enum Kind: String, Sendable {
            case tensorCount, keyCount, keyLength, valueType, stringLength, arrayType, arrayCount, number, float
            case dimCount, dim, tensorType, tensorOffset, nameLength
        }
        public let kind: Kind
        public let offset: Int
        public let width: Int
        /// The metadata key or tensor name it belongs to.
        public let owner: String
    }

    /// The micro Llama as a GGUF file (llama.cpp's names and dimension order; F32 norms and embeddings, F16
    /// attention, Q8_0 MLP), with the header fields recorded.
    static func ggufFile(tensors: [Tensor]) -> ([UInt8], [GGUFField]) {
        var w = GGUFWriter()
        let (tokens, merges) = vocabulary()
        let meta: [(String, GGUFWriter.Value)] = [
            ("general.architecture", .string("llama")), ("general.name", .string("fuzz-micro")),
            ("llama.block_count", .u32(UInt32(layers))), ("llama.context_length", .u32(UInt32(maxPositions))),
            ("llama.embedding_length", .u32(UInt32(hidden))), ("llama.feed_forward_length", .u32(UInt32(intermediate))),
            ("llama.attention.head_count", .u32(UInt32(heads))), ("llama.attention.head_count_kv", .u32(UInt32(kvHeads))),
            ("llama.attention.layer_norm_rms_epsilon", .f32(1e-5)), ("llama.rope.freq_base", .f32(10000)),
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("default")),
            ("tokenizer.ggml.tokens", .strings(tokens)),
            ("tokenizer.ggml.token_type", .i32s(tokens.indices.map { $0 < 3 ? 3 : 1 })),
            ("tokenizer.ggml.merges", .strings(merges.map { "\($0.0) \($0.1)" })),
            ("tokenizer.ggml.bos_token_id", .u32(1)), ("tokenizer.ggml.eos_token_id", .u32(2)),
            ("tokenizer.ggml.add_bos_token", .bool(true)),
        ]
        func ggufName(_ hf: String) -> String {
            let global = ["model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
                          "lm_head.weight": "output.weight"]
            if let g = global[hf] { return g }
            let parts = hf.split(separator: ".")
            let layer = parts[2]
            let local = parts[3...].joined(separator: ".")
            let names = ["input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
                         "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
                         "self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
                         "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
                         "mlp.down_proj.weight": "ffn_down.weight"]
            return "blk.\(layer)." + names[local]!
        }
        let stored = tensors.map { t -> GGUFWriter.Tensor in
            let type: GGUFWriter.TensorType = t.name.contains("self_attn") ? .f16 : (t.name.contains("mlp.down") ? .q8_0 : .f32)
            return GGUFWriter.Tensor(name: ggufName(t.name), dims: t.shape.reversed(), type: type, values: t.values)
        }
        return w.file(metadata: meta, tensors: stored)
    }

    // MARK: Recipes

    static let recipeTemplates: [String] = [
        "merge_method: linear\nmodels:\n  - model: {A}\n    parameters:\n      weight: 0.6\n"
            + "  - model: {B}\n    parameters:\n      weight: 0.4\ndtype: float32\n",
        "merge_method: slerp\nbase_model: {A}\nmodels:\n  - model: {A}\n  - model: {B}\n"
            + "parameters:\n  t:\n    - filter: self_attn\n      value: [0, 0.5, 1]\n    - value: 0.5\n",
        "merge_method: ties\nbase_model: {A}\nmodels:\n  - model: {B}\n    parameters: {weight: 0.7, density: 0.5}\n"
            + "  - model: {C}\n    parameters: {weight: 0.3, density: [0.2, 0.8]}\n"
            + "parameters:\n  normalize: true\n  int8_mask: true\ndtype: bfloat16\n",
        "merge_method: dare_ties\nbase_model: {A}\nmodels:\n  - model: {B}\n    parameters: {weight: 0.5, density: 0.6}\n"
            + "  - model: {C}\n    parameters: {weight: 0.5, density: 0.4}\nrandom_seed: 7\n",
        "merge_method: passthrough\nslices:\n  - sources:\n      - model: {A}\n        layer_range: [0, 1]\n"
            + "  - sources:\n      - model: {B}\n        layer_range: [1, 2]\n",
        "merge_method: model_stock\nbase_model: {A}\nmodels:\n  - model: {A}\n  - model: {B}\n  - model: {C}\n"
            + "parameters: {filter_wise: false}\n",
        "merge_method: task_arithmetic\nbase_model: {A}\nmodels:\n  - model: {B}\n    parameters: {weight: 1.0}\n"
            + "  - model: {C}\n    parameters: {weight: -0.5}\nparameters: {lambda: 0.8}\n",
        "merge_method: della\nbase_model: {A}\nmodels:\n  - model: {B}\n    parameters: {weight: 0.5, density: 0.5, epsilon: 0.1}\n"
            + "  - model: {C}\n    parameters: {weight: 0.5, density: 0.5, epsilon: 0.1}\n",
        "merge_method: breadcrumbs_ties\nbase_model: {A}\nmodels:\n"
            + "  - model: {B}\n    parameters: {weight: 0.5, density: 0.8, gamma: 0.05}\n",
        "merge_method: nuslerp\nmodels:\n  - model: {A}\n    parameters: {weight: 0.5}\n  - model: {B}\n    parameters: {weight: 0.5}\n",
        "merge_method: karcher\nmodels:\n  - model: {A}\n  - model: {B}\n  - model: {C}\nparameters: {max_iter: 5, tol: 1e-5}\n",
        "merge_method: sce\nbase_model: {A}\nmodels:\n  - model: {B}\n  - model: {C}\nparameters: {select_topk: 0.5}\n",
        "merge_method: nearswap\nbase_model: {A}\nmodels:\n  - model: {A}\n  - model: {B}\nparameters: {t: 0.001}\n",
        "merge_method: arcee_fusion\nbase_model: {A}\nmodels:\n  - model: {A}\n  - model: {B}\n",
        "merge_method: multislerp\nmodels:\n  - model: {A}\n    parameters: {weight: 1}\n  - model: {B}\n    parameters: {weight: 2}\n",
        "merge_method: linear\nmodels:\n  - model: {GGUF}\n    parameters: {weight: 0.5}\n"
            + "  - model: {SHARDED}\n    parameters: {weight: 0.5}\n",
        "base_model: {A}\ngate_mode: random\ndtype: float32\nexperts:\n  - source_model: {B}\n    positive_prompts: [\"code\"]\n"
            + "  - source_model: {C}\n    positive_prompts: [\"story\"]\n",
        "base_model: {A}\ngate_mode: cheap_embed\nexperts_per_token: 1\nexperts:\n"
            + "  - source_model: {B}\n    positive_prompts: [\"the cat\"]\n"
            + "  - source_model: {C}\n    positive_prompts: [\"a dog\"]\n",
    ]
}

/// Writes GGUF version 3 files, recording where each header field lies.
struct GGUFWriter {
    enum Value {
        case string(String), u32(UInt32), f32(Float), bool(Bool), strings([String]), i32s([Int])
    }
    enum TensorType: UInt32 { case f32 = 0, f16 = 1, q8_0 = 8 }
    struct Tensor {
        let name: String
        let dims: [Int]
        let type: TensorType
        let values: [Float]
    }

    private(set) var bytes: [UInt8] = []
    private(set) var fields: [FuzzCorpus.GGUFField] = []

    private mutating func field(_ kind: FuzzCorpus.GGUFField.Kind, _ width: Int, _ owner: String, _ write: (inout GGUFWriter) -> Void) {
        fields.append(.init(kind: kind, offset: bytes.count, width: width, owner: owner))
        write(&self)
    }
    private mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    private mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    private mutating func string(_ s: String, owner: String, kind: FuzzCorpus.GGUFField.Kind = .stringLength) {
        field(kind, 8, owner) { $0.u64(UInt64(s.utf8.count)) }
        bytes += Array(s.utf8)
    }

    mutating func file(metadata: [(String, Value)], tensors: [Tensor]) -> ([UInt8], [FuzzCorpus.GGUFField]) {
        bytes = Array("GGUF".utf8)
        u32(3)
        field(.tensorCount, 8, "") { $0.u64(UInt64(tensors.count)) }
        field(.keyCount, 8, "") { $0.u64(UInt64(metadata.count)) }
        for (key, value) in metadata {
            string(key, owner: key, kind: .keyLength)
            switch value {
            case let .string(s):
                field(.valueType, 4, key) { $0.u32(8) }
                string(s, owner: key)
            case let .u32(v):
                field(.valueType, 4, key) { $0.u32(4) }
                field(.number, 4, key) { $0.u32(v) }
            case let .f32(v):
                field(.valueType, 4, key) { $0.u32(6) }
                field(.float, 4, key) { $0.u32(v.bitPattern) }
            case let .bool(b):
                field(.valueType, 4, key) { $0.u32(7) }
                bytes.append(b ? 1 : 0)
            case let .strings(list):
                field(.valueType, 4, key) { $0.u32(9) }
                field(.arrayType, 4, key) { $0.u32(8) }
                field(.arrayCount, 8, key) { $0.u64(UInt64(list.count)) }
                for (i, s) in list.enumerated() {
                    if i < 4 { string(s, owner: key) } else { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
                }
            case let .i32s(list):
                field(.valueType, 4, key) { $0.u32(9) }
                field(.arrayType, 4, key) { $0.u32(5) }
                field(.arrayCount, 8, key) { $0.u64(UInt64(list.count)) }
                for v in list { u32(UInt32(bitPattern: Int32(v))) }
            }
        }
        var offset = 0
        var payloads: [[UInt8]] = []
        for t in tensors {
            string(t.name, owner: t.name, kind: .nameLength)
            field(.dimCount, 4, t.name) { $0.u32(UInt32(t.dims.count)) }
            for d in t.dims { field(.dim, 8, t.name) { $0.u64(UInt64(d)) } }
            field(.tensorType, 4, t.name) { $0.u32(t.type.rawValue) }
            field(.tensorOffset, 8, t.name) { $0.u64(UInt64(offset)) }
            let data = Self.encode(t)
            payloads.append(data)
            offset += (data.count + 31) / 32 * 32
        }
        while bytes.count % 32 != 0 { bytes.append(0) }
        for data in payloads {
            bytes += data
            while bytes.count % 32 != 0 { bytes.append(0) }
        }
        return (bytes, fields)
    }

    static func encode(_ t: Tensor) -> [UInt8] {
        var out: [UInt8] = []
        switch t.type {
        case .f32:
            for v in t.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
        case .f16:
            for v in t.values { withUnsafeBytes(of: floatToHalfBits(v).littleEndian) { out += $0 } }
        case .q8_0:
            for block in stride(from: 0, to: t.values.count, by: 32) {
                let part = t.values[block..<min(block + 32, t.values.count)]
                let amax = part.map(abs).max() ?? 0
                let d = amax / 127
                withUnsafeBytes(of: floatToHalfBits(d).littleEndian) { out += $0 }
                for v in part { out.append(UInt8(bitPattern: Int8(d == 0 ? 0 : (v / d).rounded()))) }
            }
        }
        return out
    }
}
