import Checkpoints
import XCTest

/// Dequantization of every supported ggml type: hand-built blocks whose values are worked out from the
/// block layout by hand, and round trips through small reference quantizers written here from the format.
final class GGMLDequantizeTests: XCTestCase {
    // MARK: Helpers

    private func f16(_ x: Float) -> [UInt8] {
        let b = Float16(x).bitPattern
        return [UInt8(b & 0xFF), UInt8(b >> 8)]
    }

    private func run(_ type: GGMLType, _ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> [Float] {
        XCTAssertEqual(bytes.count % type.bytesPerBlock, 0, "test block has the wrong size", file: file, line: line)
        let count = bytes.count / type.bytesPerBlock * type.blockSize
        var out = [Float](repeating: .nan, count: count)
        try bytes.withUnsafeBytes { raw in
            try out.withUnsafeMutableBufferPointer { try dequantize(type, raw.baseAddress!, count: count, into: $0.baseAddress!) }
        }
        return out
    }

    // MARK: Type table

    func testTypeTableMatchesGGMLIdsAndBlockSizes() {
        let expected: [(GGMLType, UInt32, String, Int, Int)] = [
            (.f32, 0, "F32", 1, 4), (.f16, 1, "F16", 1, 2), (.q4_0, 2, "Q4_0", 32, 18), (.q4_1, 3, "Q4_1", 32, 20),
            (.q5_0, 6, "Q5_0", 32, 22), (.q5_1, 7, "Q5_1", 32, 24), (.q8_0, 8, "Q8_0", 32, 34), (.q8_1, 9, "Q8_1", 32, 36),
            (.q2_K, 10, "Q2_K", 256, 84), (.q3_K, 11, "Q3_K", 256, 110), (.q4_K, 12, "Q4_K", 256, 144),
            (.q5_K, 13, "Q5_K", 256, 176), (.q6_K, 14, "Q6_K", 256, 210), (.q8_K, 15, "Q8_K", 256, 292),
            (.iq2_XXS, 16, "IQ2_XXS", 256, 66), (.iq4_NL, 20, "IQ4_NL", 32, 18), (.iq4_XS, 23, "IQ4_XS", 256, 136),
            (.bf16, 30, "BF16", 1, 2), (.tq2_0, 35, "TQ2_0", 256, 66), (.mxfp4, 39, "MXFP4", 32, 17),
        ]
        for (t, id, name, block, bytes) in expected {
            XCTAssertEqual(t.rawValue, id, name)
            XCTAssertEqual(t.name, name)
            XCTAssertEqual(t.blockSize, block, name)
            XCTAssertEqual(t.bytesPerBlock, bytes, name)
        }
        for removed: UInt32 in [4, 5, 31, 32, 33, 36, 37, 38, 40] { XCTAssertNil(GGMLType(rawValue: removed)) }
    }

    func testUnsupportedTypeAndPartialBlockAreErrors() {
        var out = [Float](repeating: 0, count: 256)
        let bytes = [UInt8](repeating: 0, count: 256)
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try dequantize(.iq2_XXS, $0.baseAddress!, count: 256, into: &out) }) {
            XCTAssertTrue("\($0)".contains("unsupported quantization type IQ2_XXS"), "\($0)")
        }
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try dequantize(.q4_0, $0.baseAddress!, count: 33, into: &out) }) {
            XCTAssertTrue("\($0)".contains("not a whole number of Q4_0 blocks"), "\($0)")
        }
    }

    // MARK: Hand-built blocks

    func testPlainFloatTypesDecodeKnownBitPatterns() throws {
        XCTAssertEqual(try run(.f16, [0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x00, 0x00]), [1, -2, 65504, 0])
        XCTAssertEqual(try run(.bf16, [0x80, 0x3F, 0x49, 0x40, 0x80, 0xBF]), [1, 3.140625, -1])
        XCTAssertEqual(try run(.f32, [0x00, 0x00, 0xC0, 0x3F]), [1.5])
        XCTAssertEqual(try run(.i8, [0xFF, 0x05]), [-1, 5])
    }

    func testF16ConversionMatchesFloat16ForEveryBitPattern() throws {
        var bytes: [UInt8] = []
        for b in 0...0xFFFF { bytes += [UInt8(b & 0xFF), UInt8(b >> 8)] }
        let x = try run(.f16, bytes)
        for b in 0...0xFFFF {
            let want = Float(Float16(bitPattern: UInt16(b)))
            if want.isNaN { XCTAssertTrue(x[b].isNaN, "bits \(b)"); continue }
            XCTAssertEqual(x[b].bitPattern, want.bitPattern, "bits \(b): \(x[b]) vs \(want)")
        }
    }

    func testQ4_0SubtractsEightFromEachNibbleAndScales() throws {
        // d = 0.5; byte j holds element j (low nibble = j) and element j+16 (high nibble = 15 - j).
        let bytes = f16(0.5) + (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let x = try run(.q4_0, bytes)
        XCTAssertEqual(x[0], -4)       // (0 - 8) · 0.5
        XCTAssertEqual(x[15], 3.5)     // (15 - 8) · 0.5
        XCTAssertEqual(x[16], 3.5)     // high nibble of byte 0 is 15
        XCTAssertEqual(x[31], -4)
        XCTAssertEqual(x[9], 0.5)
    }

    func testQ4_1AddsTheMinimum() throws {
        // d = 0.25, m = -1, every byte 0x3A: low nibble 10, high nibble 3.
        let x = try run(.q4_1, f16(0.25) + f16(-1) + [UInt8](repeating: 0x3A, count: 16))
        XCTAssertEqual(Array(x[0..<16]), [Float](repeating: 1.5, count: 16))    // 10 · 0.25 − 1
        XCTAssertEqual(Array(x[16..<32]), [Float](repeating: -0.25, count: 16)) // 3 · 0.25 − 1
    }

    func testQ5_0TakesTheFifthBitFromTheHighMask() throws {
        // d = 1; qh bits 0, 16 and 31 set; byte 0 = 0x21 (low 1, high 2), the rest 0.
        let qh: UInt32 = 1 | 1 << 16 | 1 << 31
        let bytes = f16(1) + [UInt8(qh & 0xFF), UInt8((qh >> 8) & 0xFF), UInt8((qh >> 16) & 0xFF), UInt8(qh >> 24)]
            + [0x21] + [UInt8](repeating: 0, count: 15)
        let x = try run(.q5_0, bytes)
        XCTAssertEqual(x[0], 1)      // (1 | 16) − 16
        XCTAssertEqual(x[16], 2)     // (2 | 16) − 16
        XCTAssertEqual(x[1], -16)    // (0 | 0) − 16
        XCTAssertEqual(x[31], 0)     // bit 31 set, nibble 0
        XCTAssertEqual(x[17], -16)
    }

    func testQ5_1CombinesFifthBitScaleAndMinimum() throws {
        // d = 0.5, m = 2; qh bit 5 set; byte 5 = 0xF7 (low 7, high 15).
        var quants = [UInt8](repeating: 0, count: 16)
        quants[5] = 0xF7
        let x = try run(.q5_1, f16(0.5) + f16(2) + [0x20, 0, 0, 0] + quants)
        XCTAssertEqual(x[5], 13.5)   // (7 | 16) · 0.5 + 2
        XCTAssertEqual(x[21], 9.5)   // 15 · 0.5 + 2 (bit 21 clear)
        XCTAssertEqual(x[0], 2)
    }

    func testQ8_0AndQ8_1ScaleSignedBytes() throws {
        var q = [UInt8](repeating: 0, count: 32)
        q[0] = 0x80   // −128
        q[1] = 0x7F   // 127
        q[31] = 0xFE  // −2
        let x = try run(.q8_0, f16(0.125) + q)
        XCTAssertEqual(x[0], -16)
        XCTAssertEqual(x[1], 15.875)
        XCTAssertEqual(x[31], -0.25)
        // Q8_1 carries an extra f16 (the block sum) between d and the quants; it does not change the values.
        let y = try run(.q8_1, f16(0.125) + f16(99) + q)
        XCTAssertEqual(y, x)
    }

    func testQ2_KUsesSixteenScaleMinPairsAndTwoBitQuants() throws {
        var block = [UInt8](repeating: 0, count: 84)
        block[0] = 0x21    // sub-block 0: scale 1, min 2
        block[1] = 0x13    // sub-block 1: scale 3, min 1
        block[2] = 0x05    // sub-block 2: scale 5, min 0
        block[8] = 0x01    // sub-block 8 (first of the second half): scale 1
        block[15] = 0x32   // sub-block 15: scale 2, min 3
        block[16 + 0] = 0xE4   // qs[0] = 0b11_10_01_00
        block[16 + 16] = 0x03  // qs[16]
        block[16 + 32] = 0x02  // qs[32]: second half, shift 0
        block[16 + 63] = 0xC0  // qs[63]: second half, shift 6 → 3
        block.replaceSubrange(80..<84, with: f16(1) + f16(0.5))
        let x = try run(.q2_K, block)
        XCTAssertEqual(x[0], -1)     // 1·1·0 − 0.5·2
        XCTAssertEqual(x[1], -1)
        XCTAssertEqual(x[16], 8.5)   // 1·3·3 − 0.5·1
        XCTAssertEqual(x[32], 5)     // qs[0] at shift 2 is 1; 1·5·1
        XCTAssertEqual(x[128], 2)    // 1·1·2
        XCTAssertEqual(x[255], 4.5)  // 1·2·3 − 0.5·3
        XCTAssertEqual(x[240], -1.5) // 0 − 0.5·3
    }

    func testQ3_KUnpacksSixBitScalesAndTheHighBitMask() throws {
        var block = [UInt8](repeating: 0, count: 110)
        // Scales (stored with +32): scale 0 = 33 → 1; scale 9 = 40 → 8; the rest 0 → −32.
        block[96 + 0] = 33 & 0x0F                    // low nibble of scale 0
        block[96 + 8] = UInt8((33 >> 4) & 3)         // its top two bits: byte 8, bits 0–1
        block[96 + 1] = UInt8(40 & 0x0F) << 4        // scale 9: high nibble of byte 1
        block[96 + 9] = UInt8((40 >> 4) & 3) << 4    // its top two bits: byte 8 + 9%4, bits 2·(9/4)
        block[0] = 0x01          // hmask[0] bit 0 → element 0 has its high bit
        block[16] = 0x10         // hmask[16] bit 4 → element 144 has its high bit
        block[32 + 0] = 0x03     // qs[0]: element 0 low bits 3
        block[32 + 48] = 0x02    // qs[48]: element 144 (second half, shift 0, second 16) low bits 2
        block.replaceSubrange(108..<110, with: f16(0.5))
        let x = try run(.q3_K, block)
        XCTAssertEqual(x[0], 1.5)     // 0.5 · 1 · 3
        XCTAssertEqual(x[1], -2)      // 0.5 · 1 · (0 − 4)
        XCTAssertEqual(x[16], 64)     // 0.5 · (−32) · (0 − 4)
        XCTAssertEqual(x[144], 8)     // 0.5 · 8 · 2
        XCTAssertEqual(x[145], -16)   // 0.5 · 8 · (0 − 4)
    }

    func testQ4_KUnpacksScalesAndMinsOfAllEightSubBlocks() throws {
        var block = [UInt8](repeating: 0, count: 144)
        block.replaceSubrange(0..<4, with: f16(2) + f16(1))
        let s = 4
        block[s + 0] = 3       // sub-block 0 scale 3
        block[s + 4] = 5       // sub-block 0 min 5
        block[s + 9] = 0x27    // sub-block 5: scale low nibble 7, min low nibble 2
        block[s + 1] = 0x40    // sub-block 5 scale top bits 1 → 23 (sub-block 1 scale stays 0)
        block[s + 5] = 0x80    // sub-block 5 min top bits 2 → 34 (sub-block 1 min stays 0)
        block[16 + 0] = 0x0A   // qs[0]: element 0 = 10, element 32 = 0
        block[16 + 64] = 0x30  // qs[64]: element 128 = 0, element 160 = 3
        let x = try run(.q4_K, block)
        XCTAssertEqual(x[0], 55)     // 2·3·10 − 1·5
        XCTAssertEqual(x[1], -5)     // 2·3·0 − 1·5
        XCTAssertEqual(x[32], 0)     // sub-block 1: scale 0, min 0
        XCTAssertEqual(x[160], 104)  // 2·23·3 − 1·34
        XCTAssertEqual(x[161], -34)
        XCTAssertEqual(x[128], 0)
    }

    func testQ5_KAddsTheHighBitPerChunk() throws {
        var block = [UInt8](repeating: 0, count: 176)
        block.replaceSubrange(0..<4, with: f16(2) + f16(1))
        block[4 + 0] = 3       // sub-block 0: scale 3
        block[4 + 4] = 5       //              min 5
        block[4 + 2] = 1       // sub-block 2: scale 1, min 0
        block[16 + 0] = 0b0000_0101   // qh[0]: bit 0 (chunk 0, low half) and bit 2 (chunk 1, low half)
        block[48 + 0] = 0x0A          // qs[0]
        let x = try run(.q5_K, block)
        XCTAssertEqual(x[0], 151)    // 2·3·(10 + 16) − 5
        XCTAssertEqual(x[1], -5)
        XCTAssertEqual(x[64], 32)    // 2·1·(0 + 16)
        XCTAssertEqual(x[65], 0)
    }

    func testQ6_KCombinesLowAndHighBitsWithSignedScales() throws {
        var block = [UInt8](repeating: 0, count: 210)
        block[0] = 0x1F                 // ql[0]: low 15 (element 0), high 1 (element 64)
        block[128] = 0b0000_0110        // qh[0]: bits 0–1 = 2 (element 0), bits 2–3 = 1 (element 32)
        block[192 + 0] = 2              // scale of elements 0..<16
        block[192 + 2] = 0xFF           // scale of elements 32..<48 = −1
        block[192 + 8] = 3              // scale of elements 128..<144
        block.replaceSubrange(208..<210, with: f16(0.5))
        let x = try run(.q6_K, block)
        XCTAssertEqual(x[0], 15)      // 0.5 · 2 · ((15 | 2<<4) − 32)
        XCTAssertEqual(x[32], 8)      // 0.5 · (−1) · ((0 | 1<<4) − 32)
        XCTAssertEqual(x[64], 0)      // scale 4 is 0
        XCTAssertEqual(x[128], -48)   // 0.5 · 3 · (0 − 32)
        XCTAssertEqual(x[1], -32)     // 0.5 · 2 · (0 − 32)
    }

    func testQ8_KUsesAFloat32Scale() throws {
        var block = [UInt8](repeating: 0, count: 292)
        withUnsafeBytes(of: Float(0.25).bitPattern.littleEndian) { block.replaceSubrange(0..<4, with: $0) }
        block[4] = 0xFC   // −4
        block[259] = 8
        let x = try run(.q8_K, block)
        XCTAssertEqual(x[0], -1)
        XCTAssertEqual(x[255], 2)
        XCTAssertEqual(x[1], 0)
    }
}
