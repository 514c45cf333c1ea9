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

/// Bulk conversion of `count` elements stored as `dtype` at `source` into float32.
/// - Precondition: `dtype.isFloatingPoint`.
public func convertToFloat(_ source: UnsafeRawPointer, dtype: DType, count: Int, into dest: UnsafeMutablePointer<Float>) {
    switch dtype {
    case .f32:
        dest.update(from: source.assumingMemoryBound(to: Float.self), count: count)
    case .f16:
        let s = source.assumingMemoryBound(to: Float16.self)
        for i in 0..<count { dest[i] = Float(s[i]) }
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
        let d = dest.assumingMemoryBound(to: Float16.self)
        for i in 0..<count { d[i] = Float16(source[i]) }
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
    case .f16: for i in 0..<count { values[i] = Float(Float16(values[i])) }
    default: break
    }
}
