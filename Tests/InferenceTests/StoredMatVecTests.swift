import CQuantKernels
import Checkpoints
import Numerics
import XCTest

/// The in-place matrix-vector kernels against the reference: dequantize the rows (ggml's formulas, the bit-exact
/// Swift dequantizers) and take the dot product in float64. Random quant bytes, random finite half-precision scales.
final class StoredMatVecTests: XCTestCase {
    /// Byte offsets of each block's half-precision scale fields (the rest of a block is quant bits, any value valid).
    private static let scaleFields: [GGMLType: [Int]] = [
        .q4_0: [0], .q4_1: [0, 2], .q5_0: [0], .q5_1: [0, 2], .q8_0: [0],
        .q4_K: [0, 2], .q5_K: [0, 2], .q6_K: [208],
    ]

    private struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
    }

    /// Rows of random blocks of `type`, `cols` wide.
    private func randomRows(_ type: GGMLType, rows: Int, cols: Int, rng: inout Generator) -> [UInt8] {
        let rowBytes = type.byteCount(elements: cols)!
        var bytes = [UInt8](repeating: 0, count: rows * rowBytes)
        switch type {
        case .f16, .bf16:
            for i in 0..<(rows * cols) {
                let bits = type == .f16 ? floatToHalfBits(rng.float() * 2) : floatToBF16(rng.float() * 2)
                bytes[2 * i] = UInt8(bits & 0xFF)
                bytes[2 * i + 1] = UInt8(bits >> 8)
            }
        default:
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
            let blocks = rows * cols / type.blockSize
            for b in 0..<blocks {
                for field in Self.scaleFields[type]! {
                    let bits = floatToHalfBits(rng.float() * 0.05)
                    bytes[b * type.bytesPerBlock + field] = UInt8(bits & 0xFF)
                    bytes[b * type.bytesPerBlock + field + 1] = UInt8(bits >> 8)
                }
            }
        }
        return bytes
    }

    func testEveryKernelMatchesDequantizeThenDot() throws {
        guard cq_cpu_has_kernels() != 0 else {
            throw XCTSkip("this CPU has no AVX2/FMA/F16C: the kernels are not used here (the float32 path is)")
        }
        var rng = Generator(state: 15)
        let types: [GGMLType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K, .f16, .bf16]
        for type in types {
            XCTAssertEqual(cq_supports(type.rawValue), 1, "\(type.name) should have a kernel")
            // Widths of one and several blocks (and, for the half types, a tail that is not a multiple of 8).
            let widths = type.blockSize == 1 ? [8, 37, 576] : [type.blockSize, 3 * type.blockSize, 1536]
            for cols in widths {
                let rows = 7
                let data = randomRows(type, rows: rows, cols: cols, rng: &rng)
                let x = (0..<cols).map { _ in rng.float() }
                var reference = [Float](repeating: 0, count: rows * cols)
                try data.withUnsafeBytes { raw in
                    try reference.withUnsafeMutableBufferPointer {
                        try dequantize(type, raw.baseAddress!, count: rows * cols, into: $0.baseAddress!)
                    }
                }
                var y = [Float](repeating: .nan, count: rows)
                let rc = data.withUnsafeBytes { raw in
                    cq_matvec(type.rawValue, raw.baseAddress!, type.byteCount(elements: cols)!, Int64(cols), x, &y, 0, Int64(rows))
                }
                XCTAssertEqual(rc, 0)
                for r in 0..<rows {
                    var exact = 0.0, magnitude = 0.0
                    for c in 0..<cols {
                        exact += Double(reference[r * cols + c]) * Double(x[c])
                        magnitude += abs(Double(reference[r * cols + c]) * Double(x[c]))
                    }
                    // float32 sums of `cols` products: a few ulps of the magnitude per term, nothing more.
                    let bound = magnitude * Double(cols).squareRoot() * 4e-7 + 1e-30
                    XCTAssertEqual(Double(y[r]), exact, accuracy: bound, "\(type.name), \(cols) columns, row \(r)")
                }
            }
        }
    }

    func testRowRangesWriteOnlyTheirRowsAndUnsupportedTypesAreRefused() throws {
        guard cq_cpu_has_kernels() != 0 else { throw XCTSkip("this CPU has no AVX2/FMA/F16C") }
        var rng = Generator(state: 7)
        let cols = 64, rows = 6
        let data = randomRows(.q8_0, rows: rows, cols: cols, rng: &rng)
        let x = (0..<cols).map { _ in rng.float() }
        var all = [Float](repeating: 0, count: rows)
        var part = [Float](repeating: -1, count: rows)
        data.withUnsafeBytes { raw in
            _ = cq_matvec(GGMLType.q8_0.rawValue, raw.baseAddress!, 68, Int64(cols), x, &all, 0, Int64(rows))
            part.withUnsafeMutableBufferPointer { p in
                _ = cq_matvec(GGMLType.q8_0.rawValue, raw.baseAddress!, 68, Int64(cols), x, p.baseAddress! + 2, 2, 5)
            }
        }
        XCTAssertEqual(Array(part[2..<5]), Array(all[2..<5]), "a row range gives the same values as the whole product")
        XCTAssertEqual(part[0], -1)
        XCTAssertEqual(part[5], -1)
        // Q2_K and Q3_K have no kernel: refused, so the caller keeps its float32 path.
        for type in [GGMLType.q2_K, .q3_K, .f32] {
            XCTAssertEqual(cq_supports(type.rawValue), 0)
            var y: [Float] = [42]
            let rc = data.withUnsafeBytes { cq_matvec(type.rawValue, $0.baseAddress!, 68, 256, x, &y, 0, 1) }
            XCTAssertEqual(rc, -1)
            XCTAssertEqual(y, [42], "nothing written for \(type.name)")
        }
    }
}
