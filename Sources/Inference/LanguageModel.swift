import Architectures
import Checkpoints
import Foundation
import Numerics

/// Where a `HiddenStateTap` is called during the forward pass.
public enum HiddenStatePoint: Sendable, Equatable {
    /// The residual stream entering decoder layer `i` (i = 0 is the token embedding; the input of
    /// layer i is the output of layer i − 1).
    case layerInput(Int)
    /// What decoder layer `i`'s feed-forward block (MLP or mixture of experts) reads: the
    /// `post_attention_layernorm` output, which is also what a MoE router sees.
    case feedForwardInput(Int)
    /// The router logits of MoE layer `i`: rows of `[tokens, experts]` (before the softmax).
    case routerLogits(Int)
    /// The output of the final RMSNorm (what the LM head sees).
    case finalNorm
}

/// A run of consecutive rows of one forward call that belong to one sequence.
struct Segment {
    /// First row of the call.
    let row: Int
    let count: Int
    /// Position of the segment's first token in its sequence.
    let firstPosition: Int
    /// Cache row holding the sequence's position 0 (so position p's key is at `keyBase + p`).
    let keyBase: Int
    /// Every key is masked for these rows, so their attention output is zero: how PyTorch's scaled-dot-product
    /// attention treats the padding positions of a left-padded batch.
    let masked: Bool
}

/// Receives hidden states during `forward`: `rows` is `[tokens, hiddenSize]` row-major for the tokens
/// of that call (`[tokens, experts]` for router logits), valid only during the callback. Used for debugging and by MoE gate construction
/// (`gate_mode: hidden`), so both read exactly what the engine computes.
public typealias HiddenStateTap = (_ point: HiddenStatePoint, _ rows: UnsafeBufferPointer<Float>) -> Void

/// Logits for a run of positions: `values` is `[rows, vocabSize]` row-major.
public struct Logits: Sendable {
    public let rows: Int
    public let vocabSize: Int
    public var values: [Float]

    public init(rows: Int, vocabSize: Int, values: [Float]) {
        precondition(values.count == rows * vocabSize, "Logits: values must hold rows × vocabSize floats")
        self.rows = rows
        self.vocabSize = vocabSize
        self.values = values
    }

    /// The logits of row `r`.
    public func row(_ r: Int) -> ArraySlice<Float> {
        values[(r * vocabSize)..<((r + 1) * vocabSize)]
    }
}

/// A Llama-family causal language model run on the CPU in float32: Llama, Mistral (sliding window),
/// Qwen2 (q/k/v biases), tied embeddings, linear/llama3 RoPE scaling, explicit head_dim and Mixtral
/// sparse MoE, from any `TensorSource` (safetensors folder, GGUF file).
///
/// Weights are never held as a whole float32 model: each matrix is read in its stored form and, unless it
/// is float32 already, converted into a reused scratch just before its product. Not thread-safe: one
/// `forward` at a time per instance (it uses itself all the cores it is given).
public final class LanguageModel {
    public let config: ModelConfig
    public let source: TensorSource
    public let rope: RotaryEmbedding
    /// The sliding-window layers' RoPE when it differs from `rope` (Gemma 3), else nil.
    public let slidingRope: RotaryEmbedding?
    /// Cores used by matrix products and attention heads. During `forward` OpenBLAS runs single-threaded
    /// and the engine splits each product over these cores itself; afterwards OpenBLAS gets all cores back.
    public let threads: Int
    /// When true, every weight's mapped pages are handed back (`TensorSource.release`) right after its product,
    /// so only the weights in use stay resident. For callers that run several models one after another
    /// (`crucible score`): the file pages stay in the page cache and come back on the next window by minor faults.
    public var releasesWeightPages = false
    let layout: WeightLayout
    let reader: WeightReader

    // Activations, allocated once and grown on demand ("allocate once, reuse per token").
    private let residual = ScratchBuffer()   // [tokens, hidden]
    private let normed = ScratchBuffer()     // [tokens, hidden]
    private let query = ScratchBuffer()      // [tokens, heads * headDim]
    private let attention = ScratchBuffer()  // [tokens, heads * headDim]
    private let projected = ScratchBuffer()  // [tokens, hidden]
    private let gateActs = ScratchBuffer()   // [tokens, intermediate]
    private let upActs = ScratchBuffer()     // [tokens, intermediate]
    private let gathered = ScratchBuffer()   // [tokens, hidden] (MoE: rows routed to one expert)
    private let routerLogits = ScratchBuffer() // [tokens, experts]
    private var scores: [ScratchBuffer] = [] // per worker [queryBlock, keys]
    private var logitsStorage: [Float] = []  // [rows, vocab], reused when the caller no longer holds it
    // Weights in float32, one matrix at a time.
    private let matrixScratch = ScratchBuffer()
    private let vectorScratch = ScratchBuffer()
    private let biasScratch = ScratchBuffer()
    private let normScratch = ScratchBuffer()
    /// Stored-order outputs of a row-permuted GGUF matrix (Q/K) read in place.
    private let permutedScratch = ScratchBuffer()

    /// Query rows per attention task: blocks let causal attention skip the keys after the block.
    static let queryBlock = 64
    /// LM-head rows converted and multiplied at a time (bounds the float32 copy of a quantized head).
    static let headBlockRows = 4096

    /// Builds the model over `source`, checking every tensor the config implies (names, shapes, types).
    public init(source: TensorSource, config: ModelConfig,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        self.config = config
        self.source = source
        self.threads = max(1, threads)
        self.rope = RotaryEmbedding(config: config)
        self.slidingRope = config.slidingRope.map {
            RotaryEmbedding(theta: $0.theta, rotaryDimensions: config.rotaryDimensions > 0 ? config.rotaryDimensions : config.headDim,
                            scaling: $0.scaling)
        }
        self.layout = try WeightLayout(config: config, source: source)
        self.reader = WeightReader(source: source, threads: self.threads)
        scores = (0..<self.threads).map { _ in ScratchBuffer() }

    }

    /// Opens a checkpoint by path: a Hugging Face folder (`config.json` + safetensors) or a `.gguf` file
    /// (its metadata turned into the equivalent config, tensors served under Hugging Face names).
    public convenience init(path: String, threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        let checkpoint = try Checkpoint.open(path)
        var config = try ModelConfig(json: checkpoint.config, file: checkpoint.configPath)
        // llama.cpp keeps Llama 3.1 RoPE scaling as a `rope_freqs` tensor (one divisor per frequency),
        // which has no Hugging Face name and so is read here, from the file as stored.
        if let gguf = checkpoint.source as? GGUFFile, let freqs = gguf.rawTensor("rope_freqs.weight") {
            guard freqs.elementCount == config.headDim / 2 else {
                throw InferenceError.weightShape(tensor: "rope_freqs.weight", expected: [config.headDim / 2],
                                                 found: freqs.dims, checkpoint: path)
            }
            var divisors = [Float](repeating: 1, count: freqs.elementCount)
            try divisors.withUnsafeMutableBufferPointer {
                try gguf.readRawFloats("rope_freqs.weight", range: 0..<freqs.elementCount, into: $0.baseAddress!)
            }
            config.ropeScaling = .frequencyDivisors(divisors)
        }
        try self.init(source: checkpoint.source, config: config, threads: threads)
    }

    /// Opens a Hugging Face checkpoint folder (`config.json` + safetensors).
    public convenience init(folder path: String, threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        let folder = try CheckpointFolder(path: path)
        let config = try ModelConfig(json: folder.config, file: folder.configPath)
        try self.init(source: folder, config: config, threads: threads)
    }

    /// Frees the logits buffer kept between calls (it is refilled in place when the caller has dropped the
    /// previous logits). For callers that run several models one after another and need only one model's
    /// logits at a time: the next `forward` allocates a fresh buffer.
    public func releaseLogitsStorage() {
        logitsStorage = []
    }

    /// A KV cache sized for `capacity` positions of this model.
    public func makeCache(capacity: Int) -> KVCache {
        KVCache(config: config, capacity: capacity)
    }

    /// Runs `tokens` through the model at positions `cache.count ..< cache.count + tokens.count`
    /// (a fresh cache when nil), appending their keys and values to the cache.
    ///
    /// - Parameters:
    ///   - logitsFrom: the first of this call's positions whose logits are computed (the LM head is the
    ///     largest product; perplexity only needs the second half of a window). `tokens.count` skips it.
    ///   - tap: called with the residual entering each layer and the final-norm output.
    /// - Returns: logits for positions `logitsFrom ..< tokens.count` of this call.
    public func forward(_ tokens: [Int], cache: KVCache? = nil, logitsFrom: Int = 0,
                        tap: HiddenStateTap? = nil) throws -> Logits {
        let t = tokens.count
        guard t > 0 else { throw InferenceError.invalidArgument("forward needs at least one token") }
        guard logitsFrom >= 0, logitsFrom <= t else {
            throw InferenceError.invalidArgument("logitsFrom \(logitsFrom) is outside 0...\(t)")
        }
        let cache = cache ?? makeCache(capacity: t)
        let start = cache.count
        guard start + t <= cache.capacity else {
            throw InferenceError.contextOverflow(needed: start + t, capacity: cache.capacity)
        }
        guard cache.width == config.kvWidth, cache.keys.count == config.layerCount else {
            throw InferenceError.invalidArgument("the KV cache was made for \(cache.keys.count) layers of width \(cache.width), this "
                + "model has \(config.layerCount) of width \(config.kvWidth)")
        }
        try run(tokens, segments: [Segment(row: 0, count: t, firstPosition: start, keyBase: 0, masked: false)],
                cache: cache, cacheStart: start, tap: tap)
        cache.count = start + t
        return try outputLogits(normed: normed.pointer + logitsFrom * config.hiddenSize, rows: t - logitsFrom)
    }

    /// Runs several independent sequences in one call, each from position 0 and attending only to itself, as a
    /// padded batch would but without padding: every weight matrix is read once for all of them. `masked`
    /// sequences get a zero attention output (what the padding rows of a left-padded batch get in PyTorch).
    /// The tap sees the rows of all sequences, concatenated in order. No logits are computed.
    public func forwardPacked(_ sequences: [[Int]], masked: [Bool]? = nil, tap: HiddenStateTap?) throws {
        guard !sequences.isEmpty, sequences.allSatisfy({ !$0.isEmpty }) else {
            throw InferenceError.invalidArgument("forwardPacked needs one or more non-empty sequences")
        }
        if let masked, masked.count != sequences.count {
            throw InferenceError.invalidArgument("forwardPacked: \(masked.count) mask flags for \(sequences.count) sequences")
        }
        var segments: [Segment] = []
        var row = 0
        for (i, s) in sequences.enumerated() {
            segments.append(Segment(row: row, count: s.count, firstPosition: 0, keyBase: row, masked: masked?[i] ?? false))
            row += s.count
        }
        let cache = makeCache(capacity: row)
        try run(sequences.flatMap { $0 }, segments: segments, cache: cache, cacheStart: 0, tap: tap)
    }

    /// The decoder stack over `tokens` (rows of the call, split into `segments`), writing keys and values at cache
    /// rows `cacheStart...`; leaves the final-norm output in `normed`.
    private func run(_ tokens: [Int], segments: [Segment], cache: KVCache, cacheStart: Int, tap: HiddenStateTap?) throws {
        let c = config
        let t = tokens.count
        BLAS.setThreads(1)
        defer { BLAS.setThreads(ProcessInfo.processInfo.activeProcessorCount) }
        for (i, token) in tokens.enumerated() where token < 0 || token >= c.vocabSize {
            throw InferenceError.tokenOutOfRange(token: token, position: cacheStart + i, vocabSize: c.vocabSize)
        }

        let h = c.hiddenSize
        let x = residual.reserve(t * h)       // [t, hidden]
        let xn = normed.reserve(t * h)        // [t, hidden]
        let eps = Float(c.rmsNormEps)

        // Token embeddings: only the rows of the tokens present are converted.
        for (i, token) in tokens.enumerated() {
            let row = try reader.floats(layout.embedding, range: (token * h)..<((token + 1) * h), scratch: vectorScratch)
            (x + i * h).update(from: row, count: h)
        }
        if releasesWeightPages { source.release(layout.embedding) }
        if layout.scalesEmbedding {
            // Gemma: × √hidden, the constant rounded to the weights' float32 first as transformers does.
            let scale = Float(Double(h).squareRoot())
            for i in 0..<(t * h) { x[i] *= scale }
        }

        for (l, layer) in layout.layers.enumerated() {
            tap?(.layerInput(l), UnsafeBufferPointer(start: x, count: t * h))

            // h = x + o_proj(attention(rope(q), rope(k), v))  with q, k, v from input_layernorm(x)
            Kernels.rmsNorm(x, weight: try normWeight(layer.inputNorm, h), eps: eps, rows: t, width: h, into: xn, threads: threads)
            let q = query.reserve(t * c.queryWidth)
            try linear(layer.q, input: xn, rows: t, output: q, ldc: c.queryWidth)
            let keys = cache.keys[l] + cacheStart * c.kvWidth, values = cache.values[l] + cacheStart * c.kvWidth
            try linear(layer.k, input: xn, rows: t, output: keys, ldc: c.kvWidth)
            try linear(layer.v, input: xn, rows: t, output: values, ldc: c.kvWidth)
            // Qwen3 / Gemma 3: every query and key head normalised over head_dim before RoPE.
            if let qNorm = layer.queryNorm, let kNorm = layer.keyNorm {
                Kernels.rmsNorm(q, weight: try normWeight(qNorm, c.headDim), eps: eps, rows: t * c.headCount, width: c.headDim,
                                into: q, threads: threads)
                Kernels.rmsNorm(keys, weight: try normWeight(kNorm, c.headDim), eps: eps, rows: t * c.kvHeadCount, width: c.headDim,
                                into: keys, threads: threads)
            }
            let rope = c.window(layer: l) != nil ? (slidingRope ?? self.rope) : self.rope
            // SmolLM3: some layers apply no RoPE at all.
            for s in segments where c.ropeLayers.map({ l >= $0.count || $0[l] }) ?? true {
                rope.apply(q + s.row * c.queryWidth, rows: s.count, rowStride: c.queryWidth, heads: c.headCount, headDim: c.headDim,
                           firstPosition: s.firstPosition, sequenceEnd: s.firstPosition + s.count, threads: threads)
                rope.apply(keys + s.row * c.kvWidth, rows: s.count, rowStride: c.kvWidth, heads: c.kvHeadCount, headDim: c.headDim,
                           firstPosition: s.firstPosition, sequenceEnd: s.firstPosition + s.count, threads: threads)
            }
            let attn = attention.reserve(t * c.queryWidth)
            attend(query: q, layer: l, cache: cache, segments: segments, output: attn)
            let o = projected.reserve(t * h)
            try linear(layer.o, input: attn, rows: t, output: o, ldc: h)
            if let outNorm = layer.attentionOutputNorm {
                Kernels.rmsNorm(o, weight: try normWeight(outNorm, h), eps: eps, rows: t, width: h, into: o, threads: threads)
            }
            Kernels.add(x, o, count: t * h)

            // x = h + ffn(post_attention_layernorm(h))   (Gemma: pre_feedforward_layernorm, and the output normalised)
            Kernels.rmsNorm(x, weight: try normWeight(layer.postAttentionNorm, h), eps: eps, rows: t, width: h, into: xn,
                            threads: threads)
            tap?(.feedForwardInput(l), UnsafeBufferPointer(start: xn, count: t * h))
            switch layer.feedForward {
            case let .dense(mlp):
                try swiGLU(mlp, input: xn, rows: t, output: o)
                if let outNorm = layer.feedForwardOutputNorm {
                    Kernels.rmsNorm(o, weight: try normWeight(outNorm, h), eps: eps, rows: t, width: h, into: o, threads: threads)
                }
                Kernels.add(x, o, count: t * h)
            case let .mixture(moe):
                try mixtureOfExperts(moe, layer: l, input: xn, rows: t, residual: x, tap: tap)
            }
        }

        Kernels.rmsNorm(x, weight: try normWeight(layout.finalNorm, h), eps: eps, rows: t, width: h, into: xn, threads: threads)
        tap?(.finalNorm, UnsafeBufferPointer(start: xn, count: t * h))
    }

    // MARK: - Blocks

    /// An RMSNorm weight as the norm applies it: `w`, or `1 + w` for families that store the offset out (Gemma).
    private func normWeight(_ name: String, _ width: Int) throws -> UnsafePointer<Float> {
        let w = try reader.floats(name, range: 0..<width, scratch: vectorScratch)
        guard layout.normWeightOffset != 0 else { return w }
        let out = normScratch.reserve(width)
        for i in 0..<width { out[i] = w[i] + layout.normWeightOffset }
        return UnsafePointer(out)
    }

    /// `output[rows, w.rows] = input[rows, w.cols] · Wᵀ (+ bias)`, output rows `ldc` apart.
    /// One row (one-token decoding) is multiplied straight from a GGUF matrix's stored blocks when a kernel reads its
    /// type (`StoredMatVec`); otherwise the float32 weights go through sgemm.
    private func linear(_ w: LinearWeight, input: UnsafePointer<Float>, rows: Int,
                        output: UnsafeMutablePointer<Float>, ldc: Int) throws {
        if rows == 1, let stored = reader.storedRows(w.tensor, range: w.elements, rowLength: w.cols),
           StoredMatVec.apply(stored, cols: w.cols, x: input, y: output, threads: threads, permuted: permutedScratch) {
            // done in place
        } else {
            let weight = try reader.floats(w.tensor, range: w.elements, scratch: matrixScratch)
            product(input, weight, output, m: rows, n: w.rows, k: w.cols, ldc: ldc)
        }
        if let biasName = w.bias {
            let bias = try reader.floats(biasName, range: 0..<w.rows, scratch: biasScratch)
            Kernels.addBias(output, bias: bias, rows: rows, width: w.rows, stride: ldc)
        }
        if releasesWeightPages { source.release(w.tensor) }
    }

    /// `c[m, n] = a[m, k] · b[n, k]ᵀ` (c rows `ldc` apart), the n output columns split over the cores, each
    /// part a single-threaded sgemm. Sharing the cores out ourselves (instead of OpenBLAS's own threads)
    /// keeps idle workers blocked rather than spinning, which matters on a machine shared with other work.
    private func product(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                         m: Int, n: Int, k: Int, ldc: Int) {
        let parts = m * n * k >= 1 << 18 ? min(threads, max(1, n / 16)) : 1
        if parts == 1 {
            BLAS.sgemm(transA: false, transB: true, m: m, n: n, k: k, alpha: 1,
                       a: a, lda: k, b: b, ldb: k, beta: 0, c: c, ldc: ldc)
            return
        }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            // Column boundaries on multiples of 16 keep the kernels' vector tiles whole.
            let n0 = (n * part / parts) & ~15, n1 = part == parts - 1 ? n : (n * (part + 1) / parts) & ~15
            guard n1 > n0 else { return }
            BLAS.sgemm(transA: false, transB: true, m: m, n: n1 - n0, k: k, alpha: 1,
                       a: a, lda: k, b: b + n0 * k, ldb: k, beta: 0, c: c + n0, ldc: ldc)
        }
    }

    /// `down_proj(silu(gate_proj(x)) * up_proj(x))` into `output[rows, hidden]`.
    private func swiGLU(_ mlp: ExpertWeights, input: UnsafePointer<Float>, rows: Int,
                        output: UnsafeMutablePointer<Float>) throws {
        let width = mlp.gate.rows
        let gate = gateActs.reserve(rows * width), up = upActs.reserve(rows * width)
        try linear(mlp.gate, input: input, rows: rows, output: gate, ldc: width)
        try linear(mlp.up, input: input, rows: rows, output: up, ldc: width)
        switch config.activation {
        case .silu: Kernels.siluMultiply(gate, up, count: rows * width, threads: threads)
        case .geluTanh: Kernels.geluTanhMultiply(gate, up, count: rows * width, threads: threads)
        }
        try linear(mlp.down, input: gate, rows: rows, output: output, ldc: mlp.down.rows)
    }

    /// Sparse mixture of experts as transformers computes it for Mixtral (Jiang et al., "Mixtral of Experts", 2024)
    /// and Qwen-MoE: `p = softmax(router(x))`, the top-k experts by p, their p renormalised to sum 1 when
    /// `normalizeTopK` (always for Mixtral), `out = Σ p_e · expert_e(x)`; Qwen-MoE adds
    /// `sigmoid(shared_expert_gate(x)) · shared_expert(x)`. Rows are grouped per expert so each expert is one matrix
    /// product over the tokens routed to it. Adds the result to `residual`.
    private func mixtureOfExperts(_ moe: MixtureWeights, layer: Int, input: UnsafePointer<Float>, rows: Int,
                                  residual: UnsafeMutablePointer<Float>, tap: HiddenStateTap?) throws {
        let h = config.hiddenSize, e = moe.experts.count
        let logits = routerLogits.reserve(rows * e)
        try linear(moe.router, input: input, rows: rows, output: logits, ldc: e)
        tap?(.routerLogits(layer), UnsafeBufferPointer(start: logits, count: rows * e))
        var assigned: [[(row: Int, weight: Float)]] = Array(repeating: [], count: e)
        var order = [Int](repeating: 0, count: e)
        for r in 0..<rows {
            let p = logits + r * e
            Kernels.softmax(p, count: e)
            for i in 0..<e { order[i] = i }
            // Stable: equal probabilities keep the lower expert index first.
            order.sort { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }
            var total: Float = 1
            if moe.normalizeTopK {
                total = 0
                for i in 0..<moe.topK { total += p[order[i]] }
            }
            for i in 0..<moe.topK { assigned[order[i]].append((r, p[order[i]] / total)) }
        }
        for (index, expert) in moe.experts.enumerated() where !assigned[index].isEmpty {
            let routed = assigned[index]
            let n = routed.count
            let xs = gathered.reserve(n * h)
            for (i, item) in routed.enumerated() { (xs + i * h).update(from: input + item.row * h, count: h) }
            let out = projected.reserve(n * h)
            try swiGLU(expert, input: xs, rows: n, output: out)
            for (i, item) in routed.enumerated() {
                let dst = residual + item.row * h, src = out + i * h
                for j in 0..<h { dst[j] += item.weight * src[j] }
            }
        }
        if let shared = moe.shared {
            let out = projected.reserve(rows * h)
            try swiGLU(shared.expert, input: input, rows: rows, output: out)
            let gate = routerLogits.reserve(rows)
            try linear(shared.gate, input: input, rows: rows, output: gate, ldc: 1)
            for r in 0..<rows {
                let g = 1 / (1 + expf(-gate[r]))
                let dst = residual + r * h, src = out + r * h
                for j in 0..<h { dst[j] += g * src[j] }
            }
        }
    }

    /// Causal (optionally sliding-window) grouped-query attention of each segment's queries against the cached
    /// keys of its own sequence: `softmax(q·Kᵀ/√d + mask)·V` per head in float32. Query head h reads key/value head
    /// h / (heads / kvHeads). Work is split over (segment, head, query block) triples, each block only touching the
    /// keys it can see. Masked segments get zeros.
    private func attend(query q: UnsafePointer<Float>, layer: Int, cache: KVCache, segments: [Segment],
                        output: UnsafeMutablePointer<Float>) {
        let c = config
        let d = c.headDim, qw = c.queryWidth, kw = c.kvWidth
        let keys = UnsafePointer(cache.keys[layer]), values = UnsafePointer(cache.values[layer])
        let block = Self.queryBlock
        var tasks: [(segment: Int, head: Int, r0: Int)] = []
        var widest = 0
        for (i, s) in segments.enumerated() {
            if s.masked {
                for r in 0..<s.count { (output + (s.row + r) * qw).update(repeating: 0, count: qw) }
                continue
            }
            widest = max(widest, s.firstPosition + s.count)
            for head in 0..<c.headCount {
                for r0 in stride(from: 0, to: s.count, by: block) { tasks.append((i, head, r0)) }
            }
        }
        guard !tasks.isEmpty else { return }
        let scale = c.attentionScale.map { Float($0) } ?? 1 / Float(d).squareRoot()
        let window = c.window(layer: layer)
        let softCap = c.attentionSoftCap.map { Float($0) }
        let workers = min(threads, tasks.count)
        let buffers = (0..<workers).map { scores[$0].reserve(block * widest) }

        // Each worker calls single-threaded sgemm; the cores are shared out by task.
        let run = { (worker: Int) in
            let buffer = buffers[worker]
            var next = worker
            while next < tasks.count {
                let (si, head, r0) = tasks[next]
                next += workers
                let s = segments[si]
                let kvHead = head / c.headsPerKVHead
                let r1 = min(s.count, r0 + block), m = r1 - r0
                let p0 = s.firstPosition + r0, p1 = s.firstPosition + r1
                let lo = window.map { max(0, p0 - $0 + 1) } ?? 0
                let n = p1 - lo
                let k0 = keys + (s.keyBase + lo) * kw + kvHead * d, v0 = values + (s.keyBase + lo) * kw + kvHead * d
                let qRows = q + (s.row + r0) * qw + head * d
                // scores[m, n] = q_block · K[lo..<p1]ᵀ / √d
                BLAS.sgemm(transA: false, transB: true, m: m, n: n, k: d, alpha: scale,
                           a: qRows, lda: qw, b: k0, ldb: kw, beta: 0, c: buffer, ldc: n)
                for i in 0..<m {
                    let position = p0 + i
                    let first = window.map { max(lo, position - $0 + 1) } ?? 0
                    let row = buffer + i * n
                    let visible = (first - lo)..<(position - lo + 1)
                    for j in 0..<visible.lowerBound { row[j] = 0 }
                    if let cap = softCap {
                        for j in visible { row[j] = cap * tanhf(row[j] / cap) }
                    }
                    Kernels.softmax(row + visible.lowerBound, count: visible.count)
                    for j in visible.upperBound..<n { row[j] = 0 }
                }
                // out[m, d] = P[m, n] · V[lo..<p1]
                BLAS.sgemm(transA: false, transB: false, m: m, n: d, k: n, alpha: 1,
                           a: buffer, lda: n, b: v0, ldb: kw, beta: 0, c: output + (s.row + r0) * qw + head * d, ldc: qw)
            }
        }
        if workers == 1 {
            run(0)
        } else {
            DispatchQueue.concurrentPerform(iterations: workers, execute: run)
        }
    }

    /// `logits[rows, vocab] = normed · headᵀ`, streaming the head (lm_head or the tied embedding) in
    /// row blocks so a quantized head is never converted whole.
    private func outputLogits(normed: UnsafePointer<Float>, rows: Int) throws -> Logits {
        let v = config.vocabSize, h = config.hiddenSize
        guard rows > 0 else { return Logits(rows: 0, vocabSize: v, values: []) }
        // The storage is kept between calls: once the caller has dropped the previous logits the array is
        // uniquely referenced again and is refilled in place (no fresh 50 MB, no page faults, per window).
        if logitsStorage.count != rows * v { logitsStorage = [Float](repeating: 0, count: rows * v) }
        try logitsStorage.withUnsafeMutableBufferPointer { out in
            var r0 = 0
            if rows == 1, let stored = reader.storedRows(layout.outputHead, range: 0..<(v * h), rowLength: h),
               StoredMatVec.apply(stored, cols: h, x: normed, y: out.baseAddress!, threads: threads, permuted: permutedScratch) {
                r0 = v
            }
            while r0 < v {
                let r1 = min(v, r0 + Self.headBlockRows)
                let block = try reader.floats(layout.outputHead, range: (r0 * h)..<(r1 * h), scratch: matrixScratch)
                product(normed, block, out.baseAddress! + r0, m: rows, n: r1 - r0, k: h, ldc: v)
                // Block by block: the head is the largest matrix (a tied 49,152-row embedding is 57 MB in BF16).
                if releasesWeightPages { source.release(layout.outputHead) }
                r0 = r1
            }
            if let cap = config.finalLogitSoftCap.map({ Float($0) }) {
                for i in 0..<(rows * v) { out[i] = cap * tanhf(out[i] / cap) }
            }
        }
        return Logits(rows: rows, vocabSize: v, values: logitsStorage)
    }
}

extension LanguageModel {
    /// Whether one-token decoding reads `tensor` in place (`StoredMatVec`) rather than from a float32 copy.
    func readsInPlace(_ tensor: String) -> Bool {
        guard let info = source.info(tensor), info.shape.count == 2 else { return false }
        return reader.storedRows(tensor, range: 0..<info.elementCount, rowLength: info.rowLength) != nil
    }

    /// The hidden states at the last position of `tokens` (run from position 0, no LM head): element
    /// l < layerCount is the residual stream entering layer l (l = 0 is the token embedding), element
    /// layerCount is the final-norm output. This is what mergekit-moe's `gate_mode: hidden` averages
    /// over prompts (in float32 here).
    public func lastPositionHiddenStates(_ tokens: [Int]) throws -> [[Float]] {
        let h = config.hiddenSize
        var states = [[Float]](repeating: [], count: config.layerCount + 1)
        _ = try forward(tokens, logitsFrom: tokens.count) { point, rows in
            let index: Int
            switch point {
            case let .layerInput(l): index = l
            case .finalNorm: index = self.config.layerCount
            case .feedForwardInput, .routerLogits: return
            }
            states[index] = Array(rows[(rows.count - h)..<rows.count])
        }
        return states
    }
}
