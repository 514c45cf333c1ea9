import Foundation
import Tensors

/// `slerp`: spherical interpolation from the base (t = 0) to the other model (t = 1), the whole tensor
/// flattened into one vector, float32 arithmetic with double-precision norms and dot product.
/// Implements mergekit's `slerp` (mergekit-behaviour.md §2.2): nearly (anti-)colinear inputs (|cos| > 0.9995)
/// fall back to linear interpolation; the un-normalised inputs are combined, so magnitudes carry over.
public struct SlerpMerge: MergeMethod {
    public init() {}
    public var name: String { "slerp" }
    public var prettyName: String { "SLERP" }
    public var referenceURL: String? { "https://en.wikipedia.org/wiki/Slerp" }
    public var globalParameters: [ParameterDefinition] { [ParameterDefinition("t", required: true)] }
    public var perModelParameters: [ParameterDefinition] { [] }
    public var baseModel: BaseModelUse { .required }

    /// mergekit's colinearity threshold on the normalised dot product.
    public static let colinearThreshold = 0.9995

    public func validate(inputCount: Int, hasBase: Bool) throws {
        guard hasBase else { throw MergeMethodError("slerp needs base_model (the t = 0 end)") }
        try requireInputCount(name, inputCount, 2...2, what: "exactly two models: base_model and one other")
    }

    public func merge(_ request: MergeRequest, into output: UnsafeMutableBufferPointer<Float>) throws -> [String] {
        try request.checkSizes(name, output: output)
        if request.inputs.count == 1 {
            copyValues(request.inputs[0].values, into: output)
            return []
        }
        let base = try request.requireBase(name)
        guard request.inputs.count == 2 else {
            throw MergeMethodError.tensor(name, request, "needs exactly two inputs (base and one other), got \(request.inputs.count)")
        }
        let t = try request.requireNumber(name, "t")
        let v0 = base.values, v1 = request.others[0].values
        let threads = request.threads
        let n0 = Reduce.squaredNorm(v0, threads: threads).squareRoot()
        let n1 = Reduce.squaredNorm(v1, threads: threads).squareRoot()
        // A vector with norm <= 1e-8 is left unnormalised, as mergekit does.
        let d0 = n0 > 1e-8 ? n0 : 1, d1 = n1 > 1e-8 ? n1 : 1
        let dot = Reduce.dot(v0, v1, threads: threads) / (d0 * d1)
        let (c0, c1) = SlerpMerge.coefficients(dot: dot, t: t)
        Chunking(output.count, threads: threads).forEach { r in
            for i in r { output[i] = c0 * v0[i] + c1 * v1[i] }
        }
        return []
    }
}

/// `nuslerp`: SLERP between two models with weights (t = w₂/(w₁+w₂)), optionally of task vectors relative to a base,
/// over the whole tensor or per row / per column. Implements mergekit's `nuslerp` (mergekit-behaviour.md §2.3).
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

    public func merge(_ request: MergeRequest, into output: UnsafeMutableBufferPointer<Float>) throws -> [String] {
        try request.checkSizes(name, output: output)
        if request.inputs.count == 1 {
            copyValues(request.inputs[0].values, into: output)
            return []
        }
        let others = request.others
        guard others.count == 2 else {
            throw MergeMethodError.tensor(name, request,
                "needs exactly two models besides the base, got \(others.count)")
        }
        let flatten = try request.flag(name, "nuslerp_flatten", default: true)
        let rowWise = try request.flag(name, "nuslerp_row_wise", default: false)
        let w1 = try request.modelNumber(name, others[0], "weight")
        let w2 = try request.modelNumber(name, others[1], "weight")
        let t = abs(w1 + w2) < 1e-6 ? 0.5 : w2 / (w1 + w2)
        let a = others[0].values, b = others[1].values
        let base = request.base?.values
        let n = output.count

        // Vector layout: whole tensor, rows along the last axis, or columns along axis 0.
        let shape = request.shape.isEmpty ? [n] : request.shape
        let alongFirst = !flatten && rowWise && shape.count > 1
        let length = flatten ? n : (alongFirst ? shape[0] : shape[shape.count - 1])
        guard length > 0, n % length == 0 else {
            throw MergeMethodError.tensor(name, request, "shape \(request.shape) does not match \(n) elements")
        }
        let vectors = n / length
        let inner = n / length  // stride between elements of one vector along axis 0
        @inline(__always) func vec(_ i: Int) -> Int { alongFirst ? i % inner : i / length }
        @inline(__always) func x(_ p: UnsafeBufferPointer<Float>, _ i: Int) -> Float {
            if let base { return p[i] - base[i] }
            return p[i]
        }

        var s00 = [Double](repeating: 0, count: vectors)
        var s11 = [Double](repeating: 0, count: vectors)
        var s01 = [Double](repeating: 0, count: vectors)
        for i in 0..<n {
            let v = vec(i)
            let p = Double(x(a, i)), q = Double(x(b, i))
            s00[v] += p * p
            s11[v] += q * q
            s01[v] += p * q
        }
        let (ca, cb, cs) = NuSlerpMerge.coefficients(s00: s00, s11: s11, s01: s01, t: t)
        for i in 0..<n {
            let v = vec(i)
            let r = (ca[v] * x(a, i) + cb[v] * x(b, i)) / cs[v]
            output[i] = base.map { $0[i] + r } ?? r
        }
        return []
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

/// `multislerp`: barycentric interpolation of any number of models on the hypersphere, optionally of task vectors
/// relative to a base. Implements mergekit's `multislerp` (mergekit-behaviour.md §2.4).
///
/// Note: the tangent-space step is kept as mergekit writes it, but the weighted tangent vectors sum to zero
/// analytically (the mean direction is itself the weighted sum), so the result is the normalised weighted mean
/// direction scaled by the weighted mean norm, up to rounding.
public struct MultiSlerpMerge: MergeMethod {
    public init() {}
    public var name: String { "multislerp" }
    public var prettyName: String { "Multi-SLERP" }
    public var referenceURL: String? { "https://goddard.blog/posts/multislerp-wow-what-a-cool-idea" }
    public var globalParameters: [ParameterDefinition] {
        [ParameterDefinition("normalize_weights", default: .bool(true)),
         ParameterDefinition("eps", default: .number(1e-8))]
    }
    public var perModelParameters: [ParameterDefinition] { [ParameterDefinition("weight", required: true)] }
    public var baseModel: BaseModelUse { .optional }

    public func validate(inputCount: Int, hasBase: Bool) throws {
        try requireInputCount(name, inputCount - (hasBase ? 1 : 0), 1...Int.max, what: "at least one model besides the base")
    }

    public func merge(_ request: MergeRequest, into output: UnsafeMutableBufferPointer<Float>) throws -> [String] {
        try request.checkSizes(name, output: output)
        let others = request.others
        if others.count <= 1 {
            copyValues((others.first ?? request.inputs[0]).values, into: output)
            return []
        }
        let normalizeWeights = try request.flag(name, "normalize_weights", default: true)
        let eps = try request.number(name, "eps", default: 1e-8)
        var weights = try others.map { Float(try request.modelNumber(name, $0, "weight")) }
        if normalizeWeights {
            var total: Float = 0
            for w in weights { total += w }
            guard abs(total) > 1e-12 else {
                throw MergeMethodError.tensor(name, request, "the weights sum to zero, so they cannot be normalised")
            }
            weights = weights.map { $0 / total }
        }
        let base = request.base?.values
        let threads = request.threads
        let n = output.count
        let chunking = Chunking(n, threads: threads)
        let xs = others.map(\.values)
        @inline(__always) func x(_ k: Int, _ i: Int) -> Float {
            if let base { return xs[k][i] - base[i] }
            return xs[k][i]
        }
        let norms: [Double] = (0..<xs.count).map { k in
            chunking.sum { r in
                var s = 0.0
                for i in r { let v = Double(x(k, i)); s += v * v }
                return s
            }.squareRoot()
        }
        let inv = norms.map { Float($0) + Float(eps) }
        // Weighted mean of the unit vectors, kept in `output`.
        chunking.forEach { r in
            for i in r {
                var m: Float = 0
                for k in 0..<xs.count { m += (x(k, i) / inv[k]) * weights[k] }
                output[i] = m
            }
        }
        let meanNorm = Reduce.squaredNorm(output.readOnly, threads: threads).squareRoot()
        if meanNorm < eps {
            guard xs.count == 2 else {
                throw MergeMethodError.tensor(name, request,
                    "the weighted unit vectors cancel out (antipodal inputs with balancing weights); multislerp cannot pick a direction for \(xs.count) models; change the weights")
            }
            chunking.forEach { r in
                for i in r {
                    let v = x(0, i) * weights[0] + x(1, i) * weights[1]
                    output[i] = base.map { $0[i] + v } ?? v
                }
            }
            return []
        }
        let mn = Float(meanNorm)
        chunking.forEach { r in for i in r { output[i] /= mn } }
        // Projection of each unit vector on the mean direction.
        let dots: [Float] = (0..<xs.count).map { k in
            Float(chunking.sum { r in
                var s = 0.0
                for i in r { s += Double(x(k, i) / inv[k]) * Double(output[i]) }
                return s
            })
        }
        @inline(__always) func tangent(_ i: Int) -> Float {
            var s: Float = 0
            for k in 0..<xs.count { s += (x(k, i) / inv[k] - dots[k] * output[i]) * weights[k] }
            return s
        }
        let tangentNorm = chunking.sum { r in
            var s = 0.0
            for i in r { let v = Double(tangent(i)); s += v * v }
            return s
        }.squareRoot() + eps
        let cosR = Float(cos(tangentNorm)), sinROverR = Float(sin(tangentNorm) / tangentNorm)
        var scale: Float = 0
        for k in 0..<xs.count { scale += Float(norms[k]) * weights[k] }
        chunking.forEach { r in
            for i in r {
                let v = (output[i] * cosR + tangent(i) * sinROverR) * scale
                output[i] = base.map { $0[i] + v } ?? v
            }
        }
        return []
    }
}

/// `karcher`: the Riemannian (Karcher) mean of the parents' directions on the unit sphere, equal weights,
/// rescaled by the mean norm. Implements mergekit's `karcher` (mergekit-behaviour.md §2.5).
public struct KarcherMerge: MergeMethod {
    public init() {}
    public var name: String { "karcher" }
    public var prettyName: String { "Karcher Mean" }
    public var referenceURL: String? { "https://en.wikipedia.org/wiki/Karcher_mean" }
    public var globalParameters: [ParameterDefinition] {
        [ParameterDefinition("max_iter", default: .number(10)), ParameterDefinition("tol", default: .number(1e-5))]
    }
    public var perModelParameters: [ParameterDefinition] { [] }
    public var baseModel: BaseModelUse { .unused }

    public func validate(inputCount: Int, hasBase: Bool) throws {
        try requireInputCount(name, inputCount, 1...Int.max, what: "at least one model")
    }

    public func merge(_ request: MergeRequest, into output: UnsafeMutableBufferPointer<Float>) throws -> [String] {
        try request.checkSizes(name, output: output)
        let xs = request.inputs.map(\.values)
        if xs.count == 1 {
            copyValues(xs[0], into: output)
            return []
        }
        let maxIter = try request.number(name, "max_iter", default: 10)
        let tol = try request.number(name, "tol", default: 1e-5)
        guard maxIter >= 0 else { throw MergeMethodError.tensor(name, request, "max_iter must be >= 0, got \(maxIter)") }
        let threads = request.threads
        let n = output.count
        let chunking = Chunking(n, threads: threads)
        let norms = xs.map { Reduce.squaredNorm($0, threads: threads).squareRoot() }
        let alpha = 1.0 / Double(xs.count)
        let valid = xs.indices.filter { norms[$0] > tol }
        guard !valid.isEmpty else {
            for i in 0..<n { output[i] = 0 }
            return []
        }
        let a = valid.map { _ in Float(1.0 / Double(valid.count)) }
        let nf = norms.map { Float($0) }
        @inline(__always) func unit(_ k: Int, _ i: Int) -> Float { xs[k][i] / nf[k] }

        // Start: the normalised weighted mean of the unit vectors (or the first unit vector if that vanishes).
        chunking.forEach { r in
            for i in r {
                var m: Float = 0
                for (j, k) in valid.enumerated() { m += a[j] * unit(k, i) }
                output[i] = m
            }
        }
        let startNorm = Reduce.squaredNorm(output.readOnly, threads: threads).squareRoot()
        if startNorm < tol {
            chunking.forEach { r in for i in r { output[i] = unit(valid[0], i) } }
        } else {
            let s = Float(startNorm)
            chunking.forEach { r in for i in r { output[i] /= s } }
        }

        let tangent = Scratch<Float>(n)
        let tb = tangent.buffer
        for _ in 0..<Int(min(maxIter, 1_000_000)) {
            var coefficients: [(k: Int, c: Float, dot: Float)] = []
            for (j, k) in valid.enumerated() {
                let d = chunking.sum { r in
                    var s = 0.0
                    for i in r { s += Double(output[i]) * Double(unit(k, i)) }
                    return s
                }
                let dot = min(max(d, -1), 1)
                let theta = acos(dot)
                if theta < tol { continue }
                coefficients.append((k, Float(Double(a[j]) * theta / sin(theta)), Float(dot)))
            }
            chunking.forEach { r in
                for i in r {
                    var s: Float = 0
                    for c in coefficients { s += c.c * (unit(c.k, i) - c.dot * output[i]) }
                    tb[i] = s
                }
            }
            let tn = Reduce.squaredNorm(UnsafeBufferPointer(tb), threads: threads).squareRoot()
            if tn < tol { break }
            let ct = Float(cos(tn)), st = Float(sin(tn) / tn)
            chunking.forEach { r in for i in r { output[i] = ct * output[i] + st * tb[i] } }
            let un = Reduce.squaredNorm(output.readOnly, threads: threads).squareRoot()
            if un > tol {
                let u = Float(un)
                chunking.forEach { r in for i in r { output[i] /= u } }
            }
        }
        // Scale by the mean norm over all inputs (zero-norm ones included, as mergekit does).
        var scale = 0.0
        for k in xs.indices { scale += alpha * norms[k] }
        let sf = Float(scale)
        chunking.forEach { r in for i in r { output[i] *= sf } }
        return []
    }
}
