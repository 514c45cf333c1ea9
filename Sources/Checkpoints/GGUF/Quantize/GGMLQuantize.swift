import Foundation
import Numerics

/// Why float32 values could not be stored as a ggml type.
public enum GGMLQuantizeError: Error, CustomStringConvertible, Equatable, Sendable {
    case unsupportedType(GGMLType)
    case partialBlock(type: GGMLType, count: Int)
    case nonFinite(index: Int)

    public var description: String {
        switch self {
        case let .unsupportedType(t):
            return "Crucible cannot write \(t.name); it writes "
                + GGMLType.allCases.filter(\.isQuantizable).map(\.name).joined(separator: ", ")
        case let .partialBlock(t, count):
            return "a row of \(count) elements is not a whole number of \(t.name) blocks of \(t.blockSize)"
        case let .nonFinite(index):
            return "element \(index) is not finite; ggml's quantizers are undefined on NaN and infinity"
        }
    }
}

extension GGMLType {
    /// The types `quantize` writes, with the bytes llama.cpp's reference quantizers write.
    public var isQuantizable: Bool {
        switch self {
        case .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: return true
        default: return false
        }
    }
}

/// Stores `count` float32 values as `type` at `dest` (`type.byteCount(elements: count)` bytes), byte for byte
/// as ggml's reference row quantizers (`quantize_row_*_ref` in `ggml-quants.c`, used by `llama-quantize` when no
/// importance matrix is given) and its F16/BF16 conversions do. Every value must be finite (any type). Single-threaded:
/// callers split work by rows.
public func quantize(_ type: GGMLType, _ source: UnsafePointer<Float>, count: Int,
                     into dest: UnsafeMutableRawPointer) throws {
    guard type.isQuantizable else { throw GGMLQuantizeError.unsupportedType(type) }
    guard count >= 0, count % type.blockSize == 0 else {
        throw GGMLQuantizeError.partialBlock(type: type, count: count)
    }
    // ggml's quantizers are undefined on NaN and infinity, and an output never carries them silently (even F32).
    for i in 0..<count where !source[i].isFinite { throw GGMLQuantizeError.nonFinite(index: i) }
    let blocks = count / type.blockSize
    switch type {
    case .f32: dest.copyMemory(from: source, byteCount: 4 * count)
    case .f16:
        for i in 0..<count { dest.storeBytes(of: floatToHalfBits(source[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
    case .bf16:
        for i in 0..<count { dest.storeBytes(of: floatToBF16(source[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
    case .q4_0: for b in 0..<blocks { quantizeQ4_0(source + 32 * b, dest + 18 * b) }
    case .q4_1: for b in 0..<blocks { quantizeQ4_1(source + 32 * b, dest + 20 * b) }
    case .q5_0: for b in 0..<blocks { quantizeQ5_0(source + 32 * b, dest + 22 * b) }
    case .q5_1: for b in 0..<blocks { quantizeQ5_1(source + 32 * b, dest + 24 * b) }
    case .q8_0: for b in 0..<blocks { quantizeQ8_0(source + 32 * b, dest + 34 * b) }
    case .q2_K: for b in 0..<blocks { quantizeQ2_K(source + 256 * b, dest + 84 * b) }
    case .q3_K: for b in 0..<blocks { quantizeQ3_K(source + 256 * b, dest + 110 * b) }
    case .q4_K: for b in 0..<blocks { quantizeQ4_K(source + 256 * b, dest + 144 * b) }
    case .q5_K: for b in 0..<blocks { quantizeQ5_K(source + 256 * b, dest + 176 * b) }
    case .q6_K: for b in 0..<blocks { quantizeQ6_K(source + 256 * b, dest + 210 * b) }
    default: break   // excluded by `isQuantizable`
    }
}

/// Stores an f16 (ggml's `GGML_FP32_TO_FP16`: round to nearest even) at `offset`.
@inline(__always)
func storeHalf(_ value: Float, _ p: UnsafeMutableRawPointer, _ offset: Int) {
    p.storeBytes(of: floatToHalfBits(value).littleEndian, toByteOffset: offset, as: UInt16.self)
}

/// The f16 rounding of `value`, as float (what ggml reads back after storing a block scale).
@inline(__always)
func roundedHalf(_ value: Float) -> Float { halfBitsToFloat(floatToHalfBits(value)) }
