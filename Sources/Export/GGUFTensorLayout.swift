import ArchitectureDefinitions
import Architectures
import Foundation
import Checkpoints
import Tokenization

/// One tensor of the GGUF file and where its rows come from.
struct GGUFOutputTensor {
    enum Rows {
        /// Row r is row r of the source.
        case plain(String)
        /// llama.cpp's Q/K permutation within each of `heads` heads (`LlamaModel.permute` of the converter):
        /// stored row h·d + 2j + i holds Hugging Face row h·d + i·d/2 + j.
        case permuted(String, headSize: Int)
        /// A vector permuted the same way, element by element (Q/K biases); it is one row.
        case permutedVector(String, headSize: Int)
        /// Experts stacked outermost: row r is row r mod `rowsPerExpert` of expert r / `rowsPerExpert`.
        case experts([String], rowsPerExpert: Int)
        /// Values the export derives from the config (llama.cpp's `rope_freqs`); one row.
        case derived([Float])
    }

    let name: String
    /// Outermost first.
    let shape: [Int]
    let rows: Rows

    var sources: [String] {
        switch rows {
        case let .plain(n), let .permuted(n, _), let .permutedVector(n, _): return [n]
        case let .experts(names, _): return names
        case .derived: return []
        }
    }

    /// Reads output rows `first..<first+count` (each `shape.last` long) into `dest`.
    func read(rows first: Int, count: Int, from source: any TensorSource, into dest: UnsafeMutablePointer<Float>) throws {
        let length = shape.last!
        func copyRow(_ name: String, _ row: Int, _ to: UnsafeMutablePointer<Float>) throws {
            try source.readFloats(name, range: (row * length)..<((row + 1) * length), into: to)
        }
        switch rows {
        case let .plain(n):
            try source.readFloats(n, range: (first * length)..<((first + count) * length), into: dest)
        case let .permuted(n, d):
            for r in 0..<count { try copyRow(n, GGUFNameMap.hfRow(stored: first + r, headDim: d), dest + r * length) }
        case let .permutedVector(n, d):
            var v = [Float](repeating: 0, count: length)
            try v.withUnsafeMutableBufferPointer { try source.readFloats(n, range: 0..<length, into: $0.baseAddress!) }
            for s in 0..<length { dest[s] = v[GGUFNameMap.hfRow(stored: s, headDim: d)] }
        case let .derived(values):
            for (i, v) in values.enumerated() { dest[i] = v }
        case let .experts(names, perExpert):
            for r in 0..<count {
                let g = first + r
                try copyRow(names[g / perExpert], g % perExpert, dest + r * length)
            }
        }
    }
}

/// The GGUF view of a checkpoint: llama.cpp's architecture, tensor names, shapes and metadata.
struct GGUFTensorLayout {
    let architecture: String
    let config: ModelConfig
    let configPath: String
    let tensors: [GGUFOutputTensor]
    let facts: QuantizationModelFacts
    /// Whether config.json names `head_dim` (the converter then writes the key and value lengths).
    let explicitHeadDim: Bool

    init(checkpoint: Checkpoint) throws {
        let c = checkpoint.config
        let file = checkpoint.configPath
        configPath = file
        func fail(_ reason: String) -> CheckpointError { .invalidConfig(file: file, reason: reason) }
        let conventions = try Self.conventions(config: c, file: file)
        architecture = conventions.architecture
        let permutes = conventions.permutesQK
        let config = try ModelConfig(json: c, file: file)
        try Self.checkRoPE(config, file: file)
        self.config = config
        let layers = config.layerCount
        let heads = config.headCount
        let kvHeads = config.kvHeadCount
        let experts = config.experts?.count ?? 0
        // A GGUF source says so by its own key; a config derived from GGUF metadata always names head_dim.
        if let gguf = checkpoint.source as? GGUFFile {
            explicitHeadDim = gguf.metadata["\(gguf.architecture ?? "").attention.key_length"] != nil
        } else {
            explicitHeadDim = c["head_dim"].map { !$0.isNull } ?? false
        }

        let source = checkpoint.source
        // Names come from the definition's GGUF table; the order is llama-quantize's (see the sort below).
        let names = source.tensorNames
        var ordered: [GGUFOutputTensor] = []
        var expertRows: [Int: [String: [Int: String]]] = [:]
        var hasHead = false, hasEmbedding = false
        for name in names {
            guard let info = source.info(name) else { continue }
            if let global = conventions.names.global.first(where: { $0.value == name })?.key {
                ordered.append(GGUFOutputTensor(name: global, shape: info.shape, rows: .plain(name)))
                hasHead = hasHead || global == "output.weight"
                hasEmbedding = hasEmbedding || global == "token_embd.weight"
                continue
            }
            guard let gguf = conventions.names.ggufName(hf: name) else {
                if name.hasSuffix("rotary_emb.inv_freq") { continue }
                throw CheckpointError.invalidTensor(file: source.file(of: name) ?? source.location, tensor: name,
                    reason: "no GGUF name for this tensor in llama.cpp's \(architecture) architecture; "
                        + "the export writes only tensors it maps exactly")
            }
            let parts = gguf.split(separator: ".").map(String.init)
            guard parts.count >= 4, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, layer < layers else {
                throw CheckpointError.invalidTensor(file: source.file(of: name) ?? source.location, tensor: name,
                    reason: "GGUF name \(gguf) is outside the \(layers) layers")
            }
            let base = parts[2]
            if parts.count == 5 {
                // One expert's projection: stacked per layer into `<base>_exps`, experts outermost.
                guard let e = Int(parts[3]), e >= 0, e < experts, parts[4] == "weight" else {
                    throw CheckpointError.invalidTensor(file: source.file(of: name) ?? source.location, tensor: name,
                        reason: "expert index out of range for \(experts) experts")
                }
                let stacked = base + "_exps"
                expertRows[layer, default: [:]][stacked, default: [:]][e] = name
                let group = expertRows[layer]![stacked]!
                if group.count == experts {
                    let names = (0..<experts).map { group[$0]! }
                    let shape = source.info(names[0])!.shape
                    for n in names where source.info(n)?.shape != shape {
                        throw CheckpointError.shapeMismatch(tensor: n, expected: shape, found: source.info(n)?.shape ?? [],
                                                            file: source.location)
                    }
                    ordered.append(GGUFOutputTensor(name: "blk.\(layer).\(stacked).weight", shape: [experts] + shape,
                                                    rows: .experts(names, rowsPerExpert: shape[0])))
                }
                continue
            }
            var rows: GGUFOutputTensor.Rows = .plain(name)
            if permutes && (base == "attn_q" || base == "attn_k") {
                let n = base == "attn_q" ? heads : kvHeads
                guard info.shape[0] % n == 0, (info.shape[0] / n) % 2 == 0 else {
                    throw CheckpointError.invalidTensor(file: source.file(of: name) ?? source.location, tensor: name,
                        reason: "\(info.shape[0]) rows do not split into \(n) heads of even size for llama.cpp's Q/K permutation")
                }
                rows = info.shape.count == 1 ? .permutedVector(name, headSize: info.shape[0] / n)
                                             : .permuted(name, headSize: info.shape[0] / n)
            }
            ordered.append(GGUFOutputTensor(name: gguf, shape: info.shape, rows: rows))
        }
        for (layer, kinds) in expertRows {
            for (gguf, byExpert) in kinds where byExpert.count != experts {
                throw fail("layer \(layer) has \(byExpert.count) of the \(experts) experts' \(gguf) tensors")
            }
        }
        guard hasEmbedding else { throw fail("the model has no model.embed_tokens.weight") }
        // Llama 3 RoPE scaling travels as a tensor of per-frequency divisors, which llama.cpp's converter derives.
        if case let .llama3(factor, low, high, original) = config.ropeScaling {
            let divisors = GGUFExport.llama3RopeDivisors(theta: config.ropeTheta, headDim: config.headDim, factor: factor,
                                                   lowFrequencyFactor: low, highFrequencyFactor: high, originalContext: original)
            ordered.append(GGUFOutputTensor(name: "rope_freqs.weight", shape: [divisors.count], rows: .derived(divisors)))
        }
        // llama-quantize's order (its `weight_name_comparer`): tensors outside the layers first, then layer by layer,
        // names in byte order within each. It counts the attn_v and ffn_down tensors in this order, so the order
        // decides which of them get more bits.
        func layerOf(_ name: String) -> Int {
            let parts = name.split(separator: ".", maxSplits: 2)
            return parts.count > 2 && parts[0] == "blk" ? Int(parts[1]) ?? -1 : -1
        }
        ordered = ordered.map { ($0, layerOf($0.name)) }
            .sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0.name.utf8.lexicographicallyPrecedes($1.0.name.utf8) }
            .map(\.0)
        tensors = ordered

        facts = QuantizationModelFacts(architecture: architecture, layerCount: layers, gqa: max(1, heads / max(1, kvHeads)),
                                       expertCount: experts, tiedEmbeddings: !hasHead,
                                       attentionVCount: QuantizationTypeChooser.attentionVCount(ordered.map(\.name)))
    }

    /// How llama.cpp's converter writes the config's architecture; an error naming the class when it is not written.
    static func conventions(config c: JSONObject, file: String) throws -> GGUFConventions {
        let className = c["architectures"]?.arrayValue?.first?.stringValue ?? "?"
        guard let definition = ArchitectureDefinition.all.first(where: { $0.className == className }),
              let conventions = definition.ggufExport else {
            let written = ArchitectureDefinition.all.filter { $0.ggufExport != nil }.map(\.className)
            throw CheckpointError.invalidConfig(file: file, reason: "GGUF export writes \(written.joined(separator: ", ")); "
                + "'\(className)' is not written yet (its llama.cpp names or hyperparameters are not mapped exactly)")
        }
        return conventions
    }

    /// The RoPE scalings the export writes exactly: none, linear, Llama 3 (as the rope_freqs tensor).
    static func checkRoPE(_ c: ModelConfig, file: String) throws {
        switch c.ropeScaling {
        case .none, .linear, .llama3: return
        default:
            throw CheckpointError.invalidConfig(file: file,
                reason: "this rope_scaling is not written to GGUF yet (linear and llama3 are)")
        }
    }

    /// The general and architecture keys, as llama.cpp's converter (and llama-quantize, for the file type) writes them.
    func metadata(name: String, fileType: GGUFFileType) throws -> [(String, GGUFValue)] {
        let a = architecture
        let c = config
        func fail(_ reason: String) -> CheckpointError { .invalidConfig(file: configPath, reason: reason) }
        func u32(_ v: Int, _ what: String) throws -> GGUFValue {
            guard v > 0, v <= Int(UInt32.max) else { throw fail("\(what) \(v) is out of range") }
            return .uint32(UInt32(v))
        }
        func f32(_ v: Double, _ what: String) throws -> GGUFValue {
            guard v.isFinite else { throw fail("\(what) is not a finite number") }
            return .float32(Float(v))
        }
        guard let context = c.maxPositionEmbeddings else { throw fail("max_position_embeddings is missing") }
        var m: [(String, GGUFValue)] = [
            ("general.architecture", .string(a)),
            ("general.type", .string("model")),
            ("general.name", .string(name)),
            ("\(a).block_count", try u32(c.layerCount, "num_hidden_layers")),
            ("\(a).context_length", try u32(context, "max_position_embeddings")),
            ("\(a).embedding_length", try u32(c.hiddenSize, "hidden_size")),
            ("\(a).feed_forward_length", try u32(c.intermediateSize, "intermediate_size")),
            ("\(a).attention.head_count", try u32(c.headCount, "num_attention_heads")),
            ("\(a).attention.head_count_kv", try u32(c.kvHeadCount, "num_key_value_heads")),
            ("\(a).rope.freq_base", try f32(c.ropeTheta, "rope_theta")),
            ("\(a).attention.layer_norm_rms_epsilon", try f32(c.rmsNormEps, "rms_norm_eps")),
        ]
        if explicitHeadDim {
            m.append(("\(a).attention.key_length", try u32(c.headDim, "head_dim")))
            m.append(("\(a).attention.value_length", try u32(c.headDim, "head_dim")))
        }
        if let experts = c.experts {
            m.append(("\(a).expert_count", try u32(experts.count, "num_local_experts")))
            m.append(("\(a).expert_used_count", try u32(experts.perToken, "num_experts_per_tok")))
        }
        m.append(("general.file_type", .uint32(fileType.mixture.fileTypeID)))
        if a == "llama" {
            m.append(("\(a).vocab_size", try u32(c.vocabSize, "vocab_size")))
            m.append(("\(a).rope.dimension_count", try u32(c.headDim, "head_dim")))
        }
        switch c.ropeScaling {
        case .none, .llama3: break   // Llama 3 scaling is the rope_freqs tensor
        case let .linear(factor):
            m.append(("\(a).rope.scaling.type", .string("linear")))
            m.append(("\(a).rope.scaling.factor", try f32(factor, "rope_scaling.factor")))
        default:
            try Self.checkRoPE(c, file: configPath)
        }
        m.append(("general.quantization_version", .uint32(2)))
        return m
    }
}

/// The tokenizer part of the metadata: a GGUF source's `tokenizer.*` keys as they are, or those of a
/// Hugging Face folder's tokenizer.json.
enum GGUFTokenizerMetadata {
    static func keys(for checkpoint: Checkpoint, vocabSize: Int?) throws -> [(String, GGUFValue)] {
        if let gguf = checkpoint.source as? GGUFFile {
            return gguf.metadataKeys.filter { $0.hasPrefix("tokenizer.") }.map { ($0, gguf.metadata[$0]!) }
        }
        return try GGUFTokenizerKeys.keys(folder: checkpoint.path, vocabSize: vocabSize)
    }
}
