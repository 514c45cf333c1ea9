/// Eigenvalues and eigenvectors of a small symmetric matrix by the cyclic Jacobi method: rotations zero each
/// off-diagonal entry in turn until the off-diagonal mass is negligible. `vectors` is row-major with eigenvector k in
/// column k. For the tens of dimensions Crucible needs (MoE gate diagnostics, CMA-ES covariances) it is exact and instant.
public struct SymmetricEigen: Sendable {
    public let values: [Double]
    public let vectors: [Double]

    public init(_ matrix: [Double], dimension n: Int) {
        precondition(matrix.count == n * n, "SymmetricEigen: the matrix must be n×n")
        var a = matrix
        var v = (0..<(n * n)).map { $0 / n == $0 % n ? 1.0 : 0.0 }
        for _ in 0..<100 {
            var off = 0.0
            for p in 0..<n { for q in 0..<n where p != q { off += a[p * n + q] * a[p * n + q] } }
            if off < 1e-30 { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) where abs(a[p * n + q]) > 1e-300 {
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        values = (0..<n).map { a[$0 * n + $0] }
        vectors = v
    }
}
