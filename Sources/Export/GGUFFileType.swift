import Checkpoints

/// What `--gguf TYPE` asks for: one of llama-quantize's file types (a base type plus its per-tensor rules), or,
/// with `pure`, the base type for every quantizable tensor.
public struct GGUFFileType: Sendable, Equatable, CustomStringConvertible {
    public enum Mixture: String, Sendable, CaseIterable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16"
        case q8_0 = "Q8_0", q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1"
        case q2_K = "Q2_K", q3_K_S = "Q3_K_S", q3_K_M = "Q3_K_M", q3_K_L = "Q3_K_L"
        case q4_K_S = "Q4_K_S", q4_K_M = "Q4_K_M", q5_K_S = "Q5_K_S", q5_K_M = "Q5_K_M", q6_K = "Q6_K"

        /// The file type llama-quantize calls `name`, case-insensitively (`q4_k_m` is `Q4_K_M`).
        public init?(name: String) {
            let upper = name.uppercased()
            guard let m = Self.allCases.first(where: { $0.rawValue == upper }) else { return nil }
            self = m
        }

        /// llama.cpp's `llama_ftype` value, written as `general.file_type`.
        public var fileTypeID: UInt32 {
            switch self {
            case .f32: return 0
            case .f16: return 1
            case .q4_0: return 2
            case .q4_1: return 3
            case .q8_0: return 7
            case .q5_0: return 8
            case .q5_1: return 9
            case .q2_K: return 10
            case .q3_K_S: return 11
            case .q3_K_M: return 12
            case .q3_K_L: return 13
            case .q4_K_S: return 14
            case .q4_K_M: return 15
            case .q5_K_S: return 16
            case .q5_K_M: return 17
            case .q6_K: return 18
            case .bf16: return 32
            }
        }

        /// The type most tensors get (`llama_ftype_get_default_type`).
        public var baseType: GGMLType {
            switch self {
            case .f32: return .f32
            case .f16: return .f16
            case .bf16: return .bf16
            case .q8_0: return .q8_0
            case .q4_0: return .q4_0
            case .q4_1: return .q4_1
            case .q5_0: return .q5_0
            case .q5_1: return .q5_1
            case .q2_K: return .q2_K
            case .q3_K_S, .q3_K_M, .q3_K_L: return .q3_K
            case .q4_K_S, .q4_K_M: return .q4_K
            case .q5_K_S, .q5_K_M: return .q5_K
            case .q6_K: return .q6_K
            }
        }
    }

    public let mixture: Mixture
    /// llama-quantize's `--pure`: no per-tensor rules, only the shape fallbacks.
    public let pure: Bool

    public init(mixture: Mixture, pure: Bool = false) {
        self.mixture = mixture
        self.pure = pure
    }

    /// Parses `Q4_K_M`, `q8_0`, `f16`…; the names llama-quantize takes (case-insensitive).
    public init?(name: String, pure: Bool = false) {
        guard let m = Mixture(name: name) else { return nil }
        self.init(mixture: m, pure: pure)
    }

    public static var names: [String] { Mixture.allCases.map(\.rawValue) }

    public var description: String { mixture.rawValue + (pure ? " (pure)" : "") }
}

/// The facts about a model that llama-quantize's per-tensor rules read.
public struct QuantizationModelFacts: Sendable {
    /// `general.architecture`.
    public var architecture: String
    public var layerCount: Int
    /// Query heads per KV head.
    public var gqa: Int
    public var expertCount: Int
    /// Whether the file has no separate `output.weight` (the head reuses `token_embd`).
    public var tiedEmbeddings: Bool
    /// How many `attn_v`-like tensors the file has.
    public var attentionVCount: Int

    public init(architecture: String, layerCount: Int, gqa: Int, expertCount: Int, tiedEmbeddings: Bool, attentionVCount: Int) {
        self.architecture = architecture
        self.layerCount = layerCount
        self.gqa = gqa
        self.expertCount = expertCount
        self.tiedEmbeddings = tiedEmbeddings
        self.attentionVCount = attentionVCount
    }
}

/// llama-quantize's choice of a storage type per tensor (`llama_tensor_get_type` in `llama-quant.cpp`, for the
/// file types above without an importance matrix). Call `type(for:)` once per tensor, in file order: like
/// llama-quantize it counts the `attn_v` tensors it has seen.
public struct QuantizationTypeChooser {
    public let fileType: GGUFFileType
    public let facts: QuantizationModelFacts
    private var attentionVSeen = 0
    private var ffnDownSeen = 0
    /// Tensors that fell back to another type because their rows are not whole blocks (name → type).
    public private(set) var fallbacks: [(String, GGMLType)] = []

    public init(fileType: GGUFFileType, facts: QuantizationModelFacts) {
        self.fileType = fileType
        self.facts = facts
    }

    private enum Category { case output, tokenEmbedding, attentionQKV, attentionV, attentionK, attentionQ, attentionOutput,
                            ffnUp, ffnGate, ffnDown, other }

    private static func category(_ name: String) -> Category {
        if name == "output.weight" { return .output }
        if name == "token_embd.weight" { return .tokenEmbedding }
        if name.contains("attn_qkv.weight") { return .attentionQKV }
        if name.contains("attn_v.weight") { return .attentionV }
        if name.contains("attn_k.weight") { return .attentionK }
        if name.contains("attn_q.weight") { return .attentionQ }
        if name.contains("attn_output.weight") { return .attentionOutput }
        if name.contains("ffn_up") { return .ffnUp }
        if name.contains("ffn_gate") { return .ffnGate }
        if name.contains("ffn_down") { return .ffnDown }
        return .other
    }

    /// Whether llama-quantize quantizes this tensor at all (`tensor_allows_quantization`, for the names Crucible writes).
    public static func allowsQuantization(_ name: String, dimensions: Int) -> Bool {
        dimensions >= 2 && name.hasSuffix("weight") && !name.contains("_norm.weight") && !name.contains("ffn_gate_inp.weight")
    }

    /// Counts the attn_v-like tensors among GGUF names (for `QuantizationModelFacts.attentionVCount`).
    public static func attentionVCount(_ names: [String]) -> Int {
        names.filter { [.attentionV, .attentionQKV].contains(category($0)) }.count
    }

    private static func useMoreBits(_ i: Int, _ n: Int) -> Bool {
        i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
    }

    /// The type for tensor `name` (GGUF name) with `shape` (outermost first), whose type in a plain conversion
    /// would be `unquantized` (F32 for vectors and router weights, else the float type chosen for the file).
    public mutating func type(for name: String, shape: [Int], unquantized: GGMLType) -> GGMLType {
        let base = fileType.mixture.baseType
        guard base.isQuantized, Self.allowsQuantization(name, dimensions: shape.count) else {
            if Self.allowsQuantization(name, dimensions: shape.count) { return base }
            return unquantized
        }
        var t = base
        if !fileType.pure { t = rules(name, shape: shape, t) }
        return fallback(name, columns: shape.last ?? 0, t)
    }

    private mutating func rules(_ name: String, shape: [Int], _ start: GGMLType) -> GGMLType {
        let m = fileType.mixture
        var t = start
        let category = Self.category(name)
        let experts = max(1, facts.expertCount)
        func layer(_ counter: Int) -> Int {
            guard experts > 1 else { return counter }
            // Expert tensors need not be in layer order; the layer is read from the name (`blk.N.`).
            let parts = name.split(separator: ".")
            return parts.count > 1 && parts[0] == "blk" ? Int(parts[1]) ?? counter : counter
        }
        let n = facts.layerCount
        switch category {
        case .output, .tokenEmbedding where facts.tiedEmbeddings:
            let columns = shape.last ?? 0
            if facts.architecture == "falcon" || columns % t.blockSize != 0 { t = .q8_0 } else if t != .q8_0 { t = .q6_K }
        case .tokenEmbedding:
            break
        case .attentionV, .attentionQKV:
            // llama.cpp also lists a fused-QKV rule, after this branch, where it is never reached.
            switch m {
            case .q2_K: t = facts.gqa >= 4 ? .q4_K : .q3_K
            case .q3_K_M: t = attentionVSeen < 2 ? .q5_K : .q4_K
            case .q3_K_L: t = .q5_K
            case .q4_K_M, .q5_K_M: if Self.useMoreBits(attentionVSeen, facts.attentionVCount) { t = .q6_K }
            case .q4_K_S: if attentionVSeen < 4 { t = .q5_K }
            default: break
            }
            if facts.architecture == "llama" && n == 80 && (t == .q3_K || t == .q4_K) { t = .q5_K }   // LLM_TYPE_70B
            if facts.expertCount == 8 { t = .q8_0 }
            attentionVSeen += 1
        case .attentionK:
            if facts.expertCount == 8 { t = .q8_0 }
        case .attentionQ, .ffnGate, .ffnUp, .other:
            break
        case .ffnDown:
            let i = layer(ffnDownSeen)
            switch m {
            case .q2_K: t = .q3_K
            case .q3_K_M: t = i < n / 16 ? .q5_K : (facts.architecture != "falcon" || Self.useMoreBits(i, n)) ? .q4_K : .q3_K
            case .q3_K_L: t = facts.architecture == "falcon" ? .q4_K : .q5_K
            case .q4_K_M:
                if facts.architecture == "falcon" {
                    t = i < n / 16 ? .q6_K : Self.useMoreBits(i, n) ? .q5_K : .q4_K
                } else if Self.useMoreBits(i, n) {
                    t = .q6_K
                }
            case .q5_K_M: if Self.useMoreBits(i, n) { t = .q6_K }
            case .q4_K_S: if facts.architecture != "falcon" && i < n / 8 { t = .q5_K }
            default: break
            }
            ffnDownSeen += 1
        case .attentionOutput:
            if facts.architecture != "falcon" {
                if facts.expertCount == 8 {
                    if [.q2_K, .q3_K_S, .q3_K_M, .q4_K_S, .q4_K_M].contains(m) { t = .q5_K }
                } else {
                    switch m {
                    case .q2_K: t = .q3_K
                    case .q3_K_M: t = .q4_K
                    case .q3_K_L: t = .q5_K
                    default: break
                    }
                }
            } else if m == .q3_K_L {
                t = .q4_K
            }
        }
        return t
    }

    /// llama.cpp's `tensor_type_fallback`: a type whose block does not divide the row length is replaced.
    private mutating func fallback(_ name: String, columns: Int, _ t: GGMLType) -> GGMLType {
        guard columns % t.blockSize != 0 else { return t }
        var r: GGMLType
        switch t {
        case .q2_K, .q3_K: r = .q4_0
        case .q4_K: r = .q5_0
        case .q5_K: r = .q5_1
        case .q6_K: r = .q8_0
        default: r = t
        }
        if columns % r.blockSize != 0 { r = .f16 }
        fallbacks.append((name, r))
        return r
    }
}
