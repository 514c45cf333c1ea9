import Foundation

/// `nuslerp`: SLERP between two models with weights (t = w₂/(w₁+w₂)), optionally of task vectors relative to a base,
/// over the whole tensor or per row / per column. Implements mergekit's `nuslerp` (docs/methods.md).
public struct NuSlerpMerge: MergeMethod {
    public init() {}
    public var name: String { "nuslerp" }
    public var prettyName: String { "NuSLERP" }
    public var globalParameters: [ParameterDefinition] {
        [ParameterDefinition("nuslerp_flatten", default: .bool(true)),
         ParameterDefinition("nuslerp_row_wise", default: .bool(false))]
    }
    public var perModelParameters: [ParameterDefinition] { [ParameterDefinition("weight", required: true)] }
    public var baseModel: BaseModelUse { .optional }

    public func validate(inputCount: Int, hasBase: Bool) throws {
        if hasBase {
            try requireInputCount(name, inputCount, 3...3,
                                  what: "exactly two models plus a distinct base_model (the base cannot be one of the two)")
        } else {
            try requireInputCount(name, inputCount, 2...2, what: "exactly two models (plus an optional base_model)")
        }
    }

    /// Per vector: coefficients (ca·v0 + cb·v1) / cs, or lerp when sin θ is ~0.
    static func coefficients(s00: [Double], s11: [Double], s01: [Double], t: Double) -> ([Float], [Float], [Float]) {
        let vectors = s00.count
        var ca = [Float](repeating: 0, count: vectors)
        var cb = [Float](repeating: 0, count: vectors)
        var cs = [Float](repeating: 1, count: vectors)
        for v in 0..<vectors {
            let c = min(max(s01[v] / (max(s00[v].squareRoot(), 1e-7) * max(s11[v].squareRoot(), 1e-7)), -1), 1)
            let theta = acos(c)
            let s = sin(theta)
            if abs(s) < 1e-8 {
                ca[v] = Float(1 - t); cb[v] = Float(t); cs[v] = 1
            } else {
                ca[v] = Float(sin((1 - t) * theta)); cb[v] = Float(sin(t * theta)); cs[v] = Float(s)
            }
        }
        return (ca, cb, cs)
    }
}

/// NuSLERP streamed: the per-vector sums are accumulated element by element in increasing index order, block after
/// block, so every layout (flattened, rows, columns) streams; a second
/// pass writes the output. Scratch: three doubles per vector.
extension NuSlerpMerge: StreamingMergeMethod {
    public func streamingScratchBytes(count: Int, inputCount: Int) -> Int { 0 }

    public func mergeStreaming(_ stream: StreamingMergeRequest, inputs reader: any MergeInputReader,
                               output writer: any MergeOutputWriter) throws -> [String] {
        let request = stream.parameterView
        let n = stream.count
        let blocks = stream.blocks
        let bufA = stream.blockBuffer(WorkspaceSlot.inputs)
        if stream.inputs.count == 1 { return try stream.copyThrough(0, inputs: reader, output: writer) }
        let others = stream.inputs.indices.filter { $0 != stream.baseIndex }
        guard others.count == 2 else {
            throw MergeMethodError.tensor(name, request, "needs exactly two models besides the base, got \(others.count)")
        }
        let flatten = try request.flag(self, "nuslerp_flatten")
        let rowWise = try request.flag(self, "nuslerp_row_wise")
        let w1 = try request.modelNumber(name, request.inputs[others[0]], "weight")
        let w2 = try request.modelNumber(name, request.inputs[others[1]], "weight")
        let t = abs(w1 + w2) < 1e-6 ? 0.5 : w2 / (w1 + w2)
        let shape = stream.shape.isEmpty ? [n] : stream.shape
        let alongFirst = !flatten && rowWise && shape.count > 1
        let length = flatten ? n : (alongFirst ? shape[0] : shape[shape.count - 1])
        guard length > 0, n % length == 0 else {
            throw MergeMethodError.tensor(name, request, "shape \(stream.shape) does not match \(n) elements")
        }
        let vectors = n / length
        let inner = n / length
        let bufB = stream.blockBuffer(WorkspaceSlot.inputs + 1)
        let bufBase = stream.blockBuffer(WorkspaceSlot.inputs + 2)
        let baseIndex = stream.baseIndex
        // Task vectors of both models for one block (x − base, or x without a base), in place.
        func readBlock(_ blk: Range<Int>) throws {
            try reader.read(others[0], range: blk, into: bufA)
            try reader.read(others[1], range: blk, into: bufB)
            if let baseIndex {
                try reader.read(baseIndex, range: blk, into: bufBase)
            }
        }
        var s00 = [Double](repeating: 0, count: vectors)
        var s11 = [Double](repeating: 0, count: vectors)
        var s01 = [Double](repeating: 0, count: vectors)
        for blk in blocks {
            try readBlock(blk)
            for j in 0..<blk.count {
                let i = blk.lowerBound + j
                let v = alongFirst ? i % inner : i / length
                let p = Double(baseIndex == nil ? bufA[j] : bufA[j] - bufBase[j])
                let q = Double(baseIndex == nil ? bufB[j] : bufB[j] - bufBase[j])
                s00[v] += p * p
                s11[v] += q * q
                s01[v] += p * q
            }
        }
        let (ca, cb, cs) = NuSlerpMerge.coefficients(s00: s00, s11: s11, s01: s01, t: t)
        let out = stream.blockBuffer(WorkspaceSlot.output)
        for blk in blocks {
            try readBlock(blk)
            for j in 0..<blk.count {
                let i = blk.lowerBound + j
                let v = alongFirst ? i % inner : i / length
                let xa = baseIndex == nil ? bufA[j] : bufA[j] - bufBase[j]
                let xb = baseIndex == nil ? bufB[j] : bufB[j] - bufBase[j]
                let r = (ca[v] * xa + cb[v] * xb) / cs[v]
                out[j] = baseIndex == nil ? r : bufBase[j] + r
            }
            try writer.write(range: blk, values: out)
        }
        return []
    }
}
