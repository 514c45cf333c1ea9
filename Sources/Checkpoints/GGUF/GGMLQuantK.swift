// The 256-element "k-quant" super-block formats of ggml (`block_q2_K` ... `block_q8_K` in ggml-common.h),
// dequantized as `dequantize_row_q*_K` in ggml-quants.c does. Each super-block holds 16 or 8 sub-blocks
// with their own small integer scales (and mins), themselves scaled by the f16 `d` (and `dmin`).

/// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64] (2-bit quants), d, dmin (f16).
/// Sub-block s uses x = d · (scales[s] & 15) · q − dmin · (scales[s] >> 4). Quants are taken from 32-byte groups:
/// within each 128-element half, shift 0, 2, 4, 6 of bytes 0..<16 then 16..<32 in turn.
func dequantizeQ2_K(_ src: UnsafeRawPointer, blocks n: Int, into y: UnsafeMutablePointer<Float>) {
    for b in 0..<n {
        let p = src + b * 84
        let scales = p.assumingMemoryBound(to: UInt8.self)
        let d = half(p, 80)
        let dmin = half(p, 82)
        var out = y + b * 256
        var s = 0
        for halfIndex in 0..<2 {
            let q = (p + 16 + 32 * halfIndex).assumingMemoryBound(to: UInt8.self)
            for shift in stride(from: UInt8(0), to: 8, by: 2) {
                for part in 0..<2 {
                    let sc = scales[s]
                    s += 1
                    let dl = d * Float(sc & 0x0F)
                    let ml = dmin * Float(sc >> 4)
                    let qq = q + 16 * part
                    for l in 0..<16 { out[l] = dl * Float((qq[l] >> shift) & 3) - ml }
                    out += 16
                }
            }
        }
    }
}

/// Q3_K: hmask[32] (third bits), qs[64] (low 2 bits), scales[12] (sixteen 6-bit scales), d (f16).
/// x = d · (scale − 32) · (q − 4·(1 − hbit)), with the same 2-bit walk as Q2_K and the high bit of element
/// l (of 32) in bit `k` of hmask[l], k counting the 32-element groups.
func dequantizeQ3_K(_ src: UnsafeRawPointer, blocks n: Int, into y: UnsafeMutablePointer<Float>) {
    for b in 0..<n {
        let p = src + b * 110
        let hm = p.assumingMemoryBound(to: UInt8.self)
        let sb = (p + 96).assumingMemoryBound(to: UInt8.self)
        let d = half(p, 108)
        // Scale i: low 4 bits from byte i (i < 8) or the high nibble of byte i − 8; high 2 bits from byte 8 + i%4.
        var scales = (Int32(0), Int32(0), Int32(0), Int32(0), Int32(0), Int32(0), Int32(0), Int32(0),
                      Int32(0), Int32(0), Int32(0), Int32(0), Int32(0), Int32(0), Int32(0), Int32(0))
        withUnsafeMutableBytes(of: &scales) { raw in
            let sc = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            for i in 0..<16 {
                let low = i < 8 ? sb[i] & 0x0F : sb[i - 8] >> 4
                let high = (sb[8 + i % 4] >> UInt8(2 * (i / 4))) & 3
                sc[i] = Int32(low | (high << 4)) - 32
            }
        }
        withUnsafeBytes(of: &scales) { raw in
            let sc = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            var out = y + b * 256
            var s = 0
            var bit: UInt8 = 1
            for halfIndex in 0..<2 {
                let q = (p + 32 + 32 * halfIndex).assumingMemoryBound(to: UInt8.self)
                for shift in stride(from: UInt8(0), to: 8, by: 2) {
                    for part in 0..<2 {
                        let dl = d * Float(sc[s])
                        s += 1
                        let qq = q + 16 * part
                        let hh = hm + 16 * part
                        for l in 0..<16 {
                            let low = Int32((qq[l] >> shift) & 3)
                            let sub: Int32 = (hh[l] & bit) != 0 ? 0 : 4
                            out[l] = dl * Float(low - sub)
                        }
                        out += 16
                    }
                    bit <<= 1
                }
            }
        }
    }
}

/// The 6-bit scale and min of sub-block `j` (of 8) packed in the 12 `scales` bytes of Q4_K/Q5_K
/// (`get_scale_min_k4`): sub-blocks 0–3 sit in the low 6 bits of bytes j and j+4; 4–7 take their low
/// nibbles from byte j+4 and their top two bits from the spare bits of bytes j−4 and j.
@inline(__always)
func scaleMinK4(_ j: Int, _ q: UnsafePointer<UInt8>) -> (Float, Float) {
    if j < 4 {
        return (Float(q[j] & 63), Float(q[j + 4] & 63))
    }
    let sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4)
    let m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4)
    return (Float(sc), Float(m))
}

/// Q4_K: d, dmin (f16), scales[12], qs[128]. Each 64-element chunk uses 32 quant bytes: low nibbles for
/// sub-block 2c, high nibbles for 2c+1; x = d · scale · q − dmin · min.
func dequantizeQ4_K(_ src: UnsafeRawPointer, blocks n: Int, into y: UnsafeMutablePointer<Float>) {
    for b in 0..<n {
        let p = src + b * 144
        let d = half(p, 0)
        let dmin = half(p, 2)
        let sc = (p + 4).assumingMemoryBound(to: UInt8.self)
        let q = (p + 16).assumingMemoryBound(to: UInt8.self)
        let out = y + b * 256
        for c in 0..<4 {
            let (s1, m1) = scaleMinK4(2 * c, sc)
            let (s2, m2) = scaleMinK4(2 * c + 1, sc)
            let d1 = d * s1, o1 = dmin * m1
            let d2 = d * s2, o2 = dmin * m2
            let qq = q + 32 * c
            let o = out + 64 * c
            for l in 0..<32 {
                let v = qq[l]
                o[l] = d1 * Float(v & 0x0F) - o1
                o[l + 32] = d2 * Float(v >> 4) - o2
            }
        }
    }
}

/// Q5_K: d, dmin (f16), scales[12], qh[32], qs[128]. As Q4_K plus a fifth bit: for chunk c, bit 2c of qh[l]
/// for the low-nibble half and bit 2c+1 for the high-nibble half.
func dequantizeQ5_K(_ src: UnsafeRawPointer, blocks n: Int, into y: UnsafeMutablePointer<Float>) {
    for b in 0..<n {
        let p = src + b * 176
        let d = half(p, 0)
        let dmin = half(p, 2)
        let sc = (p + 4).assumingMemoryBound(to: UInt8.self)
        let qh = (p + 16).assumingMemoryBound(to: UInt8.self)
        let q = (p + 48).assumingMemoryBound(to: UInt8.self)
        let out = y + b * 256
        for c in 0..<4 {
            let (s1, m1) = scaleMinK4(2 * c, sc)
            let (s2, m2) = scaleMinK4(2 * c + 1, sc)
            let d1 = d * s1, o1 = dmin * m1
            let d2 = d * s2, o2 = dmin * m2
            let qq = q + 32 * c
            let o = out + 64 * c
            let shiftLow = UInt8(2 * c), shiftHigh = UInt8(2 * c + 1)
            for l in 0..<32 {
                let v = qq[l]
                let h = qh[l]
                o[l] = d1 * Float((v & 0x0F) | (((h >> shiftLow) & 1) << 4)) - o1
                o[l + 32] = d2 * Float((v >> 4) | (((h >> shiftHigh) & 1) << 4)) - o2
            }
        }
    }
}

/// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (int8), d (f16); x = d · scale · (q − 32).
/// Each 128-element half uses 64 ql bytes and 32 qh bytes: element l + 32k (k = 0..3) takes the low or high
/// nibble of ql[l] / ql[l+32] and bits 2k..2k+1 of qh[l]; its scale is scales[8·half + l/16 + 2k].
func dequantizeQ6_K(_ src: UnsafeRawPointer, blocks n: Int, into y: UnsafeMutablePointer<Float>) {
    for b in 0..<n {
        let p = src + b * 210
        let d = half(p, 208)
        for h in 0..<2 {
            let ql = (p + 64 * h).assumingMemoryBound(to: UInt8.self)
            let qh = (p + 128 + 32 * h).assumingMemoryBound(to: UInt8.self)
            let sc = (p + 192 + 8 * h).assumingMemoryBound(to: Int8.self)
            let out = y + b * 256 + 128 * h
            for g in 0..<2 {
                let s0 = d * Float(sc[g]), s1 = d * Float(sc[g + 2])
                let s2 = d * Float(sc[g + 4]), s3 = d * Float(sc[g + 6])
                for l in (16 * g)..<(16 * g + 16) {
                    let a = ql[l], c = ql[l + 32], hb = qh[l]
                    let q0 = Int32((a & 0x0F) | ((hb & 3) << 4)) - 32
                    let q1 = Int32((c & 0x0F) | (((hb >> 2) & 3) << 4)) - 32
                    let q2 = Int32((a >> 4) | (((hb >> 4) & 3) << 4)) - 32
                    let q3 = Int32((c >> 4) | (((hb >> 6) & 3) << 4)) - 32
                    out[l] = s0 * Float(q0)
                    out[l + 32] = s1 * Float(q1)
                    out[l + 64] = s2 * Float(q2)
                    out[l + 96] = s3 * Float(q3)
                }
            }
        }
    }
}

/// Q8_K: d (f32), qs[256] (int8), bsums[16] (int16, unused here); x = d · q.
func dequantizeQ8_K(_ src: UnsafeRawPointer, blocks n: Int, into y: UnsafeMutablePointer<Float>) {
    for b in 0..<n {
        let p = src + b * 292
        let d = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
        let q = (p + 4).assumingMemoryBound(to: Int8.self)
        let out = y + b * 256
        for j in 0..<256 { out[j] = Float(q[j]) * d }
    }
}
