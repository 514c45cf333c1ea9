import Recipes

/// `ram` and `ramplus_tl` (Reinforced Agent Merging). With task vectors δ_i = X_i − B, an element counts as changed by
/// model i when |δ_i| > ε. An element changed by exactly one model keeps that model's δ; one changed by several gets
/// the mean of their δs; one changed by none stays at the base value. `ramplus_tl` (tensor-local) multiplies each
/// model's unique changes by λ_i = 1 + r·clamp(ρ_i, 0, α), where ρ_i is the number of model i's changed elements
/// that others changed too, over the number only it changed, counted in this tensor.
/// Implements mergekit's `ram` and `ramplus_tl` (docs/methods.md), float32 arithmetic in torch's order.
public struct RAMMerge: MergeMethod {
    public static let ram = RAMMerge(tensorLocal: false)
    public static let ramPlusTensorLocal = RAMMerge(tensorLocal: true)

    /// Whether the unique changes are scaled by the tensor-local λ_i (`ramplus_tl`).
    public let tensorLocal: Bool

    public var name: String { tensorLocal ? "ramplus_tl" : "ram" }
    public var prettyName: String {
        tensorLocal ? "Reinforced Agent Merging Plus (Tensor-Local)" : "Reinforced Agent Merging"
    }
    public var referenceURL: String? { "https://arxiv.org/abs/2601.13572" }
    public var globalParameters: [ParameterDefinition] {
        let epsilon = ParameterDefinition("epsilon", default: .number(1e-5))
        guard tensorLocal else { return [epsilon] }
        return [ParameterDefinition("r", default: .number(0.1)), ParameterDefinition("alpha", default: .number(0.2)), epsilon]
    }
    public var perModelParameters: [ParameterDefinition] { [] }
    public var baseModel: BaseModelUse { .required }

    public func validate(inputCount: Int, hasBase: Bool) throws {
        guard hasBase else { throw MergeMethodError("\(name) needs base_model (task vectors are measured against it)") }
        try requireInputCount(name, inputCount, 1...Int.max, what: "base_model and the models to merge into it")
    }
}

/// RAM streamed: `ramplus_tl` first counts, per model, its shared and unique changed elements over blocks of every
/// input (integer counts, so the order does not matter); then one blockwise pass writes B + Σ_i term_i.
extension RAMMerge: StreamingMergeMethod {
    public func streamingScratchBytes(count: Int, inputCount: Int) -> Int { 0 }

    public func mergeStreaming(_ stream: StreamingMergeRequest, inputs reader: any MergeInputReader,
                               output writer: any MergeOutputWriter) throws -> [String] {
        let request = stream.parameterView
        let (baseIndex, others) = try stream.baseAndOthers(name)
        if others.isEmpty || stream.count == 0 { return try stream.copyThrough(baseIndex, inputs: reader, output: writer) }
        // torch compares and clamps float32 tensors against the Python float cast to float32.
        let epsilon = Float(try request.number(self, "epsilon"))
        let pass = RAMBlocks(stream: stream, reader: reader, baseIndex: baseIndex, others: others, epsilon: epsilon)
        var lambdas = [Float](repeating: 1, count: others.count)
        if tensorLocal {
            let r = Float(try request.number(self, "r")), alpha = Float(try request.number(self, "alpha"))
            let (shared, unique) = try pass.changeCounts()
            for k in others.indices {
                // rho = shared / unique.clamp(min: ε) in float32; clamp(0, α) gives α when α < 0, as torch's does.
                let rho = Float(shared[k]) / max(Float(unique[k]), epsilon)
                lambdas[k] = 1 + r * min(max(rho, 0), alpha)
            }
        }
        try pass.write(lambdas: lambdas, to: writer)
        return []
    }
}

/// The blockwise passes of RAM over the base and the other inputs: one workspace block per input.
private struct RAMBlocks {
    let stream: StreamingMergeRequest
    let others: [Int]
    let epsilon: Float
    /// The base's block, then the others'.
    let blocks: MultiBlockReader

    init(stream: StreamingMergeRequest, reader: any MergeInputReader, baseIndex: Int, others: [Int], epsilon: Float) {
        self.stream = stream
        self.others = others
        self.epsilon = epsilon
        blocks = MultiBlockReader(reader, inputs: [baseIndex] + others, of: stream)
    }

    /// Reads block `blk` of the base and of every other input; the pointers are offset so element i is at `[i]`.
    private func load(_ blk: Range<Int>) throws -> (base: UnsafePointer<Float>, others: [UnsafePointer<Float>]) {
        try blocks.read(blk)
        return (blocks.pointers[0], (1...others.count).map { blocks.pointers[$0] })
    }

    /// How many models changed element i (|x − b| > ε), for models `xs`.
    @inline(__always) private func changes(_ i: Int, _ b: UnsafePointer<Float>, _ xs: [UnsafePointer<Float>]) -> Int {
        var c = 0
        for x in xs where abs(x[i] - b[i]) > epsilon { c += 1 }
        return c
    }

    /// Per other model: its changed elements that another model changed too, and those only it changed.
    func changeCounts() throws -> (shared: [Int], unique: [Int]) {
        let m = others.count
        let chunks = max(1, (stream.count + Chunking.size - 1) / Chunking.size)
        var partial = [Int](repeating: 0, count: chunks * 2 * m)
        try partial.withUnsafeMutableBufferPointer { pp in
            let p = pp.baseAddress!
            for blk in stream.blocks {
                let (b, xs) = try load(blk)
                StreamingChunks.forEach(blk, threads: stream.threads) { c, r in
                    let row = p + c * 2 * m
                    for i in r {
                        let count = changes(i, b, xs)
                        guard count > 0 else { continue }
                        for (k, x) in xs.enumerated() where abs(x[i] - b[i]) > epsilon {
                            row[count > 1 ? k : m + k] += 1
                        }
                    }
                }
            }
        }
        var shared = [Int](repeating: 0, count: m), unique = [Int](repeating: 0, count: m)
        for c in 0..<chunks {
            for k in 0..<m {
                shared[k] += partial[c * 2 * m + k]
                unique[k] += partial[c * 2 * m + m + k]
            }
        }
        return (shared, unique)
    }

    /// Writes B + Σ_k (δ_k·a_k·u)·λ_k + (δ_k·a_k·o)/max(c, 1) block by block, with a_k, u, o the 0/1 masks of
    /// "changed by k", "changed by one model" and "changed by several", terms added in model order from zero.
    func write(lambdas: [Float], to writer: any MergeOutputWriter) throws {
        let out = stream.blockBuffer(WorkspaceSlot.output)
        for blk in stream.blocks {
            let (b, xs) = try load(blk)
            let o = out - blk.lowerBound
            StreamingChunks.forEach(blk, threads: stream.threads) { _, r in
                for i in r {
                    let count = changes(i, b, xs)
                    let unique: Float = count == 1 ? 1 : 0, shared: Float = count > 1 ? 1 : 0
                    let divisor = Float(max(count, 1))
                    var sum: Float = 0
                    for (k, x) in xs.enumerated() {
                        let delta = x[i] - b[i]
                        let kept = delta * (abs(delta) > epsilon ? 1 : 0)
                        sum += kept * unique * lambdas[k] + kept * shared / divisor
                    }
                    o[i] = b[i] + sum
                }
            }
            try writer.write(range: blk, values: out)
        }
    }
}
