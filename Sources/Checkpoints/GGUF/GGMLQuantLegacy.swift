// The 32-element block formats of ggml (`block_q4_0` ... `block_q8_1` in ggml-common.h). In each,
// element j < 16 takes the low nibble of quant byte j and element j + 16 the high nibble.

/// Q4_0: `d` (f16), 16 bytes of 4-bit quants; x = d · (q − 8).
func dequantizeQ4_0(_ src: UnsafeRawPointer, blocks n: Int, into y: UnsafeMutablePointer<Float>) {
    for b in 0..<n {
        let p = src + b * 18
        let d = half(p, 0)
        let q = (p + 2).assumingMemoryBound(to: UInt8.self)
        let out = y + b * 32
        for j in 0..<16 {
            let v = q[j]
            out[j] = Float(Int32(v & 0x0F) - 8) * d
            out[j + 16] = Float(Int32(v >> 4) - 8) * d
        }
    }
}

/// Q4_1: `d`, `m` (f16), 16 bytes of 4-bit quants; x = d · q + m.
func dequantizeQ4_1(_ src: UnsafeRawPointer, blocks n: Int, into y: UnsafeMutablePointer<Float>) {
    for b in 0..<n {
        let p = src + b * 20
        let d = half(p, 0)
        let m = half(p, 2)
        let q = (p + 4).assumingMemoryBound(to: UInt8.self)
        let out = y + b * 32
        for j in 0..<16 {
            let v = q[j]
            out[j] = Float(v & 0x0F) * d + m
            out[j + 16] = Float(v >> 4) * d + m
        }
    }
}

/// Q5_0: `d` (f16), 32 fifth bits (u32, bit j for element j), 16 bytes of nibbles; x = d · (q − 16).
func dequantizeQ5_0(_ src: UnsafeRawPointer, blocks n: Int, into y: UnsafeMutablePointer<Float>) {
    for b in 0..<n {
        let p = src + b * 22
        let d = half(p, 0)
        let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        let q = (p + 6).assumingMemoryBound(to: UInt8.self)
        let out = y + b * 32
        for j in 0..<16 {
            let v = q[j]
            let h0 = Int32((qh >> UInt32(j)) & 1) << 4
            let h1 = Int32((qh >> UInt32(j + 16)) & 1) << 4
            out[j] = Float((Int32(v & 0x0F) | h0) - 16) * d
            out[j + 16] = Float((Int32(v >> 4) | h1) - 16) * d
        }
    }
}

/// Q5_1: `d`, `m` (f16), 32 fifth bits, 16 bytes of nibbles; x = d · q + m.
func dequantizeQ5_1(_ src: UnsafeRawPointer, blocks n: Int, into y: UnsafeMutablePointer<Float>) {
    for b in 0..<n {
        let p = src + b * 24
        let d = half(p, 0)
        let m = half(p, 2)
        let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let q = (p + 8).assumingMemoryBound(to: UInt8.self)
        let out = y + b * 32
        for j in 0..<16 {
            let v = q[j]
            let h0 = UInt32((qh >> UInt32(j)) & 1) << 4
            let h1 = UInt32((qh >> UInt32(j + 16)) & 1) << 4
            out[j] = Float(UInt32(v & 0x0F) | h0) * d + m
            out[j + 16] = Float(UInt32(v >> 4) | h1) * d + m
        }
    }
}

/// Q8_0 (and Q8_1, whose extra f16 after `d` is a precomputed sum): `d` (f16), 32 int8; x = d · q.
func dequantizeQ8_0(_ src: UnsafeRawPointer, blocks n: Int, into y: UnsafeMutablePointer<Float>, blockBytes: Int) {
    let quantStart = blockBytes - 32
    for b in 0..<n {
        let p = src + b * blockBytes
        let d = half(p, 0)
        let q = (p + quantStart).assumingMemoryBound(to: Int8.self)
        let out = y + b * 32
        for j in 0..<32 { out[j] = Float(q[j]) * d }
    }
}
