/// Conversions between float32 and the 16-bit float formats.
///
/// Float16 is the native IEEE half type. BF16 is the upper half of a float32's bits; converting to it
/// rounds to nearest, ties to even (what torch does), and keeps NaN a NaN.
@inlinable @inline(__always)
public func bf16ToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

@inlinable @inline(__always)
public func floatToBF16(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x0040) }
    let lsb = (bits >> 16) & 1
    let rounded = bits &+ 0x7FFF &+ lsb
    return UInt16(truncatingIfNeeded: rounded >> 16)
}

/// IEEE half bits → float by moving the bit fields. Without F16C the compiler lowers `Float(Float16)` to a
/// library call, ten times slower than this. Normal numbers only need the exponent re-biased (15 → 127);
/// subnormals are renormalised by letting the FPU subtract 2^-14; infinities and NaNs keep an all-ones exponent.
@inlinable @inline(__always)
public func halfBitsToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let magnitude = UInt32(h & 0x7FFF) << 13
    let exponent = magnitude & 0x0F80_0000
    if exponent == 0x0F80_0000 { return Float(bitPattern: sign | magnitude | 0x7F80_0000) }
    if exponent == 0 {
        let value = Float(bitPattern: magnitude | 0x3880_0000) - Float(bitPattern: 0x3880_0000)
        return Float(bitPattern: sign | value.bitPattern)
    }
    return Float(bitPattern: sign | (magnitude &+ 0x3800_0000))
}

/// Float → IEEE half bits, rounding to nearest even (as `Float16(x)` does), without a library call.
@inlinable @inline(__always)
public func floatToHalfBits(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
    let a = x & 0x7FFF_FFFF
    if a > 0x7F80_0000 { return sign | 0x7E00 | UInt16(truncatingIfNeeded: (a >> 13) & 0x3FF) }  // NaN stays NaN
    if a >= 0x4780_0000 { return sign | 0x7C00 }                                                // ≥ 65536 and ∞ → ∞
    if a < 0x3880_0000 {
        // Below 2^-14: adding 0.5 (whose ulp is 2^-24) rounds to a multiple of the half subnormal step, ties to even.
        let r = (Float(bitPattern: a) + 0.5).bitPattern &- 0x3F00_0000
        return sign | UInt16(truncatingIfNeeded: r)
    }
    var h = (a >> 13) &- (112 << 10)
    let rest = a & 0x1FFF
    if rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1) { h &+= 1 }   // carries into the exponent, up to ∞
    return sign | UInt16(truncatingIfNeeded: h)
}

/// Bulk conversion of `count` elements stored as `dtype` at `source` into float32.
/// - Precondition: `dtype.isFloatingPoint`.
public func convertToFloat(_ source: UnsafeRawPointer, dtype: DType, count: Int, into dest: UnsafeMutablePointer<Float>) {
    switch dtype {
    case .f32:
        dest.update(from: source.assumingMemoryBound(to: Float.self), count: count)
    case .f16:
        let s = source.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { dest[i] = halfBitsToFloat(s[i]) }
    case .bf16:
        let s = source.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { dest[i] = Float(bitPattern: UInt32(s[i]) << 16) }
    case .f64:
        let s = source.assumingMemoryBound(to: Double.self)
        for i in 0..<count { dest[i] = Float(s[i]) }
    default:
        preconditionFailure("convertToFloat called with non-float dtype \(dtype)")
    }
}

/// Bulk conversion of `count` float32 values into `dtype` at `dest` (round to nearest even).
/// - Precondition: `dtype.isFloatingPoint`.
public func convertFromFloat(_ source: UnsafePointer<Float>, count: Int, to dtype: DType, into dest: UnsafeMutableRawPointer) {
    switch dtype {
    case .f32:
        dest.assumingMemoryBound(to: Float.self).update(from: source, count: count)
    case .f16:
        let d = dest.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { d[i] = floatToHalfBits(source[i]) }
    case .bf16:
        let d = dest.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { d[i] = floatToBF16(source[i]) }
    case .f64:
        let d = dest.assumingMemoryBound(to: Double.self)
        for i in 0..<count { d[i] = Double(source[i]) }
    default:
        preconditionFailure("convertFromFloat called with non-float dtype \(dtype)")
    }
}

/// Rounds float32 values in place to the precision of `dtype` (bf16 or f16), as a cast to it and back would.
/// Other dtypes leave the values unchanged.
public func roundToPrecision(_ values: UnsafeMutablePointer<Float>, count: Int, of dtype: DType) {
    switch dtype {
    case .bf16: for i in 0..<count { values[i] = bf16ToFloat(floatToBF16(values[i])) }
    case .f16: for i in 0..<count { values[i] = halfBitsToFloat(floatToHalfBits(values[i])) }
    default: break
    }
}
