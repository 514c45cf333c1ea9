import COpenBLAS

/// The one place Crucible calls LAPACK (OpenBLAS's copy).
public enum LAPACK {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Thin singular value decomposition of the row-major `rows`×`cols` matrix `a`, in double precision (LAPACK's
    /// divide-and-conquer `dgesdd`): a = U·diag(s)·Vh with U row-major `rows`×k, Vh row-major k×`cols`, k = min(rows, cols),
    /// s descending. `a` is overwritten.
    public static func svd(_ a: inout [Double], rows: Int, cols: Int) throws -> (u: [Double], s: [Double], vh: [Double]) {
        precondition(a.count == rows * cols && rows > 0 && cols > 0)
        guard rows < Int(Int32.max), cols < Int(Int32.max) else { throw Failure(description: "svd: matrix too large for LAPACK") }
        // Row-major a is column-major aᵀ (cols×rows): aᵀ = V·S·Uᵀ, so LAPACK's U (cols×k, column-major) is Vh row-major
        // and its Vᵀ (k×rows, column-major) is U row-major.
        let k = min(rows, cols)
        var m = Int32(cols), n = Int32(rows), lda = Int32(cols), ldu = Int32(cols), ldvt = Int32(k)
        var s = [Double](repeating: 0, count: k)
        var vh = [Double](repeating: 0, count: k * cols)
        var u = [Double](repeating: 0, count: rows * k)
        var iwork = [Int32](repeating: 0, count: 8 * k)
        var info: Int32 = 0
        var jobz = Int8(UInt8(ascii: "S"))
        var query = [Double](repeating: 0, count: 1)
        var lwork: Int32 = -1
        dgesdd_(&jobz, &m, &n, &a, &lda, &s, &vh, &ldu, &u, &ldvt, &query, &lwork, &iwork, &info, 1)
        guard info == 0 else { throw Failure(description: "svd: LAPACK dgesdd workspace query failed (info \(info))") }
        lwork = Int32(min(Double(Int32.max), max(1, query[0].rounded(.up))))
        var work = [Double](repeating: 0, count: Int(lwork))
        dgesdd_(&jobz, &m, &n, &a, &lda, &s, &vh, &ldu, &u, &ldvt, &work, &lwork, &iwork, &info, 1)
        guard info == 0 else {
            throw Failure(description: info > 0 ? "svd: LAPACK dgesdd did not converge (info \(info))"
                                                : "svd: LAPACK dgesdd rejected argument \(-info)")
        }
        return (u, s, vh)
    }
}
