/// One metadata value of a GGUF file, with the width and signedness it was stored with.
///
/// GGUF stores typed key/value pairs (`llama.block_count` as `uint32`, `tokenizer.ggml.tokens` as an array
/// of strings...). The accessors convert leniently between widths so callers need not know which integer
/// type a converter chose: `intValue` accepts every integer case, `doubleValue` every number.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case uint64(UInt64)
    case int64(Int64)
    case float32(Float)
    case float64(Double)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])

    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    /// Any integer case as `Int` (nil for a `uint64` above `Int.max`, for floats, strings, bools and arrays).
    public var intValue: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(exactly: v)
        default: return nil
        }
    }

    /// Any integer or floating-point case as `Double`.
    public var doubleValue: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        case let .uint64(v): return Double(v)
        case let .int64(v): return Double(v)
        default: return intValue.map(Double.init)
        }
    }

    public var boolValue: Bool? {
        if case let .bool(b) = self { return b }
        return nil
    }

    public var arrayValue: [GGUFValue]? {
        if case let .array(a) = self { return a }
        return nil
    }

    /// An array whose every element is a string.
    public var stringArray: [String]? {
        guard case let .array(a) = self else { return nil }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for v in a {
            guard case let .string(s) = v else { return nil }
            out.append(s)
        }
        return out
    }

    /// An array whose every element is a number, as `Float`.
    public var floatArray: [Float]? {
        guard case let .array(a) = self else { return nil }
        var out: [Float] = []
        out.reserveCapacity(a.count)
        for v in a {
            guard let d = v.doubleValue else { return nil }
            out.append(Float(d))
        }
        return out
    }

    /// An array whose every element is an integer.
    public var intArray: [Int]? {
        guard case let .array(a) = self else { return nil }
        var out: [Int] = []
        out.reserveCapacity(a.count)
        for v in a {
            guard let i = v.intValue else { return nil }
            out.append(i)
        }
        return out
    }

    /// The GGUF type name of this value (`uint32`, `string`, `array[string]`...), for messages.
    public var typeName: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float32: return "float32"
        case .float64: return "float64"
        case .bool: return "bool"
        case .string: return "string"
        case let .array(a): return "array[\(a.first?.typeName ?? "")]"
        }
    }
}

/// The value type ids of the GGUF specification (the `gguf_type` enum of llama.cpp).
enum GGUFValueType: UInt32 {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// The fewest bytes one value of this type can take in the file (bounds array counts before allocating).
    var minimumSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string: return 8          // the u64 length, for an empty string
        case .array: return 12          // u32 element type + u64 count, for an empty array
        }
    }
}
