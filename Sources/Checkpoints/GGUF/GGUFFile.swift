import Foundation

/// One tensor as the GGUF header describes it, before any renaming.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The GGUF name (`blk.0.attn_q.weight`).
    public let name: String
    /// Dimensions in GGUF order: innermost (contiguous) first, the reverse of PyTorch's shape.
    public let dims: [Int]
    public let type: GGMLType
    /// Offset of the first byte from the start of the data section, as stored in the header.
    public let offset: Int
    public let byteCount: Int

    public var elementCount: Int { dims.reduce(1, *) }
}

/// A GGUF file (versions 2 and 3), memory-mapped and validated the way llama.cpp's `gguf.cpp` does before
/// anything in it is trusted; see docs/formats.md for the list of checks.
///
/// As a `TensorSource` it serves the tensors under their Hugging Face names and shapes
/// (`blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`, dimensions reversed, stacked Mixtral
/// experts split, the Q/K row permutation of llama.cpp's converter undone), dequantizing to float32 on read.
/// The file as stored is available through `metadata`, `rawTensors` and `readRawFloats`.
public final class GGUFFile: TensorSource, @unchecked Sendable {
    /// `general.alignment` when the key is absent.
    public static let defaultAlignment = 32
    /// Longest tensor name in bytes (ggml's `GGML_MAX_NAME` is 64 including the terminating NUL).
    public static let maxNameLength = 63
    /// Most dimensions a tensor may have (`GGML_MAX_DIMS`).
    public static let maxDimensions = 4
    /// Deepest nesting of metadata arrays accepted.
    public static let maxArrayDepth = 4

    public let path: String
    public let mapped: MappedFile
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let alignment: Int
    /// The tensors in file order, as stored.
    public let rawTensors: [GGUFTensorInfo]
    /// Absolute file offset where the data section starts.
    public let dataOffset: Int

    /// Canonical (Hugging Face) tensor names in file order.
    public let tensorNames: [String]
    private let served: [String: GGUFServedTensor]
    private let rawIndex: [String: Int]

    public var location: String { path }

    /// `general.architecture` (`llama`, `qwen2`...).
    public var architecture: String? { metadata["general.architecture"]?.stringValue }

    public init(path: String) throws {
        self.path = path
        let file = try MappedFile(path: path)
        self.mapped = file
        var r = GGUFReader(bytes: file.bytes(0..<file.size), file: path)

        // Header: magic, version, tensor and key/value counts.
        guard file.size >= 4 else {
            throw CheckpointError.truncated(file: path, reason: "\(file.size) bytes, too short for the 4-byte GGUF magic")
        }
        let magic = [try r.u8("magic"), try r.u8("magic"), try r.u8("magic"), try r.u8("magic")]
        guard magic == Array("GGUF".utf8) else {
            let shown = magic.map { (32..<127).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined()
            throw CheckpointError.invalidHeader(file: path, reason: "bad magic '\(shown)', expected 'GGUF' (not a GGUF file)")
        }
        let version = try r.u32("the version")
        switch version {
        case 2, 3: break
        case 1:
            throw CheckpointError.invalidHeader(file: path,
                reason: "GGUF version 1 is not supported (only versions 2 and 3); convert the model again with a current llama.cpp")
        default:
            let hint = (version & 0xFFFF) == 0 ? " (the file looks big-endian, which is not supported)" : ""
            throw CheckpointError.invalidHeader(file: path, reason: "unsupported GGUF version \(version)\(hint); versions 2 and 3 are read")
        }
        self.version = version
        let tensorCount = try r.u64("the tensor count")
        let kvCount = try r.u64("the metadata key/value count")
        // The smallest tensor info is 24 bytes (name length, dim count, type, offset); the smallest pair 13.
        guard tensorCount <= UInt64(r.remaining / 24) else {
            throw CheckpointError.invalidHeader(file: path,
                reason: "tensor count \(tensorCount) cannot fit in the \(r.remaining) bytes left in the file")
        }
        guard kvCount <= UInt64(r.remaining / 13) else {
            throw CheckpointError.invalidHeader(file: path,
                reason: "metadata key/value count \(kvCount) cannot fit in the \(r.remaining) bytes left in the file")
        }

        // Metadata.
        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        keys.reserveCapacity(Int(kvCount))
        for i in 0..<Int(kvCount) {
            let key = try r.string("metadata key \(i)")
            guard metadata[key] == nil else {
                throw CheckpointError.invalidHeader(file: path, reason: "duplicate metadata key '\(key)'")
            }
            let rawType = try r.u32("the value type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw CheckpointError.invalidHeader(file: path, reason: "key '\(key)' has unknown value type \(rawType)")
            }
            metadata[key] = try r.value(type, key: key, depth: 0, maxDepth: Self.maxArrayDepth)
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = Self.defaultAlignment
        if let a = metadata["general.alignment"] {
            guard let n = a.intValue, n > 0, n <= 1 << 30, n & (n - 1) == 0 else {
                throw CheckpointError.invalidHeader(file: path, reason: "general.alignment \(a) is not a power of two")
            }
            alignment = n
        }
        self.alignment = alignment

        // Tensor infos.
        var raws: [GGUFTensorInfo] = []
        raws.reserveCapacity(Int(tensorCount))
        var seen = Set<String>()
        for i in 0..<Int(tensorCount) {
            let name = try r.string("the name of tensor \(i)", maxLength: Self.maxNameLength)
            guard seen.insert(name).inserted else {
                throw CheckpointError.invalidHeader(file: path, reason: "duplicate tensor name '\(name)'")
            }
            let nDims = try r.u32("the dimension count of '\(name)'")
            guard nDims <= UInt32(Self.maxDimensions) else {
                throw CheckpointError.invalidTensor(file: path, tensor: name,
                    reason: "\(nDims) dimensions, at most \(Self.maxDimensions) are allowed")
            }
            var dims: [Int] = []
            var elements = 1
            for _ in 0..<Int(nDims) {
                let d = Int64(bitPattern: try r.u64("a dimension of '\(name)'"))
                guard d >= 0 else {
                    throw CheckpointError.invalidTensor(file: path, tensor: name, reason: "negative dimension \(d)")
                }
                // A zero dimension makes the element count 0, so the overflow and size checks below would pass
                // whatever the other dimensions claim, and those are loop bounds further on.
                guard d > 0 else {
                    throw CheckpointError.invalidTensor(file: path, tensor: name,
                        reason: "dimension \(dims.count) is 0; every dimension of a model tensor is at least 1")
                }
                let (m, overflow) = elements.multipliedReportingOverflow(by: Int(d))
                guard !overflow else {
                    throw CheckpointError.invalidTensor(file: path, tensor: name,
                        reason: "element count of dimensions \(dims + [Int(d)]) overflows a 64-bit integer")
                }
                elements = m
                dims.append(Int(d))
            }
            let rawType = try r.u32("the type of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw CheckpointError.invalidTensor(file: path, tensor: name, reason: "unknown ggml type \(rawType)")
            }
            let rowLength = dims.first ?? 1
            guard rowLength % type.blockSize == 0 else {
                throw CheckpointError.invalidTensor(file: path, tensor: name,
                    reason: "row length \(rowLength) is not a multiple of the \(type.name) block size \(type.blockSize)")
            }
            guard let byteCount = type.byteCount(elements: elements) else {
                throw CheckpointError.invalidTensor(file: path, tensor: name,
                                                    reason: "byte size of \(elements) \(type.name) elements overflows")
            }
            let offset = try r.u64("the data offset of '\(name)'")
            guard offset <= UInt64(Int.max / 2) else {
                throw CheckpointError.invalidTensor(file: path, tensor: name, reason: "data offset \(offset) is out of range")
            }
            raws.append(GGUFTensorInfo(name: name, dims: dims, type: type, offset: Int(offset), byteCount: byteCount))
        }

        // Data section: starts at the next multiple of the alignment; every tensor aligned, inside the file,
        // and no two overlapping.
        let headerEnd = r.position
        let dataOffset = (headerEnd + alignment - 1) / alignment * alignment
        self.dataOffset = dataOffset
        if !raws.isEmpty, dataOffset > file.size {
            throw CheckpointError.truncated(file: path,
                reason: "the data section should start at byte \(dataOffset) but the file has \(file.size) bytes")
        }
        let dataSize = max(0, file.size - dataOffset)
        for t in raws {
            guard t.offset % alignment == 0 else {
                throw CheckpointError.invalidTensor(file: path, tensor: t.name,
                    reason: "data offset \(t.offset) is not a multiple of the alignment \(alignment)")
            }
            let (end, overflow) = t.offset.addingReportingOverflow(t.byteCount)
            guard !overflow, end <= dataSize else {
                throw CheckpointError.truncated(file: path,
                    reason: "tensor '\(t.name)' spans data bytes \(t.offset)..<\(t.offset &+ t.byteCount) "
                        + "but the data section has \(dataSize) bytes")
            }
        }
        let ordered = raws.filter { $0.byteCount > 0 }.sorted { $0.offset < $1.offset }
        if ordered.count > 1 {
            for i in 1..<ordered.count where ordered[i].offset < ordered[i - 1].offset + ordered[i - 1].byteCount {
                throw CheckpointError.overlappingTensors(file: path, first: ordered[i - 1].name, second: ordered[i].name)
            }
        }
        self.rawTensors = raws
        var rawIndex: [String: Int] = [:]
        for (i, t) in raws.enumerated() { rawIndex[t.name] = i }
        self.rawIndex = rawIndex

        let canonical = try GGUFNameMap.canonicalTensors(raws, metadata: metadata, file: path)
        self.tensorNames = canonical.map(\.info.name)
        var served: [String: GGUFServedTensor] = [:]
        for c in canonical { served[c.info.name] = c }
        self.served = served
    }

    // MARK: The file as stored

    /// The stored description of the GGUF tensor `name`.
    public func rawTensor(_ name: String) -> GGUFTensorInfo? {
        rawIndex[name].map { rawTensors[$0] }
    }

    /// The stored bytes of a GGUF tensor (zero-copy, from the mapping).
    public func rawData(_ tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        mapped.bytes((dataOffset + tensor.offset)..<(dataOffset + tensor.offset + tensor.byteCount))
    }

    /// Reads elements `range` of the GGUF tensor `name` in stored order (GGUF layout, no renaming or
    /// un-permutation) as float32, dequantizing only the blocks that cover the range.
    public func readRawFloats(_ name: String, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws {
        guard let i = rawIndex[name] else { throw CheckpointError.missingTensor(tensor: name, checkpoint: path) }
        let t = rawTensors[i]
        guard range.lowerBound >= 0, range.upperBound <= t.elementCount else {
            throw CheckpointError.invalidTensor(file: path, tensor: name,
                reason: "element range \(range) is outside the tensor's \(t.elementCount) elements")
        }
        try readStored(t, elements: range, into: dest, servedName: name)
    }

    /// The GGUF tensor a canonical name is served from.
    public func ggufName(of name: String) -> String? {
        served[name].map { rawTensors[$0.raw].name }
    }

    // MARK: TensorSource

    public func info(_ name: String) -> TensorInfo? { served[name]?.info }

    public func file(of name: String) -> String? { served[name] == nil ? nil : path }

    /// The stored bytes when the tensor is served exactly as stored (a plain type, not an expert slice,
    /// not un-permuted); nil otherwise.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer? {
        guard let s = served[name] else { throw CheckpointError.missingTensor(tensor: name, checkpoint: path) }
        let t = rawTensors[s.raw]
        guard t.type.plainDType == s.info.dtype, s.permutedHeads == nil, s.elementOffset == 0, s.shift == 0,
              s.info.elementCount == t.elementCount else { return nil }
        return rawData(t)
    }

    /// Rows `rows` (of `rowLength` elements each, counted from element `elementOffset` of the served tensor `name`)
    /// as stored, for kernels that read the blocks in place: the type, the mapped bytes of those rows, and, for
    /// Q/K projections that llama.cpp stores permuted, the head count of the permutation
    /// (`GGUFNameMap.storedRow` maps a served row to its stored row). Nil when the rows cannot be read in place:
    /// values shifted on read, or a range that does not start and end on stored row boundaries.
    public func storedRows(_ name: String, elementOffset: Int, rows: Int, rowLength: Int) -> GGUFStoredRows? {
        guard let s = served[name], s.shift == 0, rowLength > 0, rows >= 0 else { return nil }
        let t = rawTensors[s.raw]
        guard t.dims.first == rowLength, (s.elementOffset + elementOffset) % rowLength == 0,
              elementOffset >= 0, elementOffset + rows * rowLength <= s.info.elementCount,
              let rowBytes = t.type.byteCount(elements: rowLength) else { return nil }
        let first = (s.elementOffset + elementOffset) / rowLength
        if s.permutedHeads != nil, elementOffset != 0 || rows != s.info.rowCount { return nil }
        let data = rawData(t)
        guard (first + rows) * rowBytes <= data.count, let base = data.baseAddress else { return nil }
        return GGUFStoredRows(type: t.type, base: base + first * rowBytes, rows: rows, rowBytes: rowBytes,
                              permutedHeads: s.permutedHeads)
    }

    /// Hands the mapped pages of the stored tensor behind `name` back to the kernel (they return from the
    /// page cache on the next read).
    public func release(_ name: String) {
        guard let s = served[name] else { return }
        let t = rawTensors[s.raw]
        mapped.advise((dataOffset + t.offset)..<(dataOffset + t.offset + t.byteCount), willNeed: false)
    }

    public func readFloats(_ name: String, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws {
        guard let s = served[name] else { throw CheckpointError.missingTensor(tensor: name, checkpoint: path) }
        // Integer tensors are data (ids, counts), not weights: reading them as numbers to merge or run is refused,
        // as for safetensors; they can only be copied as they are.
        guard s.info.dtype.isFloatingPoint else {
            throw CheckpointError.unsupportedDType(file: path, tensor: name,
                dtype: "\(rawTensors[s.raw].type.name) (not a float type; it can only be copied)")
        }
        let count = s.info.elementCount
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw CheckpointError.invalidTensor(file: path, tensor: name,
                reason: "element range \(range) is outside the tensor's \(count) elements")
        }
        if range.isEmpty { return }
        let t = rawTensors[s.raw]
        guard let heads = s.permutedHeads else {
            let start = s.elementOffset + range.lowerBound
            try readStored(t, elements: start..<(start + range.count), into: dest, servedName: name)
            if s.shift != 0 { for i in 0..<range.count { dest[i] -= s.shift } }
            return
        }
        // Un-permute Q/K: HF row r is stored at GGUF row `GGUFNameMap.storedRow(r)`; read row by row.
        let rowLength = s.info.rowLength
        let rows = s.info.rowCount
        var out = dest
        var r = range.lowerBound / rowLength
        while r < rows, r * rowLength < range.upperBound {
            let lo = max(range.lowerBound, r * rowLength) - r * rowLength
            let hi = min(range.upperBound, (r + 1) * rowLength) - r * rowLength
            let stored = GGUFNameMap.storedRow(r, rows: rows, heads: heads)
            let start = s.elementOffset + stored * rowLength + lo
            try readStored(t, elements: start..<(start + hi - lo), into: out, servedName: name)
            out += hi - lo
            r += 1
        }
    }

    /// Dequantizes stored elements `elements` of `t`; whole blocks go straight into `dest`, a partial block
    /// at either end through a small buffer.
    private func readStored(_ t: GGUFTensorInfo, elements: Range<Int>, into dest: UnsafeMutablePointer<Float>,
                            servedName: String) throws {
        guard t.type.isDequantizable else {
            throw CheckpointError.invalidTensor(file: path, tensor: servedName,
                reason: "unsupported quantization type \(t.type.name) (stored as GGUF tensor '\(t.name)'); Crucible dequantizes "
                    + GGMLType.allCases.filter(\.isDequantizable).map(\.name).joined(separator: ", "))
        }
        if elements.isEmpty { return }
        let block = t.type.blockSize
        let blockBytes = t.type.bytesPerBlock
        guard let base = mapped.base else { return }
        let data = base + dataOffset + t.offset
        let firstBlock = elements.lowerBound / block
        let endBlock = (elements.upperBound + block - 1) / block
        var out = dest
        var b = firstBlock
        // Leading partial block.
        if elements.lowerBound % block != 0 || (endBlock - firstBlock == 1 && elements.upperBound % block != 0) {
            let skip = elements.lowerBound - b * block
            let take = min(block - skip, elements.count)
            try withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { tmp in
                try dequantize(t.type, data + b * blockBytes, count: block, into: tmp.baseAddress!)
                out.update(from: tmp.baseAddress! + skip, count: take)
            }
            out += take
            b += 1
        }
        if b >= endBlock { return }
        // Whole blocks.
        let fullEnd = elements.upperBound % block == 0 ? endBlock : endBlock - 1
        if fullEnd > b {
            try dequantize(t.type, data + b * blockBytes, count: (fullEnd - b) * block, into: out)
            out += (fullEnd - b) * block
            b = fullEnd
        }
        // Trailing partial block.
        if b < endBlock {
            let take = elements.upperBound - b * block
            try withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { tmp in
                try dequantize(t.type, data + b * blockBytes, count: block, into: tmp.baseAddress!)
                out.update(from: tmp.baseAddress!, count: take)
            }
        }
    }
}

/// Consecutive rows of a GGUF tensor as stored (see `GGUFFile.storedRows`); valid while the file is open.
public struct GGUFStoredRows: @unchecked Sendable {
    public let type: GGMLType
    /// The first row's first block.
    public let base: UnsafeRawPointer
    public let rows: Int
    /// Bytes from one row to the next.
    public let rowBytes: Int
    /// Set for Llama Q/K projections: served row r is stored row `GGUFNameMap.storedRow(r, rows:, heads:)`.
    public let permutedHeads: Int?

    /// The stored row that holds served row `row`.
    public func storedRow(_ row: Int) -> Int {
        permutedHeads.map { GGUFNameMap.storedRow(row, rows: rows, heads: $0) } ?? row
    }
}
