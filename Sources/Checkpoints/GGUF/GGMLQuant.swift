import Foundation
import Host
import Numerics

/// Why a block of ggml data could not be turned into float32.
public enum GGMLQuantError: Error, CustomStringConvertible, Equatable, Sendable {
    case unsupportedType(GGMLType)
    case partialBlock(type: GGMLType, count: Int)

    public var description: String {
        switch self {
        case let .unsupportedType(t):
            return "unsupported quantization type \(t.name); supported: "
                + GGMLType.allCases.filter(\.isDequantizable).map(\.name).joined(separator: ", ")
        case let .partialBlock(t, count):
            return "\(count) elements is not a whole number of \(t.name) blocks of \(t.blockSize)"
        }
    }
}

/// Converts `count` elements stored as `type` at `source` (whole blocks, `type.byteCount(elements: count)`
/// bytes) into float32 at `dest`. Block layouts and formulas follow ggml (`ggml-common.h`, the
/// `dequantize_row_*` functions of `ggml-quants.c`). Large spans are split over the cores.
public func dequantize(_ type: GGMLType, _ source: UnsafeRawPointer, count: Int,
                       into dest: UnsafeMutablePointer<Float>) throws {
    guard type.isDequantizable else { throw GGMLQuantError.unsupportedType(type) }
    guard count >= 0, count % type.blockSize == 0 else { throw GGMLQuantError.partialBlock(type: type, count: count) }
    let blocks = count / type.blockSize
    // Below ~2M elements one core is quicker than waking others.
    let chunks = count >= 1 << 21 ? min(ProcessInfo.processInfo.activeProcessorCount, 8) : 1
    if chunks <= 1 {
        dequantizeBlocks(type, source, blocks: blocks, into: dest)
        return
    }
    parallelFor(chunks, threads: chunks) { c in
        let lo = blocks * c / chunks
        let hi = blocks * (c + 1) / chunks
        dequantizeBlocks(type, source + lo * type.bytesPerBlock, blocks: hi - lo, into: dest + lo * type.blockSize)
    }
}

/// Single-threaded dispatch over the block kernels. `type` must be dequantizable.
func dequantizeBlocks(_ type: GGMLType, _ src: UnsafeRawPointer, blocks n: Int, into y: UnsafeMutablePointer<Float>) {
    switch type {
    case .f32: y.update(from: src.assumingMemoryBound(to: Float.self), count: n)
    case .f16:
        for i in 0..<n { y[i] = halfBitsToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
    case .bf16:
        for i in 0..<n { y[i] = bf16ToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
    case .f64:
        for i in 0..<n { y[i] = Float(Double(bitPattern: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) }
    case .i8:
        for i in 0..<n { y[i] = Float(Int8(bitPattern: src.load(fromByteOffset: i, as: UInt8.self))) }
    case .i16:
        for i in 0..<n { y[i] = Float(Int16(bitPattern: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
    case .i32:
        for i in 0..<n { y[i] = Float(Int32(bitPattern: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
    case .i64:
        for i in 0..<n { y[i] = Float(Int64(bitPattern: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) }
    case .q4_0: dequantizeQ4_0(src, blocks: n, into: y)
    case .q4_1: dequantizeQ4_1(src, blocks: n, into: y)
    case .q5_0: dequantizeQ5_0(src, blocks: n, into: y)
    case .q5_1: dequantizeQ5_1(src, blocks: n, into: y)
    case .q8_0: dequantizeQ8_0(src, blocks: n, into: y, blockBytes: 34)
    case .q8_1: dequantizeQ8_0(src, blocks: n, into: y, blockBytes: 36)   // same as Q8_0 plus an unused sum
    case .q2_K: dequantizeQ2_K(src, blocks: n, into: y)
    case .q3_K: dequantizeQ3_K(src, blocks: n, into: y)
    case .q4_K: dequantizeQ4_K(src, blocks: n, into: y)
    case .q5_K: dequantizeQ5_K(src, blocks: n, into: y)
    case .q6_K: dequantizeQ6_K(src, blocks: n, into: y)
    case .q8_K: dequantizeQ8_K(src, blocks: n, into: y)
    default: break   // excluded by `isDequantizable`
    }
}

/// The little-endian IEEE half at `offset`, as Float.
@inline(__always)
func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    halfBitsToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

// halfBitsToFloat lives in Tensors (HalfPrecision.swift), shared with safetensors F16 reading.

