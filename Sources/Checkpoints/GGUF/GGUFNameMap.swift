import ArchitectureDefinitions

/// A canonical tensor served from (part of) one stored GGUF tensor.
struct GGUFServedTensor: Sendable {
    /// Hugging Face name, shape (outermost first) and the type values are read as.
    let info: TensorInfo
    /// Index into `GGUFFile.rawTensors`.
    let raw: Int
    /// First stored element (non-zero for one expert of a stacked `*_exps` tensor).
    let elementOffset: Int
    /// Set for Llama Q/K projections: the head count of llama.cpp's row permutation, to be undone on read.
    let permutedHeads: Int?
    /// Subtracted from every value on read: Gemma's RMSNorm weights, which llama.cpp's converter stores as 1 + w.
    var shift: Float = 0
}

/// Maps llama.cpp's tensor names and layouts to the Hugging Face ones, once, at the border.
///
/// The names come from the GGUF conventions of the file's `ArchitectureDefinition` (llama.cpp's `llama-arch.cpp`
/// tables: `token_embd`, `blk.%d.attn_q`, `blk.%d.ffn_gate_exps`...); a file of another architecture is served
/// through the Llama family's table. GGUF lists dimensions innermost first, so shapes are reversed. Where the
/// definition says so (the `llama` architecture) the converter (`convert_hf_to_gguf.py`, `LlamaModel.permute`)
/// reorders the rows of Q and K (weights and biases) within each head from the rotate-half RoPE layout to the
/// interleaved one: row `h·d + i·d/2 + j` of Hugging Face's tensor (head `h`, half `i`, pair `j`, head size `d`)
/// is stored at row `h·d + 2j + i`. Reading undoes it.
public enum GGUFNameMap {
    /// Tensors llama.cpp derives from the config (RoPE frequency factors); Hugging Face has no counterpart.
    static func isDerived(_ name: String) -> Bool {
        name.hasPrefix("rope_freqs.") || name.hasPrefix("rope_factors_") || name.hasSuffix(".attn_rot_embd")
    }

    /// The stored GGUF row of Hugging Face row `row` of a Q or K tensor with `rows` rows and `heads` heads.
    @inline(__always)
    static func storedRow(_ row: Int, rows: Int, heads: Int) -> Int {
        let headDim = rows / heads
        let half = headDim / 2
        let h = row / headDim
        let rem = row - h * headDim
        let i = rem / half
        let j = rem - i * half
        return h * headDim + 2 * j + i
    }

    /// The Hugging Face row stored at GGUF row `stored` (the inverse of `storedRow`), for a head size `headDim`.
    @inline(__always)
    public static func hfRow(stored: Int, headDim: Int) -> Int {
        let h = stored / headDim, rem = stored % headDim
        return h * headDim + (rem % 2) * (headDim / 2) + rem / 2
    }

    /// The Hugging Face tensors served by a file, in file order (stacked experts expanded in expert order).
    static func canonicalTensors(_ raws: [GGUFTensorInfo], metadata: [String: GGUFValue], file: String) throws -> [GGUFServedTensor] {
        let arch = metadata["general.architecture"]?.stringValue ?? ""
        let experts = metadata["\(arch).expert_count"]?.intValue ?? 0
        let gguf = ArchitectureDefinition.forGGUF(architecture: arch, hasExperts: experts > 0)?.gguf
        let names = gguf?.names ?? LlamaFamily.ggufNames
        let permutes = gguf?.permutesQK ?? false
        let normShift = gguf?.normWeightShift ?? 0
        var result: [GGUFServedTensor] = []
        var taken = Set<String>()

        func add(_ name: String, _ shape: [Int], _ raw: Int, _ t: GGUFTensorInfo, offset: Int = 0, heads: Int? = nil,
                 shift: Float = 0) throws {
            guard taken.insert(name).inserted else {
                throw CheckpointError.invalidHeader(file: file,
                                                    reason: "two tensors map to the Hugging Face name '\(name)' (second: '\(t.name)')")
            }
            // Plain types keep their dtype (an I32 tensor is served as i32, so nothing merges it as floats);
            // quantized ones are served as the float32 they dequantize to.
            let dtype = t.type.plainDType ?? .f32
            result.append(GGUFServedTensor(info: TensorInfo(name: name, dtype: dtype, shape: shape, storage: t.type.name),
                                           raw: raw, elementOffset: offset, permutedHeads: heads, shift: shift))
        }

        /// Head count for layer `layer` from `<arch>.attention.<key>` (a number or a per-layer array).
        func headCount(_ key: String, layer: Int) -> Int? {
            guard let v = metadata["\(arch).attention.\(key)"] else { return nil }
            if let n = v.intValue { return n }
            if let a = v.intArray, layer < a.count { return a[layer] }
            return nil
        }

        for (index, t) in raws.enumerated() {
            let shape = Array(t.dims.reversed())
            if let global = names.global[t.name] {
                try add(global, shape, index, t, shift: global.hasSuffix("norm.weight") ? normShift : 0)
                continue
            }
            if isDerived(t.name) { continue }
            guard let (layer, base, expert, suffix) = parseLayerName(t.name) else {
                try add(t.name, shape, index, t)   // unknown: served under its GGUF name
                continue
            }
            if let expert {
                // Older Mixtral files: one tensor per expert, `blk.N.ffn_gate.E.weight`.
                guard let hf = names.hfName(layer: layer, base: base, expert: expert, suffix: suffix) else {
                    try add(t.name, shape, index, t)
                    continue
                }
                try add(hf, shape, index, t)
                continue
            }
            if base.hasSuffix("_exps"), names.expert[String(base.dropLast(5))] != nil {
                // Stacked experts: GGUF dims [inner, outer, experts] → per expert HF [outer, inner].
                guard t.dims.count == 3 else {
                    throw CheckpointError.invalidTensor(file: file, tensor: t.name,
                        reason: "stacked expert tensor has \(t.dims.count) dimensions, expected 3")
                }
                // The expert dimension is a loop bound: it must be the declared expert count.
                let declared = metadata["\(arch).expert_count"]?.intValue
                guard let declared, declared == t.dims[2] else {
                    throw CheckpointError.invalidTensor(file: file, tensor: t.name,
                        reason: "stacked expert tensor holds \(t.dims[2]) experts but \(arch).expert_count is "
                            + (declared.map(String.init) ?? "missing"))
                }
                let perExpert = t.dims[0] * t.dims[1]
                for e in 0..<t.dims[2] {
                    let hf = names.hfName(layer: layer, base: String(base.dropLast(5)), expert: e, suffix: suffix)!
                    try add(hf, [t.dims[1], t.dims[0]], index, t, offset: e * perExpert)
                }
                continue
            }
            guard let hf = names.hfName(layer: layer, base: base, suffix: suffix) else { try add(t.name, shape, index, t); continue }
            var heads: Int? = nil
            if permutes, base == "attn_q" || base == "attn_k" {
                let key = base == "attn_q" ? "head_count" : "head_count_kv"
                guard let n = headCount(key, layer: layer) ?? (base == "attn_k" ? headCount("head_count", layer: layer) : nil),
                      n > 0 else {
                    throw CheckpointError.invalidHeader(file: file,
                        reason: "\(arch).attention.head_count is missing, so the Q/K rows of '\(t.name)' cannot be restored")
                }
                let rows = shape.first ?? 0
                guard rows % (2 * n) == 0 else {
                    throw CheckpointError.invalidTensor(file: file, tensor: t.name,
                        reason: "\(rows) rows cannot be split into \(n) heads of even size to undo the Q/K permutation")
                }
                heads = n
            }
            try add(hf, shape, index, t, heads: heads, shift: hf.hasSuffix("norm.weight") ? normShift : 0)
        }
        return result
    }

    /// Splits `blk.N.base.suffix` or `blk.N.base.E.suffix` (per-expert) into its parts.
    static func parseLayerName(_ name: String) -> (layer: Int, base: String, expert: Int?, suffix: String)? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 || parts.count == 5, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0 else { return nil }
        if parts.count == 4 { return (layer, String(parts[2]), nil, String(parts[3])) }
        guard let e = Int(parts[3]), e >= 0 else { return nil }
        return (layer, String(parts[2]), e, String(parts[4]))
    }
}
