import Checkpoints
import TestSupport
import XCTest

/// Crucible's quantizers against llama.cpp's own bytes. `Tests/References/quant/input-16x512.f32` holds 16 rows
/// of 512 float32 values chosen to reach every branch of the scale searches (weight-like and heavy-tailed rows,
/// all-positive and all-negative rows, an all-zero super-block, outliers, a constant row, tiny and huge values,
/// values on an exact grid with ties, a ramp, a ReLU-like row). `TYPE.bin` is what llama.cpp's
/// `ggml_quantize_chunk` (the function `llama-quantize` calls; no importance matrix) wrote for those rows; see the
/// folder's README for how they were made. For the legacy types the `gguf` Python package's quantizers wrote
/// the same bytes.
final class GGMLQuantizeTests: XCTestCase {
    private static let folder = Fixtures.packageRoot.appendingPathComponent("Tests/References/quant")

    private func input() throws -> [Float] {
        let data = try Data(contentsOf: Self.folder.appendingPathComponent("input-16x512.f32"))
        return data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }

    private func quantized(_ type: GGMLType, _ x: [Float], rowLength: Int = 512) throws -> [UInt8] {
        let rowBytes = type.byteCount(elements: rowLength)!
        var out = [UInt8](repeating: 0xAA, count: rowBytes * (x.count / rowLength))
        try x.withUnsafeBufferPointer { xs in
            try out.withUnsafeMutableBytes { raw in
                for r in 0..<(x.count / rowLength) {
                    try quantize(type, xs.baseAddress! + r * rowLength, count: rowLength, into: raw.baseAddress! + r * rowBytes)
                }
            }
        }
        return out
    }

    func testEveryWrittenTypeMatchesLlamaCppByteForByte() throws {
        let x = try input()
        XCTAssertEqual(x.count, 16 * 512)
        let types: [GGMLType] = [.f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
        for type in types {
            let expected = [UInt8](try Data(contentsOf: Self.folder.appendingPathComponent("\(type.name).bin")))
            let got = try quantized(type, x)
            XCTAssertEqual(got.count, expected.count, type.name)
            let rowBytes = type.byteCount(elements: 512)!
            var badRows: [Int] = []
            for r in 0..<16 where got[(r * rowBytes)..<((r + 1) * rowBytes)] != expected[(r * rowBytes)..<((r + 1) * rowBytes)] {
                badRows.append(r)
            }
            XCTAssertEqual(badRows, [], "\(type.name): rows whose bytes differ from llama.cpp's")
        }
    }

    /// Quantize, then read back through the GGUF dequantizer: the reconstruction stays within the type's error.
    func testQuantizedValuesReadBackWithinEachTypesError() throws {
        let x = try input()
        let row = Array(x[0..<512])   // weight-like, σ = 0.02
        let bounds: [(GGMLType, Float)] = [(.f16, 1e-3), (.bf16, 8e-3), (.q8_0, 0.01), (.q6_K, 0.03), (.q5_0, 0.05),
                                           (.q5_1, 0.05), (.q5_K, 0.05), (.q4_0, 0.1), (.q4_1, 0.1), (.q4_K, 0.1),
                                           (.q3_K, 0.25), (.q2_K, 0.5)]
        let rms = (row.reduce(0) { $0 + $1 * $1 } / 512).squareRoot()
        for (type, bound) in bounds {
            let q = try quantized(type, row)
            var back = [Float](repeating: .nan, count: 512)
            try q.withUnsafeBytes { raw in try back.withUnsafeMutableBufferPointer { try dequantize(type, raw.baseAddress!, count: 512, into: $0.baseAddress!) } }
            let err = (zip(row, back).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / 512).squareRoot()
            XCTAssertLessThan(err / rms, bound, "\(type.name): relative RMS error")
            XCTAssertGreaterThan(err / rms, 0, "\(type.name) must round something")
        }
    }

    func testRefusesWhatItCannotWriteExactly() {
        var out = [UInt8](repeating: 0, count: 1024)
        let x = [Float](repeating: 1, count: 256)
        XCTAssertThrowsError(try out.withUnsafeMutableBytes { try quantize(.iq4_XS, x, count: 256, into: $0.baseAddress!) }) {
            XCTAssertTrue("\($0)".contains("IQ4_XS"), "\($0)")
        }
        XCTAssertThrowsError(try out.withUnsafeMutableBytes { try quantize(.q4_K, x, count: 100, into: $0.baseAddress!) })
        var bad = x
        bad[7] = .nan
        XCTAssertThrowsError(try out.withUnsafeMutableBytes { try quantize(.q8_0, bad, count: 256, into: $0.baseAddress!) }) {
            XCTAssertTrue("\($0)".contains("element 7"), "\($0)")
        }
    }
}
