import Foundation

/// One tensor of a GGUF file to be written: its GGUF name, its shape outermost first (as Hugging Face and
/// `TensorInfo` list it; the file stores it reversed) and its storage type.
public struct GGUFTensorSpec: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let type: GGMLType

    public init(name: String, shape: [Int], type: GGMLType) {
        self.name = name
        self.shape = shape
        self.type = type
    }

    public var elementCount: Int { shape.reduce(1, *) }
    /// Bytes of the stored data (rows are whole blocks: the innermost dimension must divide by the block size).
    public var byteCount: Int? {
        guard let inner = shape.last, inner % type.blockSize == 0 else { return nil }
        return type.byteCount(elements: elementCount)
    }
}

/// Writes a GGUF v3 file: the header, the metadata in the order given, the tensor table, then each tensor's
/// data in table order, every data start aligned to `general.alignment` (32 unless the metadata says otherwise).
///
/// The data is streamed: `append` takes one tensor's bytes at a time, in order, so a writer never holds more
/// than the tensor in flight. The file is written under a hidden name in the destination folder and renamed
/// into place by `finish()`; `abandon()` (or an error) removes it, so a partial file never looks complete.
public final class GGUFWriter {
    public let path: String
    public let tensors: [GGUFTensorSpec]
    public let alignment: Int
    /// The finished file's size: the header and every tensor's data with its alignment padding.
    public let fileSize: Int
    private let stagingPath: String
    private let handle: FileHandle
    private var next = 0
    private var inCurrent = 0
    private var finished = false

    /// Lays out and writes everything up to the data section. `metadata` must not contain `general.alignment`
    /// unless it is a power of two; tensor names must be unique and at most 63 bytes.
    public init(path: String, metadata: [(String, GGUFValue)], tensors: [GGUFTensorSpec]) throws {
        self.path = path
        self.tensors = tensors
        var alignment = GGUFFile.defaultAlignment
        if let a = metadata.first(where: { $0.0 == "general.alignment" })?.1 {
            guard let n = a.intValue, n > 0, n & (n - 1) == 0 else {
                throw CheckpointError.writeFailed(path: path, reason: "general.alignment \(a) is not a power of two")
            }
            alignment = n
        }
        self.alignment = alignment
        var seen = Set<String>()
        for key in metadata.map(\.0) where !seen.insert(key).inserted {
            throw CheckpointError.writeFailed(path: path, reason: "metadata key '\(key)' given twice")
        }
        seen = []
        var offsets: [Int] = []
        var cursor = 0
        for t in tensors {
            guard seen.insert(t.name).inserted else {
                throw CheckpointError.writeFailed(path: path, reason: "tensor '\(t.name)' given twice")
            }
            guard t.name.utf8.count <= GGUFFile.maxNameLength else {
                throw CheckpointError.writeFailed(path: path,
                    reason: "tensor name '\(t.name)' is longer than \(GGUFFile.maxNameLength) bytes")
            }
            guard (1...GGUFFile.maxDimensions).contains(t.shape.count), t.shape.allSatisfy({ $0 > 0 }) else {
                throw CheckpointError.writeFailed(path: path, reason: "tensor '\(t.name)' has shape \(t.shape)")
            }
            guard let bytes = t.byteCount else {
                throw CheckpointError.writeFailed(path: path,
                    reason: "tensor '\(t.name)': rows of \(t.shape.last!) elements are not whole "
                        + "\(t.type.name) blocks of \(t.type.blockSize)")
            }
            offsets.append(cursor)
            cursor += (bytes + alignment - 1) / alignment * alignment
        }

        var header = ByteWriter()
        header.bytes(Array("GGUF".utf8))
        header.u32(3)
        header.u64(UInt64(tensors.count))
        header.u64(UInt64(metadata.count))
        for (key, value) in metadata {
            header.string(key)
            header.u32(value.valueType.rawValue)
            header.value(value)
        }
        for (t, offset) in zip(tensors, offsets) {
            header.string(t.name)
            header.u32(UInt32(t.shape.count))
            for d in t.shape.reversed() { header.u64(UInt64(d)) }
            header.u32(t.type.rawValue)
            header.u64(UInt64(offset))
        }
        header.pad(to: alignment)
        fileSize = header.data.count + cursor

        let url = URL(fileURLWithPath: path)
        stagingPath = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).crucible-partial-\(getpid())").path
        guard FileManager.default.createFile(atPath: stagingPath, contents: nil),
              let handle = FileHandle(forWritingAtPath: stagingPath) else {
            throw CheckpointError.writeFailed(path: stagingPath, reason: "cannot create the file (is the folder writable?)")
        }
        self.handle = handle
        do {
            try handle.write(contentsOf: header.data)
        } catch {
            abandon()
            throw CheckpointError.writeFailed(path: stagingPath, reason: "\(error)")
        }
    }

    deinit { if !finished { abandon() } }

    /// The tensor whose bytes `append` expects next, or nil when all were written.
    public var nextTensor: GGUFTensorSpec? { next < tensors.count ? tensors[next] : nil }

    /// Writes the next bytes of the current tensor's data. A tensor may come in several pieces; once its
    /// `byteCount` bytes are in, the alignment padding follows and the next tensor begins.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard let t = nextTensor, let total = t.byteCount else {
            throw CheckpointError.writeFailed(path: path, reason: "more data appended than the \(tensors.count) declared tensors hold")
        }
        guard bytes.count <= total - inCurrent else {
            throw CheckpointError.writeFailed(path: path,
                reason: "tensor '\(t.name)': \(inCurrent + bytes.count) bytes given, \(total) expected")
        }
        do {
            if let base = bytes.baseAddress, bytes.count > 0 {
                try handle.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: bytes.count,
                                                  deallocator: .none))
            }
            inCurrent += bytes.count
            if inCurrent == total {
                let padding = (alignment - total % alignment) % alignment
                if padding > 0 { try handle.write(contentsOf: Data(count: padding)) }
                next += 1
                inCurrent = 0
            }
        } catch {
            abandon()
            throw CheckpointError.writeFailed(path: path, reason: "writing tensor '\(t.name)': \(error)")
        }
    }

    /// Flushes the file and moves it into place. With `overwrite` false an existing file at `path` is an error.
    public func finish(overwrite: Bool) throws {
        guard next == tensors.count else {
            throw CheckpointError.writeFailed(path: path, reason: "only \(next) of \(tensors.count) tensors were written")
        }
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            abandon()
            throw CheckpointError.writeFailed(path: path, reason: "\(error)")
        }
        // Without --overwrite the file must not exist when the finished one moves in: a no-replace rename (or, where
        // the kernel lacks it, a hard link, which fails on an existing name) refuses a file another run wrote.
        var moved: Int32
        if overwrite {
            moved = rename(stagingPath, path)
        } else {
            moved = OutputFolder.renameNoReplace(stagingPath, path)
            if moved != 0 && (errno == ENOSYS || errno == EINVAL) {
                moved = link(stagingPath, path)
                if moved == 0 { unlink(stagingPath) }
            }
        }
        guard moved == 0 else {
            let reason = errno == EEXIST ? "the file exists; pass --overwrite to replace it" : String(cString: strerror(errno))
            abandon()
            throw CheckpointError.writeFailed(path: path, reason: reason)
        }
        finished = true
    }

    /// Removes the partial file.
    public func abandon() {
        try? handle.close()
        unlink(stagingPath)
        finished = true
    }
}

extension GGUFValue {
    /// The GGUF type id this value is written with.
    var valueType: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }
}

/// Little-endian serialisation of GGUF header parts.
struct ByteWriter {
    var data = Data()

    mutating func bytes(_ b: [UInt8]) { data.append(contentsOf: b) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        data.append(contentsOf: Array(s.utf8))
    }
    mutating func pad(to alignment: Int) {
        let extra = (alignment - data.count % alignment) % alignment
        data.append(contentsOf: [UInt8](repeating: 0, count: extra))
    }

    mutating func value(_ v: GGUFValue) {
        switch v {
        case let .uint8(x): data.append(x)
        case let .int8(x): data.append(UInt8(bitPattern: x))
        case let .uint16(x): withUnsafeBytes(of: x.littleEndian) { data.append(contentsOf: $0) }
        case let .int16(x): withUnsafeBytes(of: x.littleEndian) { data.append(contentsOf: $0) }
        case let .uint32(x): u32(x)
        case let .int32(x): u32(UInt32(bitPattern: x))
        case let .uint64(x): u64(x)
        case let .int64(x): u64(UInt64(bitPattern: x))
        case let .float32(x): u32(x.bitPattern)
        case let .float64(x): u64(x.bitPattern)
        case let .bool(x): data.append(x ? 1 : 0)
        case let .string(s): string(s)
        case let .array(items):
            // An empty array is written as an empty array of strings.
            u32((items.first?.valueType ?? .string).rawValue)
            u64(UInt64(items.count))
            for item in items { value(item) }
        }
    }
}
