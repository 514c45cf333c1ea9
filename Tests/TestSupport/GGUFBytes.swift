import Foundation
import Checkpoints

/// Builds GGUF files byte by byte, valid or deliberately broken, for tests.
///
/// The low-level writers (`u32`, `string`, `value`...) append little-endian fields, so a test can write a
/// header field by field and stop or lie wherever it likes; `GGUFBytes.file(...)` writes a complete, valid file.
public struct GGUFBytes {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// One tensor of a file built by `file(...)`.
    public struct Tensor {
        public var name: String
        /// GGUF order, innermost first. Int64 so that a test can write a negative dimension.
        public var dims: [Int64]
        /// Raw ggml type id (so a test can write an unknown one).
        public var type: UInt32
        public var data: [UInt8]
        /// Offset from the data section start; nil places the tensor after the previous one, aligned.
        public var offset: UInt64?

        public init(name: String, dims: [Int64], type: UInt32, data: [UInt8], offset: UInt64? = nil) {
            self.name = name
            self.dims = dims
            self.type = type
            self.data = data
            self.offset = offset
        }

        /// An F32 tensor holding `values`, with GGUF dims `dims`.
        public static func f32(_ name: String, dims: [Int], values: [Float]) -> Tensor {
            var b: [UInt8] = []
            b.reserveCapacity(values.count * 4)
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { b.append(contentsOf: $0) } }
            return Tensor(name: name, dims: dims.map(Int64.init), type: GGMLType.f32.rawValue, data: b)
        }
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }

    /// A GGUF string: u64 length then UTF-8 bytes.
    public mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes.append(contentsOf: Array(s.utf8))
    }

    /// The magic, version and the two counts.
    public mutating func header(version: UInt32 = 3, tensors: UInt64, keys: UInt64) {
        raw(Array("GGUF".utf8))
        u32(version)
        u64(tensors)
        u64(keys)
    }

    /// The GGUF value type id of `v`.
    public static func typeID(_ v: GGUFValue) -> UInt32 {
        switch v {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }

    /// A key/value pair: key string, type id, payload.
    public mutating func pair(_ key: String, _ v: GGUFValue) {
        string(key)
        u32(Self.typeID(v))
        payload(v)
    }

    /// The payload of `v` without its type id (arrays: element type, count, elements).
    public mutating func payload(_ v: GGUFValue) {
        switch v {
        case let .uint8(x): u8(x)
        case let .int8(x): u8(UInt8(bitPattern: x))
        case let .uint16(x): u16(x)
        case let .int16(x): u16(UInt16(bitPattern: x))
        case let .uint32(x): u32(x)
        case let .int32(x): u32(UInt32(bitPattern: x))
        case let .uint64(x): u64(x)
        case let .int64(x): u64(UInt64(bitPattern: x))
        case let .float32(x): u32(x.bitPattern)
        case let .float64(x): u64(x.bitPattern)
        case let .bool(x): u8(x ? 1 : 0)
        case let .string(s): string(s)
        case let .array(a):
            u32(a.first.map(Self.typeID) ?? 4)
            u64(UInt64(a.count))
            for e in a { payload(e) }
        }
    }

    /// One tensor info entry.
    public mutating func tensorInfo(name: String, dims: [Int64], type: UInt32, offset: UInt64) {
        string(name)
        u32(UInt32(dims.count))
        for d in dims { u64(UInt64(bitPattern: d)) }
        u32(type)
        u64(offset)
    }

    public mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }

    /// A complete GGUF file. `alignment` is used for padding; it is written as `general.alignment` only
    /// when `metadata` contains that key (so a test can also lie about it).
    public static func file(version: UInt32 = 3, metadata: [(String, GGUFValue)], tensors: [Tensor],
                            alignment: Int = 32) -> [UInt8] {
        var w = GGUFBytes()
        w.header(version: version, tensors: UInt64(tensors.count), keys: UInt64(metadata.count))
        for (k, v) in metadata { w.pair(k, v) }
        var offsets: [UInt64] = []
        var next: UInt64 = 0
        for t in tensors {
            let o = t.offset ?? next
            offsets.append(o)
            next = (o + UInt64(t.data.count) + UInt64(alignment) - 1) / UInt64(alignment) * UInt64(alignment)
        }
        for (t, o) in zip(tensors, offsets) { w.tensorInfo(name: t.name, dims: t.dims, type: t.type, offset: o) }
        w.pad(to: alignment)
        let dataStart = w.bytes.count
        for (t, o) in zip(tensors, offsets) {
            let at = dataStart + Int(o)
            if w.bytes.count < at + t.data.count { w.bytes += [UInt8](repeating: 0, count: at + t.data.count - w.bytes.count) }
            for (i, b) in t.data.enumerated() { w.bytes[at + i] = b }
        }
        w.pad(to: alignment)
        return w.bytes
    }

    /// Writes `bytes` to `folder/name` and returns the path.
    @discardableResult
    public static func write(_ bytes: [UInt8], to folder: URL, name: String = "model.gguf") throws -> String {
        let url = folder.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }
}
