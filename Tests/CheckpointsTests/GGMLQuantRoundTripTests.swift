import Checkpoints
import Numerics
import XCTest

/// Round trips: a known vector is quantized by a deliberately simple reference quantizer written here from
/// the block formats (not ggml's search for optimal scales), then dequantized by Crucible. The result must
/// equal the quantizer's own reconstruction (which checks the bit layout end to end) and stay within the
/// type's rounding error of the input.
final class GGMLQuantRoundTripTests: XCTestCase {
    private struct Quantized {
        var bytes: [UInt8] = []
        var reconstruction: [Float] = []
        var maxError: [Float] = []     // per element: half a quantization step (plus scale rounding slack)
    }

    private static func vector(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        // Mixed magnitudes per 16 elements so the sub-block scales differ.
        return (0..<n).map { i in rng.nextGaussian() * (0.2 + Float((i / 16) % 5)) + (i % 64 < 8 ? 0.7 : 0) }
    }

    private static func f16(_ x: Float) -> (bits: [UInt8], value: Float) {
        let h = Float16(x)
        return ([UInt8(h.bitPattern & 0xFF), UInt8(h.bitPattern >> 8)], Float(h))
    }

    private func check(_ type: GGMLType, _ q: Quantized, _ x: [Float], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(q.bytes.count, x.count / type.blockSize * type.bytesPerBlock, file: file, line: line)
        var out = [Float](repeating: .nan, count: x.count)
        try q.bytes.withUnsafeBytes { raw in
            try out.withUnsafeMutableBufferPointer { try dequantize(type, raw.baseAddress!, count: x.count, into: $0.baseAddress!) }
        }
        var worstLayout: Float = 0, worstRounding: Float = 0
        for i in 0..<x.count {
            let layout = abs(out[i] - q.reconstruction[i]) / (abs(q.reconstruction[i]) + 1)
            worstLayout = max(worstLayout, layout)
            if layout > 1e-5 {
                XCTFail("\(type.name) element \(i): dequantized \(out[i]), reference reconstruction \(q.reconstruction[i])", file: file, line: line)
                return
            }
            let err = abs(out[i] - x[i])
            worstRounding = max(worstRounding, err / max(q.maxError[i], 1e-12))
            if err > q.maxError[i] {
                XCTFail("\(type.name) element \(i): |\(out[i]) − \(x[i])| = \(err) exceeds \(q.maxError[i])", file: file, line: line)
                return
            }
        }
        XCTAssertLessThan(worstLayout, 1e-5, file: file, line: line)
    }

    // MARK: 32-element formats

    /// Symmetric formats: x ≈ d · (q − offset), q in 0...maxCode.
    private func symmetric(_ x: [Float], levels: Int, fifthBit: Bool) -> Quantized {
        var r = Quantized()
        let offset = levels / 2
        for b in stride(from: 0, to: x.count, by: 32) {
            let v = Array(x[b..<(b + 32)])
            let amax = v.map(abs).max()!
            let (dBits, d) = Self.f16(amax / Float(offset - 1))
            var codes = v.map { d == 0 ? offset : min(levels - 1, max(0, Int(($0 / d).rounded()) + offset)) }
            if d == 0 { codes = [Int](repeating: offset, count: 32) }
            r.bytes += dBits
            if fifthBit {
                var qh: UInt32 = 0
                for j in 0..<32 where codes[j] & 16 != 0 { qh |= 1 << UInt32(j) }
                r.bytes += [UInt8(qh & 0xFF), UInt8((qh >> 8) & 0xFF), UInt8((qh >> 16) & 0xFF), UInt8(qh >> 24)]
            }
            for j in 0..<16 { r.bytes.append(UInt8(codes[j] & 15) | UInt8(codes[j + 16] & 15) << 4) }
            for j in 0..<32 {
                r.reconstruction.append(Float(codes[j] - offset) * d)
                r.maxError.append(d * 0.5 * 1.01 + 1e-6)
            }
        }
        return r
    }

    /// Affine formats: x ≈ d · q + m, q in 0..<levels.
    private func affine(_ x: [Float], levels: Int, fifthBit: Bool) -> Quantized {
        var r = Quantized()
        for b in stride(from: 0, to: x.count, by: 32) {
            let v = Array(x[b..<(b + 32)])
            let (mBits, m) = Self.f16(v.min()!)
            let (dBits, d) = Self.f16((v.max()! - m) / Float(levels - 1))
            let codes = v.map { d == 0 ? 0 : min(levels - 1, max(0, Int((($0 - m) / d).rounded()))) }
            r.bytes += dBits + mBits
            if fifthBit {
                var qh: UInt32 = 0
                for j in 0..<32 where codes[j] & 16 != 0 { qh |= 1 << UInt32(j) }
                r.bytes += [UInt8(qh & 0xFF), UInt8((qh >> 8) & 0xFF), UInt8((qh >> 16) & 0xFF), UInt8(qh >> 24)]
            }
            for j in 0..<16 { r.bytes.append(UInt8(codes[j] & 15) | UInt8(codes[j + 16] & 15) << 4) }
            for j in 0..<32 {
                r.reconstruction.append(Float(codes[j]) * d + m)
                // f16 rounding of the min and scale can push the top value a little past the last level.
                r.maxError.append(d * 0.5 * 1.01 + abs(m) * 1e-3 + d * Float(levels) * 1e-3 + 1e-6)
            }
        }
        return r
    }

    func testQ4_0RoundTrip() throws {
        let x = Self.vector(32 * 24, seed: 1)
        try check(.q4_0, symmetric(x, levels: 16, fifthBit: false), x)
    }

    func testQ5_0RoundTrip() throws {
        let x = Self.vector(32 * 24, seed: 2)
        try check(.q5_0, symmetric(x, levels: 32, fifthBit: true), x)
    }

    func testQ4_1RoundTrip() throws {
        let x = Self.vector(32 * 24, seed: 3)
        try check(.q4_1, affine(x, levels: 16, fifthBit: false), x)
    }

    func testQ5_1RoundTrip() throws {
        let x = Self.vector(32 * 24, seed: 4)
        try check(.q5_1, affine(x, levels: 32, fifthBit: true), x)
    }

    func testQ8_0RoundTrip() throws {
        let x = Self.vector(32 * 24, seed: 5)
        var r = Quantized()
        for b in stride(from: 0, to: x.count, by: 32) {
            let v = Array(x[b..<(b + 32)])
            let (dBits, d) = Self.f16(v.map(abs).max()! / 127)
            let codes = v.map { min(127, max(-127, Int(($0 / d).rounded()))) }
            r.bytes += dBits + codes.map { UInt8(bitPattern: Int8($0)) }
            for c in codes {
                r.reconstruction.append(Float(c) * d)
                r.maxError.append(d * 0.5 * 1.01 + 1e-6)
            }
        }
        try check(.q8_0, r, x)
    }

    // MARK: k-quants

    /// Per-sub-block affine parameters quantized to `bits`-bit integers under super-block scales d, dmin:
    /// x ≈ d·sc·q − dmin·m, q in 0..<levels.
    private func kAffine(_ v: ArraySlice<Float>, subBlock: Int, levels: Int, scaleBits: Int)
        -> (dBits: [UInt8], dminBits: [UInt8], sc: [Int], m: [Int], q: [Int], recon: [Float], err: [Float]) {
        let subs = v.count / subBlock
        let maxCode = Float((1 << scaleBits) - 1)
        var scales: [Float] = [], mins: [Float] = []
        for s in 0..<subs {
            let sub = v[(v.startIndex + s * subBlock)..<(v.startIndex + (s + 1) * subBlock)]
            let mn = -min(0, sub.min()!)
            mins.append(mn)
            scales.append((sub.max()! + mn) / Float(levels - 1))
        }
        let (dBits, d) = Self.f16(scales.max()! / maxCode)
        let (dminBits, dmin) = Self.f16(mins.max()! / maxCode)
        let sc = scales.map { d == 0 ? 0 : min(Int(maxCode), Int(($0 / d).rounded(.up))) }
        let m = mins.map { dmin == 0 ? 0 : min(Int(maxCode), Int(($0 / dmin).rounded(.up))) }
        var q: [Int] = [], recon: [Float] = [], err: [Float] = []
        for (i, xi) in v.enumerated() {
            let s = i / subBlock
            let step = d * Float(sc[s])
            let offset = dmin * Float(m[s])
            let code = step == 0 ? 0 : min(levels - 1, max(0, Int(((xi + offset) / step).rounded())))
            q.append(code)
            recon.append(step * Float(code) - offset)
            err.append(step * 0.5 * 1.01 + (offset - mins[s]) + 1e-5)
        }
        return (dBits, dminBits, sc, m, q, recon, err)
    }

    /// Packs eight 6-bit scales and mins into the 12 bytes of Q4_K/Q5_K: sub-blocks 0–3 in the low 6 bits of
    /// bytes 0–3 (scales) and 4–7 (mins); sub-blocks 4–7 keep their low nibbles in bytes 8–11 and their top
    /// two bits in the spare top bits of bytes 0–7.
    private func packK4Scales(_ sc: [Int], _ m: [Int]) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 12)
        for j in 0..<4 {
            b[j] = UInt8(sc[j] & 63) | UInt8((sc[j + 4] >> 4) & 3) << 6
            b[j + 4] = UInt8(m[j] & 63) | UInt8((m[j + 4] >> 4) & 3) << 6
            b[j + 8] = UInt8(sc[j + 4] & 15) | UInt8(m[j + 4] & 15) << 4
        }
        return b
    }

    func testQ4_KRoundTrip() throws {
        let x = Self.vector(256 * 6, seed: 6)
        var r = Quantized()
        for b in stride(from: 0, to: x.count, by: 256) {
            let k = kAffine(x[b..<(b + 256)], subBlock: 32, levels: 16, scaleBits: 6)
            var qs = [UInt8](repeating: 0, count: 128)
            for (e, code) in k.q.enumerated() {
                let chunk = e / 64, rem = e % 64
                if rem < 32 { qs[32 * chunk + rem] |= UInt8(code) } else { qs[32 * chunk + rem - 32] |= UInt8(code) << 4 }
            }
            r.bytes += k.dBits + k.dminBits + packK4Scales(k.sc, k.m) + qs
            r.reconstruction += k.recon
            r.maxError += k.err
        }
        try check(.q4_K, r, x)
    }

    func testQ5_KRoundTrip() throws {
        let x = Self.vector(256 * 6, seed: 7)
        var r = Quantized()
        for b in stride(from: 0, to: x.count, by: 256) {
            let k = kAffine(x[b..<(b + 256)], subBlock: 32, levels: 32, scaleBits: 6)
            var qs = [UInt8](repeating: 0, count: 128)
            var qh = [UInt8](repeating: 0, count: 32)
            for (e, code) in k.q.enumerated() {
                let chunk = e / 64, rem = e % 64, l = rem % 32
                let upper = rem >= 32
                qs[32 * chunk + l] |= UInt8(code & 15) << (upper ? 4 : 0)
                if code & 16 != 0 { qh[l] |= 1 << UInt8(2 * chunk + (upper ? 1 : 0)) }
            }
            r.bytes += k.dBits + k.dminBits + packK4Scales(k.sc, k.m) + qh + qs
            r.reconstruction += k.recon
            r.maxError += k.err
        }
        try check(.q5_K, r, x)
    }

    func testQ2_KRoundTrip() throws {
        let x = Self.vector(256 * 6, seed: 8)
        var r = Quantized()
        for b in stride(from: 0, to: x.count, by: 256) {
            let k = kAffine(x[b..<(b + 256)], subBlock: 16, levels: 4, scaleBits: 4)
            var qs = [UInt8](repeating: 0, count: 64)
            for (e, code) in k.q.enumerated() {
                // Element e: half e/128, 2-bit field (e%128)/32, byte (e%32) of that half's 32 bytes.
                let half = e / 128, field = (e % 128) / 32, l = e % 32
                qs[32 * half + l] |= UInt8(code) << UInt8(2 * field)
            }
            let scales = (0..<16).map { UInt8(k.sc[$0]) | UInt8(k.m[$0]) << 4 }
            r.bytes += scales + qs + k.dBits + k.dminBits
            r.reconstruction += k.recon
            r.maxError += k.err
        }
        try check(.q2_K, r, x)
    }

    func testQ3_KRoundTrip() throws {
        let x = Self.vector(256 * 6, seed: 9)
        var r = Quantized()
        for b in stride(from: 0, to: x.count, by: 256) {
            let v = x[b..<(b + 256)]
            // Per 16 elements a signed 6-bit scale (stored + 32); quants −4...3 (stored as 2 low bits + a high bit);
            // the scale covers ±3 steps so that positive values are not clipped at 3.
            let subScales = (0..<16).map { s in v[(b + 16 * s)..<(b + 16 * s + 16)].map(abs).max()! / 3 }
            let (dBits, d) = Self.f16(subScales.max()! / 31)
            let sc = subScales.map { d == 0 ? 0 : min(31, Int(($0 / d).rounded(.up))) }
            var hmask = [UInt8](repeating: 0, count: 32)
            var qs = [UInt8](repeating: 0, count: 64)
            for (e, xi) in v.enumerated() {
                let s = e / 16
                let step = d * Float(sc[s])
                let code = step == 0 ? 0 : min(3, max(-4, Int((xi / step).rounded())))
                let stored = code + 4
                let half = e / 128, field = (e % 128) / 32, l = e % 32
                qs[32 * half + l] |= UInt8(stored & 3) << UInt8(2 * field)
                if stored >= 4 { hmask[l] |= 1 << UInt8(4 * half + field) }
                r.reconstruction.append(step * Float(code))
                r.maxError.append(step * 0.5 * 1.01 + 1e-5)
            }
            var scales = [UInt8](repeating: 0, count: 12)
            for i in 0..<16 {
                let s6 = sc[i] + 32
                if i < 8 { scales[i] |= UInt8(s6 & 15) } else { scales[i - 8] |= UInt8(s6 & 15) << 4 }
                scales[8 + i % 4] |= UInt8((s6 >> 4) & 3) << UInt8(2 * (i / 4))
            }
            r.bytes += hmask + qs + scales + dBits
        }
        try check(.q3_K, r, x)
    }

    func testQ6_KRoundTrip() throws {
        let x = Self.vector(256 * 6, seed: 10)
        var r = Quantized()
        for b in stride(from: 0, to: x.count, by: 256) {
            let v = x[b..<(b + 256)]
            let subScales = (0..<16).map { s in v[(b + 16 * s)..<(b + 16 * s + 16)].map(abs).max()! / 31 }
            let (dBits, d) = Self.f16(subScales.max()! / 127)
            let sc = subScales.map { d == 0 ? 0 : min(127, Int(($0 / d).rounded(.up))) }
            var ql = [UInt8](repeating: 0, count: 128)
            var qh = [UInt8](repeating: 0, count: 64)
            for (e, xi) in v.enumerated() {
                let step = d * Float(sc[e / 16])
                let code = step == 0 ? 0 : min(31, max(-32, Int((xi / step).rounded())))
                let stored = code + 32
                // Element e: half h, group k = (e%128)/32 picks ql[l] / ql[l+32], low / high nibble, qh bits 2k.
                let h = e / 128, k = (e % 128) / 32, l = e % 32
                let qlIndex = 64 * h + l + (k % 2 == 1 ? 32 : 0)
                ql[qlIndex] |= UInt8(stored & 15) << (k >= 2 ? 4 : 0)
                qh[32 * h + l] |= UInt8(stored >> 4) << UInt8(2 * k)
                r.reconstruction.append(step * Float(code))
                r.maxError.append(step * 0.5 * 1.01 + 1e-5)
            }
            r.bytes += ql + qh + sc.map { UInt8(bitPattern: Int8($0)) } + dBits
        }
        try check(.q6_K, r, x)
    }
}
