// The 32-element legacy formats, quantized as ggml's `quantize_row_q{4,5,8}_{0,1}_ref` do. The symmetric types
// (`_0`) scale by the element of largest magnitude, keeping its sign so that it lands exactly on the most
// negative level; the asymmetric ones (`_1`) map [min, max] onto the levels. Arithmetic is float32 in ggml's
// order, and float → integer conversions truncate as C's casts do, so the bytes match.

/// Q4_0: f16 d, then 16 bytes; element j in the low nibble of byte j, element j + 16 in its high nibble.
func quantizeQ4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    let (d, id) = symmetricScale(x, levels: -8)
    storeHalf(d, y, 0)
    for j in 0..<16 {
        let lo = min(15, Int(x[j] * id + 8.5))
        let hi = min(15, Int(x[j + 16] * id + 8.5))
        y.storeBytes(of: UInt8(lo | hi << 4), toByteOffset: 2 + j, as: UInt8.self)
    }
}

/// Q4_1: f16 d, f16 min, 16 bytes of nibbles laid out as in Q4_0.
func quantizeQ4_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    let (lo, d, id) = asymmetricScale(x, levels: 15)
    storeHalf(d, y, 0)
    storeHalf(lo, y, 2)
    for j in 0..<16 {
        let a = min(15, Int((x[j] - lo) * id + 0.5))
        let b = min(15, Int((x[j + 16] - lo) * id + 0.5))
        y.storeBytes(of: UInt8(a | b << 4), toByteOffset: 4 + j, as: UInt8.self)
    }
}

/// Q5_0: f16 d, a 32-bit word of fifth bits (bit j for element j), 16 bytes of low nibbles as in Q4_0.
func quantizeQ5_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    let (d, id) = symmetricScale(x, levels: -16)
    storeHalf(d, y, 0)
    var qh: UInt32 = 0
    for j in 0..<16 {
        let a = min(31, Int(x[j] * id + 16.5))
        let b = min(31, Int(x[j + 16] * id + 16.5))
        y.storeBytes(of: UInt8((a & 15) | (b & 15) << 4), toByteOffset: 6 + j, as: UInt8.self)
        qh |= UInt32((a >> 4) & 1) << j
        qh |= UInt32((b >> 4) & 1) << (j + 16)
    }
    y.storeBytes(of: qh.littleEndian, toByteOffset: 2, as: UInt32.self)
}

/// Q5_1: f16 d, f16 min, the fifth-bit word, 16 bytes of low nibbles.
func quantizeQ5_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    let (lo, d, id) = asymmetricScale(x, levels: 31)
    storeHalf(d, y, 0)
    storeHalf(lo, y, 2)
    var qh: UInt32 = 0
    for j in 0..<16 {
        let a = Int((x[j] - lo) * id + 0.5)
        let b = Int((x[j + 16] - lo) * id + 0.5)
        y.storeBytes(of: UInt8((a & 15) | (b & 15) << 4), toByteOffset: 8 + j, as: UInt8.self)
        qh |= UInt32((a >> 4) & 1) << j
        qh |= UInt32((b >> 4) & 1) << (j + 16)
    }
    y.storeBytes(of: qh.littleEndian, toByteOffset: 4, as: UInt32.self)
}

/// Q8_0: f16 d = max|x| / 127, then 32 int8 rounded half away from zero.
func quantizeQ8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var amax: Float = 0
    for j in 0..<32 { amax = max(amax, abs(x[j])) }
    let d = amax / 127
    let id: Float = d != 0 ? 1 / d : 0
    storeHalf(d, y, 0)
    for j in 0..<32 {
        let q = Int8((x[j] * id).rounded(.toNearestOrAwayFromZero))
        y.storeBytes(of: UInt8(bitPattern: q), toByteOffset: 2 + j, as: UInt8.self)
    }
}

/// The scale of a symmetric block: d = m / `levels`, m the first element of largest magnitude (with its sign),
/// and its reciprocal (0 for an all-zero block).
@inline(__always)
private func symmetricScale(_ x: UnsafePointer<Float>, levels: Float) -> (d: Float, id: Float) {
    var amax: Float = 0
    var m: Float = 0
    for j in 0..<32 where amax < abs(x[j]) {
        amax = abs(x[j])
        m = x[j]
    }
    let d = m / levels
    return (d, d != 0 ? 1 / d : 0)
}

/// The min, step and reciprocal step of an asymmetric block over `levels` steps.
@inline(__always)
private func asymmetricScale(_ x: UnsafePointer<Float>, levels: Float) -> (min: Float, d: Float, id: Float) {
    var lo = Float.greatestFiniteMagnitude
    var hi = -Float.greatestFiniteMagnitude
    for j in 0..<32 {
        if x[j] < lo { lo = x[j] }
        if x[j] > hi { hi = x[j] }
    }
    let d = (hi - lo) / levels
    return (lo, d, d != 0 ? 1 / d : 0)
}
