/// A cursor over the mapped bytes of a GGUF file that never reads past the end.
///
/// Every read checks the bytes left first and throws `CheckpointError.truncated` naming what was being read,
/// and every integer is assembled little-endian byte by byte, so the result does not depend on the host.
/// Counts read from the file are checked against the bytes left before anything is allocated for them.
struct GGUFReader {
    let bytes: UnsafeRawBufferPointer
    let file: String
    private(set) var position = 0

    init(bytes: UnsafeRawBufferPointer, file: String) {
        self.bytes = bytes
        self.file = file
    }

    var remaining: Int { bytes.count - position }

    private func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n <= remaining else {
            throw CheckpointError.truncated(file: file,
                reason: "reading \(what()) at byte \(position) needs \(n) bytes, only \(remaining) left")
        }
    }

    private mutating func littleEndian(_ n: Int, _ what: @autoclosure () -> String) throws -> UInt64 {
        try need(n, what())
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += n
        return v
    }

    mutating func u8(_ what: @autoclosure () -> String) throws -> UInt8 { UInt8(try littleEndian(1, what())) }
    mutating func u16(_ what: @autoclosure () -> String) throws -> UInt16 { UInt16(try littleEndian(2, what())) }
    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 { UInt32(try littleEndian(4, what())) }
    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 { try littleEndian(8, what()) }

    /// A GGUF string: u64 byte length, then that many UTF-8 bytes (invalid sequences become U+FFFD).
    mutating func string(_ what: @autoclosure () -> String, maxLength: Int? = nil) throws -> String {
        let start = position
        let length = try u64("the length of \(what())")
        guard length <= UInt64(remaining) else {
            throw CheckpointError.invalidHeader(file: file,
                reason: "\(what()) at byte \(start) claims \(length) bytes but only \(remaining) are left in the file")
        }
        let n = Int(length)
        if let maxLength, n > maxLength {
            throw CheckpointError.invalidHeader(file: file,
                reason: "\(what()) at byte \(start) is \(n) bytes long, the limit is \(maxLength)")
        }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)]), as: UTF8.self)
        position += n
        return s
    }

    /// Reads one value of `type`; arrays may nest up to `maxDepth` levels.
    mutating func value(_ type: GGUFValueType, key: String, depth: Int, maxDepth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try u8("value of '\(key)'"))
        case .int8: return .int8(Int8(bitPattern: try u8("value of '\(key)'")))
        case .uint16: return .uint16(try u16("value of '\(key)'"))
        case .int16: return .int16(Int16(bitPattern: try u16("value of '\(key)'")))
        case .uint32: return .uint32(try u32("value of '\(key)'"))
        case .int32: return .int32(Int32(bitPattern: try u32("value of '\(key)'")))
        case .uint64: return .uint64(try u64("value of '\(key)'"))
        case .int64: return .int64(Int64(bitPattern: try u64("value of '\(key)'")))
        case .float32: return .float32(Float(bitPattern: try u32("value of '\(key)'")))
        case .float64: return .float64(Double(bitPattern: try u64("value of '\(key)'")))
        case .bool:
            let b = try u8("value of '\(key)'")
            guard b <= 1 else {
                throw CheckpointError.invalidHeader(file: file, reason: "key '\(key)': bool value \(b) is neither 0 nor 1")
            }
            return .bool(b == 1)
        case .string: return .string(try string("string value of '\(key)'"))
        case .array:
            guard depth < maxDepth else {
                throw CheckpointError.invalidHeader(file: file,
                    reason: "key '\(key)': arrays nested more than \(maxDepth) levels deep")
            }
            let rawType = try u32("array element type of '\(key)'")
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw CheckpointError.invalidHeader(file: file, reason: "key '\(key)': unknown array element type \(rawType)")
            }
            let countPosition = position
            let count = try u64("array length of '\(key)'")
            // Bound the count by the bytes left before reserving anything for it.
            guard count <= UInt64(remaining / elementType.minimumSize) else {
                throw CheckpointError.invalidHeader(file: file,
                    reason: "key '\(key)': array at byte \(countPosition) claims \(count) elements of \(elementType) but only "
                        + "\(remaining) bytes are left in the file")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                items.append(try value(elementType, key: key, depth: depth + 1, maxDepth: maxDepth))
            }
            return .array(items)
        }
    }
}
