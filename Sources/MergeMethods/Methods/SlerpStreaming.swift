import Foundation
import Tensors

/// SLERP streamed: one blockwise pass accumulates ‖v₀‖², ‖v₁‖² and v₀·v₁ per `Chunking` chunk (added in chunk
/// order, exactly as the whole-tensor kernel does), a second pass writes c₀v₀ + c₁v₁ block by block.
extension SlerpMerge: StreamingMergeMethod {
    public func streamingScratchBytes(count: Int, inputCount: Int) -> Int { 0 }

    public func mergeStreaming(_ stream: StreamingMergeRequest, inputs reader: any MergeInputReader,
                               output writer: any MergeOutputWriter) throws -> [String] {
        let request = stream.parameterView
        let n = stream.count
        let ws = stream.workspace
        let cap = min(n, stream.block)
        let a = ws.buffer(WorkspaceSlot.inputs, count: cap, of: Float.self)
        let blocks = stream.blocks
        if stream.inputs.count == 1 {
            for blk in blocks {
                try reader.read(0, range: blk, into: a)
                try writer.write(range: blk, values: a)
            }
            return []
        }
        _ = try request.requireBase(name)
        guard stream.inputs.count == 2 else {
            throw MergeMethodError.tensor(name, request, "needs exactly two inputs (base and one other), got \(stream.inputs.count)")
        }
        let t = try request.requireNumber(name, "t")
        let i0 = stream.baseIndex!, i1 = 1 - i0
        let b = ws.buffer(WorkspaceSlot.inputs + 1, count: cap, of: Float.self)
        let threads = stream.threads
        let chunks = max(1, (n + Chunking.size - 1) / Chunking.size)
        var partial = [Double](repeating: 0, count: chunks * 3)
        try partial.withUnsafeMutableBufferPointer { pp in
            let p = pp.baseAddress!
            for blk in blocks {
                try reader.read(i0, range: blk, into: a)
                try reader.read(i1, range: blk, into: b)
                let v0 = UnsafePointer(a - blk.lowerBound), v1 = UnsafePointer(b - blk.lowerBound)
                StreamingChunks.forEach(blk, threads: threads) { c, r in
                    var s00 = 0.0, s11 = 0.0, s01 = 0.0
                    for i in r {
                        let x = Double(v0[i]), y = Double(v1[i])
                        s00 += x * x
                        s11 += y * y
                        s01 += x * y
                    }
                    p[c] = s00
                    p[chunks + c] = s11
                    p[2 * chunks + c] = s01
                }
            }
        }
        // Same order as `Chunking.sum`: chunk partials added left to right from zero.
        let n0 = partial[0..<chunks].reduce(0, +).squareRoot()
        let n1 = partial[chunks..<(2 * chunks)].reduce(0, +).squareRoot()
        let d0 = n0 > 1e-8 ? n0 : 1, d1 = n1 > 1e-8 ? n1 : 1
        let dot = partial[(2 * chunks)...].reduce(0, +) / (d0 * d1)
        let (c0, c1) = SlerpMerge.coefficients(dot: dot, t: t)
        let o = ws.buffer(WorkspaceSlot.output, count: cap, of: Float.self)
        for blk in blocks {
            try reader.read(i0, range: blk, into: a)
            try reader.read(i1, range: blk, into: b)
            let s = blk.lowerBound
            let v0 = UnsafePointer(a - s), v1 = UnsafePointer(b - s), ov = o - s
            StreamingChunks.forEach(blk, threads: threads) { _, r in
                for i in r { ov[i] = c0 * v0[i] + c1 * v1[i] }
            }
            try writer.write(range: blk, values: o)
        }
        return []
    }

    /// The interpolation coefficients for a normalised dot product (linear when nearly colinear).
    static func coefficients(dot: Double, t: Double) -> (Float, Float) {
        if abs(dot) > SlerpMerge.colinearThreshold { return (Float(1 - t), Float(t)) }
        let theta = acos(dot)
        let s = sin(theta)
        return (Float(sin(theta - theta * t) / s), Float(sin(theta * t) / s))
    }
}

/// NuSLERP streamed: the per-vector sums are accumulated element by element in increasing index order (as the
/// whole-tensor kernel does), block after block, so every layout (flattened, rows, columns) streams; a second
/// pass writes the output. Scratch: three doubles per vector.
extension NuSlerpMerge: StreamingMergeMethod {
    public func streamingScratchBytes(count: Int, inputCount: Int) -> Int { 0 }

    public func mergeStreaming(_ stream: StreamingMergeRequest, inputs reader: any MergeInputReader,
                               output writer: any MergeOutputWriter) throws -> [String] {
        let request = stream.parameterView
        let n = stream.count
        let ws = stream.workspace
        let cap = min(n, stream.block)
        let blocks = stream.blocks
        let bufA = ws.buffer(WorkspaceSlot.inputs, count: cap, of: Float.self)
        if stream.inputs.count == 1 {
            for blk in blocks {
                try reader.read(0, range: blk, into: bufA)
                try writer.write(range: blk, values: bufA)
            }
            return []
        }
        let others = stream.inputs.indices.filter { $0 != stream.baseIndex }
        guard others.count == 2 else {
            throw MergeMethodError.tensor(name, request, "needs exactly two models besides the base, got \(others.count)")
        }
        let flatten = try request.flag(name, "nuslerp_flatten", default: true)
        let rowWise = try request.flag(name, "nuslerp_row_wise", default: false)
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
        let bufB = ws.buffer(WorkspaceSlot.inputs + 1, count: cap, of: Float.self)
        let bufBase = ws.buffer(WorkspaceSlot.inputs + 2, count: cap, of: Float.self)
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
        let out = ws.buffer(WorkspaceSlot.output, count: cap, of: Float.self)
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
