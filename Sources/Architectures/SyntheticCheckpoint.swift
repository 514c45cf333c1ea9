import ArchitectureDefinitions
import Checkpoints
import Foundation
import Host
import Numerics
import Tokenization

/// Random but valid Hugging Face checkpoints: the project's own way to make parents for examples, tests and
/// benchmarks. Same preset, seed and dtype give the same bytes on any machine and thread count.
public enum SyntheticCheckpoint {
    public struct Shape: Sendable {
        public var hidden: Int
        public var intermediate: Int
        public var layers: Int
        public var heads: Int
        public var kvHeads: Int
        public var vocab: Int
        public var tied: Bool
        public var ropeTheta: Double
        public var maxPositions: Int

        public var headDim: Int { hidden / heads }
    }

    /// Named shapes: `smollm2-135m` (SmolLM2-135M's dimensions) and `tiny` (for tests).
    public static let presets: [String: Shape] = [
        "smollm2-135m": Shape(hidden: 576, intermediate: 1536, layers: 30, heads: 9, kvHeads: 3, vocab: 49152, tied: true,
                              ropeTheta: 100_000, maxPositions: 8192),
        "tiny": Shape(hidden: 64, intermediate: 192, layers: 4, heads: 4, kvHeads: 2, vocab: 512, tied: false,
                      ropeTheta: 10_000, maxPositions: 2048),
    ]

    public struct SynthError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The architectures `synth` can write: those whose definition says how, with one weight table.
    static func definition(_ arch: String) -> ArchitectureDefinition? {
        ArchitectureDefinition.all.first { $0.modelType == arch && $0.synth != nil && $0.weightTables.count == 1 }
    }

    public static var architectures: [String] {
        ArchitectureDefinition.all.compactMap { definition($0.modelType)?.modelType }
    }

    /// Shapes of every tensor of an architecture with these dimensions, in output order.
    static func tensors(_ table: WeightTable, _ s: Shape) -> [(String, [Int])] {
        let q = s.heads * s.headDim, kv = s.kvHeads * s.headDim
        func shape(_ name: String) -> [Int]? {
            switch true {
            case name.hasSuffix("embed_tokens.weight"), name == "lm_head.weight": return [s.vocab, s.hidden]
            case name.hasSuffix("q_norm.weight"), name.hasSuffix("k_norm.weight"): return [s.headDim]
            case name.hasSuffix("qkv_proj.weight"): return [q + 2 * kv, s.hidden]
            case name.hasSuffix("gate_up_proj.weight"): return [2 * s.intermediate, s.hidden]
            case name.hasSuffix("norm.weight"): return [s.hidden]
            case name.hasSuffix("q_proj.weight"): return [q, s.hidden]
            case name.hasSuffix("k_proj.weight"), name.hasSuffix("v_proj.weight"): return [kv, s.hidden]
            case name.hasSuffix("o_proj.weight"): return [s.hidden, q]
            case name.hasSuffix("q_proj.bias"): return [q]
            case name.hasSuffix("k_proj.bias"), name.hasSuffix("v_proj.bias"): return [kv]
            case name.hasSuffix("gate_proj.weight"), name.hasSuffix("up_proj.weight"): return [s.intermediate, s.hidden]
            case name.hasSuffix("down_proj.weight"): return [s.hidden, s.intermediate]
            default: return nil
            }
        }
        var out: [(String, [Int])] = []
        for w in table.preWeights { out.append((w.name, shape(w.name)!)) }
        for l in 0..<s.layers {
            for (name, w) in table.layerWeightNames(layer: l, experts: 0) where !w.optional {
                out.append((name, shape(name)!))
            }
        }
        for w in table.postWeights where !(s.tied && w.name == "lm_head.weight") { out.append((w.name, shape(w.name)!)) }
        return out
    }

    static func config(_ def: ArchitectureDefinition, _ s: Shape, dtype: DType) -> JSONObject {
        var c = JSONObject()
        c["architectures"] = .array([.string(def.className)])
        c["model_type"] = .string(def.modelType)
        c["hidden_size"] = .int(Int64(s.hidden))
        c["intermediate_size"] = .int(Int64(s.intermediate))
        c["num_hidden_layers"] = .int(Int64(s.layers))
        c["num_attention_heads"] = .int(Int64(s.heads))
        c["num_key_value_heads"] = .int(Int64(s.kvHeads))
        c["head_dim"] = .int(Int64(s.headDim))
        c["vocab_size"] = .int(Int64(s.vocab))
        c["max_position_embeddings"] = .int(Int64(s.maxPositions))
        c["rms_norm_eps"] = .double(1e-5)
        c["rope_theta"] = .double(s.ropeTheta)
        c["rope_scaling"] = .null
        if def.config.activationKey == "hidden_act" { c["hidden_act"] = .string("silu") }
        c["tie_word_embeddings"] = .bool(s.tied)
        c["attention_bias"] = .bool(def.config.attentionBias)
        c["bos_token_id"] = .int(1)
        c["eos_token_id"] = .int(2)
        c["torch_dtype"] = .string(dtype.torchName)
        guard let synth = def.synth else { return c }
        for key in synth.nullKeys { c[key] = .null }
        for (key, v) in synth.numberKeys { c[key] = v.rounded() == v ? .int(Int64(v)) : .double(v) }
        for (key, v) in synth.stringKeys { c[key] = .string(v) }
        if synth.queryPreAttnScalarIsHeadDim { c["query_pre_attn_scalar"] = .int(Int64(s.headDim)) }
        // layer_types, for the families whose table keeps it by position: the family's sliding pattern, else all full.
        if def.weightTables.first?.positionalConfigArrays.contains(where: { $0.key == "layer_types" }) == true {
            let pattern = def.config.slidingPattern
            let period = pattern?.periodKey.flatMap { synth.numberKeys[$0].map(Int.init) } ?? pattern?.period
            c["layer_types"] = .array((0..<s.layers).map { l in
                .string(period.map { (l + 1) % $0 != 0 } == true ? "sliding_attention" : "full_attention")
            })
        }
        return c
    }

    /// Writes a random checkpoint with `preset` dimensions.
    public static func write(arch: String, preset: String, seed: UInt64, dtype: DType, to folder: String) throws {
        guard let def = definition(arch) else {
            throw SynthError(description: "synth: unknown architecture '\(arch)'; choose \(architectures.joined(separator: ", "))")
        }
        guard let shape = presets[preset] else {
            throw SynthError(description: "synth: unknown preset '\(preset)'; choose \(presets.keys.sorted().joined(separator: ", "))")
        }
        let specs = tensors(def.weightTables[0], shape)
        let offset = def.forward.normWeightOffset
        try writeFolder(folder, config: config(def, shape, dtype: dtype), dtype: dtype, specs: specs) { name, shape, dest, range in
            fillRandom(name: name, shape: shape, hidden: Float(shape.last ?? 1), seed: seed, dest: dest, range: range)
            // Families that apply norms as (offset + w) store w near 1 − offset.
            if offset != 0, name.hasSuffix("norm.weight") { for i in 0..<range.count { dest[i] -= offset } }
        }
    }

    /// Writes a "fine-tune" of `base` (a folder or a GGUF file): every float tensor W becomes
    /// W + delta · rms(W) · N(0, 1), seeded.
    public static func writeFineTune(of basePath: String, delta: Float, seed: UInt64, dtype: DType?, to folder: String) throws {
        let checkpoint = try Checkpoint.open(basePath)
        let base = checkpoint.source
        let specs = base.tensorNames.map { ($0, base.info($0)!.shape) }
        let outDType = dtype ?? base.info(specs[0].0)!.dtype
        var config = checkpoint.config
        config["torch_dtype"] = .string(outDType.torchName)
        if config["dtype"] != nil { config["dtype"] = .string(outDType.torchName) }
        try writeFolder(folder, config: config, dtype: outDType, specs: specs) { name, shape, dest, range in
            let n = shape.reduce(1, *)
            var all = [Float](repeating: 0, count: n)
            try base.readFloats(name, range: 0..<n, into: &all)
            var sq = 0.0
            for v in all { sq += Double(v) * Double(v) }
            let rms = Float((sq / Double(max(n, 1))).squareRoot())
            fillRandom(name: name + "#delta", shape: shape, hidden: 1, seed: seed, dest: dest, range: range, std: 1)
            for i in range { dest[i - range.lowerBound] = all[i] + delta * rms * dest[i - range.lowerBound] }
        }
        try copyTokenizer(from: checkpoint, to: folder)
    }

    /// Gives a fine-tune its base's tokenizer: the files of a folder, or the Hugging Face export of a GGUF vocabulary
    /// (a vocabulary the export cannot convert leaves the fine-tune without tokenizer files).
    static func copyTokenizer(from checkpoint: Checkpoint, to folder: String) throws {
        do {
            try TokenizerFileSet.write(from: checkpoint.source, path: checkpoint.path, into: folder)
        } catch is GGUFTokenizerExportError {}
    }

    private static let blockRows = 4096 * 64

    /// Values for elements `range` of tensor `name`: norms ≈ 1, everything else Gaussian with HF-like scale.
    static func fillRandom(name: String, shape: [Int], hidden: Float, seed: UInt64, dest: UnsafeMutablePointer<Float>,
                           range: Range<Int>, std: Float? = nil) {
        let isNorm = name.hasSuffix("norm.weight")
        let sigma: Float = std ?? (isNorm ? 0.05 : (name.contains("embed") || name == "lm_head.weight" ? 0.02 : 1 / hidden.squareRoot()))
        // Each block of elements has its own stream, so any split of the work gives the same values.
        let block = blockRows
        var i = range.lowerBound
        while i < range.upperBound {
            let b = i / block
            var rng = SplitMix64(seed: seed, stream: "\(name)@\(b)")
            let blockStart = b * block
            // Skip to i within the block.
            for _ in blockStart..<i { _ = rng.nextGaussian() }
            let end = min(range.upperBound, blockStart + block)
            for j in i..<end {
                let g = rng.nextGaussian() * sigma
                dest[j - range.lowerBound] = isNorm && std == nil ? 1 + g : g
            }
            i = end
        }
    }

    static func writeFolder(_ folder: String, config: JSONObject, dtype: DType, specs: [(String, [Int])],
                            fill: @escaping (String, [Int], UnsafeMutablePointer<Float>, Range<Int>) throws -> Void) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let entries = specs.map { SafetensorsWriter.Entry(name: $0.0, dtype: dtype, shape: $0.1) }
        let writer = try SafetensorsWriter(path: (folder as NSString).appendingPathComponent("model.safetensors.partial"), entries: entries)
        let failure = FirstError()
        parallelFor(specs.count) { k in
            let (name, shape) = specs[k]
            let n = shape.reduce(1, *)
            var values = [Float](repeating: 0, count: n)
            var bytes = [UInt8](repeating: 0, count: n * dtype.byteSize)
            do {
                try values.withUnsafeMutableBufferPointer { try fill(name, shape, $0.baseAddress!, 0..<n) }
                values.withUnsafeBufferPointer { v in
                    bytes.withUnsafeMutableBytes { convertFromFloat(v.baseAddress!, count: n, to: dtype, into: $0.baseAddress!) }
                }
                try bytes.withUnsafeBytes { try writer.write(name, bytes: $0) }
            } catch {
                failure.record(error)
            }
        }
        try writer.finish()
        try failure.check()
        let final = (folder as NSString).appendingPathComponent("model.safetensors")
        try? fm.removeItem(atPath: final)
        try fm.moveItem(atPath: (folder as NSString).appendingPathComponent("model.safetensors.partial"), toPath: final)
        try (JSONValue.object(config).serialized(indent: 2, sortKeys: true) + "\n")
            .write(toFile: (folder as NSString).appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        var gen = JSONObject()
        gen["bos_token_id"] = config["bos_token_id"] ?? .int(1)
        gen["eos_token_id"] = config["eos_token_id"] ?? .int(2)
        try (JSONValue.object(gen).serialized(indent: 2) + "\n")
            .write(toFile: (folder as NSString).appendingPathComponent("generation_config.json"), atomically: true, encoding: .utf8)
    }
}

