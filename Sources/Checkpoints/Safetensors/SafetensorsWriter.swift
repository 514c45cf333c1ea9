import Foundation
import Numerics
#if canImport(Glibc)
import Glibc
#endif

/// Writes one safetensors file whose layout is fixed up front: the header (names, dtypes, shapes, offsets)
/// is written first, then each tensor's bytes are written at its own offset, in any order and from any
/// thread. The file is byte-identical whatever order the tensors arrive in.
public final class SafetensorsWriter: @unchecked Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public init(name: String, dtype: DType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
        public var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
    }

    public let path: String
    public let entries: [Entry]
    private let offsets: [String: Int]   // absolute file offsets
    public let fileSize: Int
    private let fd: Int32

    public init(path: String, entries: [Entry], metadata: [String: String] = ["format": "pt"]) throws {
        self.path = path
        self.entries = entries
        var header = JSONObject()
        if !metadata.isEmpty {
            var m = JSONObject()
            for k in metadata.keys.sorted() { m[k] = .string(metadata[k]!) }
            header["__metadata__"] = .object(m)
        }
        var rel = 0
        var relOffsets: [String: Int] = [:]
        for e in entries {
            var t = JSONObject()
            t["dtype"] = .string(e.dtype.rawValue)
            t["shape"] = .array(e.shape.map { .int(Int64($0)) })
            t["data_offsets"] = .array([.int(Int64(rel)), .int(Int64(rel + e.byteCount))])
            header[e.name] = .object(t)
            relOffsets[e.name] = rel
            rel += e.byteCount
        }
        var headerBytes = Array(JSONValue.object(header).serialized(indent: 0).utf8)
        while (headerBytes.count + 8) % 8 != 0 { headerBytes.append(0x20) }
        let dataStart = 8 + headerBytes.count
        offsets = relOffsets.mapValues { $0 + dataStart }
        fileSize = dataStart + rel

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CheckpointError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        var prefix = [UInt8](repeating: 0, count: 8)
        let len = UInt64(headerBytes.count)
        for i in 0..<8 { prefix[i] = UInt8((len >> (8 * UInt64(i))) & 0xFF) }
        prefix += headerBytes
        try writeAll(prefix.withUnsafeBytes { $0 }, at: 0, copy: prefix)
        if ftruncate(fd, off_t(fileSize)) != 0 {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw CheckpointError.writeFailed(path: path, reason: reason)
        }
    }

    private func writeAll(_ buf: UnsafeRawBufferPointer, at offset: Int, copy: [UInt8]? = nil) throws {
        if let copy {
            try copy.withUnsafeBytes { try pwriteAll($0, at: offset) }
        } else {
            try pwriteAll(buf, at: offset)
        }
    }

    private func pwriteAll(_ buf: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < buf.count {
            let n = pwrite(fd, buf.baseAddress! + done, buf.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw CheckpointError.writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
            done += n
        }
    }

    /// Writes `bytes` as (part of) tensor `name`, starting `byteOffset` bytes into the tensor's span.
    public func write(_ name: String, bytes: UnsafeRawBufferPointer, byteOffset: Int = 0) throws {
        guard let start = offsets[name] else {
            throw CheckpointError.writeFailed(path: path, reason: "tensor '\(name)' is not part of this file's layout")
        }
        if bytes.isEmpty { return }
        try pwriteAll(bytes, at: start + byteOffset)
    }

    /// Flushes to disk and closes the file.
    public func finish(sync: Bool = false) throws {
        if sync { fsync(fd) }
        if close(fd) != 0 {
            throw CheckpointError.writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
    }

    deinit {}
}
