import Numerics
import XCTest

final class HalfPrecisionTests: XCTestCase {
    func testHalfToFloatMatchesFloat16ForEveryBitPattern() {
        for bits in 0...UInt16.max {
            let ours = halfBitsToFloat(bits), ref = Float(Float16(bitPattern: bits))
            if ref.isNaN { XCTAssertTrue(ours.isNaN, "\(bits)") } else { XCTAssertEqual(ours.bitPattern, ref.bitPattern, "\(bits)") }
        }
    }

    func testFloatToHalfRoundsLikeFloat16() {
        // Every half value, every midpoint between neighbours (ties), and points just off them, plus random floats.
        var samples: [Float] = [0, -0, 65504, 65519.99, 65520, 70000, .infinity, -.infinity, 1e-8, 2.98e-8, 5.96e-8, 6.1e-5]
        for bits in 0..<UInt16(0x7C00) {
            let a = Float(Float16(bitPattern: bits)), b = Float(Float16(bitPattern: bits + 1))
            let mid = (a + b) / 2
            samples += [a, mid, mid.nextUp, mid.nextDown, -mid]
        }
        var rng = SplitMix64(seed: 1)
        for _ in 0..<200_000 { samples.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x7FFF_FFFF | 0)) }
        for x in samples where !x.isNaN {
            XCTAssertEqual(floatToHalfBits(x), Float16(x).bitPattern, "\(x)")
        }
        XCTAssertTrue(halfBitsToFloat(floatToHalfBits(.nan)).isNaN)
    }

    func testBF16RoundsToNearestEven() {
        XCTAssertEqual(floatToBF16(1.0), 0x3F80)
        XCTAssertEqual(floatToBF16(Float(bitPattern: 0x3F80_8000)), 0x3F80)   // tie, even stays
        XCTAssertEqual(floatToBF16(Float(bitPattern: 0x3F81_8000)), 0x3F82)   // tie, odd rounds up
        XCTAssertEqual(floatToBF16(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertTrue(bf16ToFloat(floatToBF16(.nan)).isNaN)
        XCTAssertEqual(bf16ToFloat(floatToBF16(-2.5)), -2.5)
    }

    func testSeededStreamsAreStableAndIndependent() {
        var a = SplitMix64(seed: 9, stream: "model.layers.0.mlp.up_proj.weight#1")
        var b = SplitMix64(seed: 9, stream: "model.layers.0.mlp.up_proj.weight#1")
        var c = SplitMix64(seed: 9, stream: "model.layers.0.mlp.up_proj.weight#2")
        let xs = (0..<8).map { _ in a.next() }
        XCTAssertEqual(xs, (0..<8).map { _ in b.next() })
        XCTAssertNotEqual(xs, (0..<8).map { _ in c.next() })
        XCTAssertEqual(stableHash("abc"), 0xE71F_A219_0541_574B)   // FNV-1a 64 of "abc"
    }
}
