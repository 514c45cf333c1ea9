/// Element types a checkpoint tensor can be stored in.
///
/// The raw values are the dtype strings of the safetensors header. Only `f32`, `f16` and `bf16`
/// take part in arithmetic; every other type is carried through untouched or rejected by name,
/// never reinterpreted as another type.
public enum DType: String, Sendable, CaseIterable, Codable {
    case f64 = "F64"
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case f8e4m3 = "F8_E4M3"
    case f8e5m2 = "F8_E5M2"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u64 = "U64"
    case u32 = "U32"
    case u16 = "U16"
    case u8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .f8e4m3, .f8e5m2, .i8, .u8, .bool: return 1
        }
    }

    /// Whether Crucible can do floating-point arithmetic on this type (it converts to float32).
    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64: return true
        default: return false
        }
    }

    /// The name transformers writes in `config.json` (`torch_dtype` / `dtype`).
    public var torchName: String {
        switch self {
        case .f64: return "float64"
        case .f32: return "float32"
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        case .f8e4m3: return "float8_e4m3fn"
        case .f8e5m2: return "float8_e5m2"
        case .i64: return "int64"
        case .i32: return "int32"
        case .i16: return "int16"
        case .i8: return "int8"
        case .u64: return "uint64"
        case .u32: return "uint32"
        case .u16: return "uint16"
        case .u8: return "uint8"
        case .bool: return "bool"
        }
    }

    /// Parses the dtype spellings used by recipes and configs: `float32`, `torch.bfloat16`, `fp16`, `bf16`, `F32`…
    public init?(name: String) {
        var s = name.trimmingCharacters(in: .whitespaces).lowercased()
        if s.hasPrefix("torch.") { s.removeFirst(6) }
        switch s {
        case "float32", "fp32", "f32", "float": self = .f32
        case "float16", "fp16", "f16", "half": self = .f16
        case "bfloat16", "bf16": self = .bf16
        case "float64", "fp64", "f64", "double": self = .f64
        case "int64", "i64", "long": self = .i64
        case "int32", "i32", "int": self = .i32
        case "int16", "i16": self = .i16
        case "int8", "i8": self = .i8
        case "uint8", "u8": self = .u8
        case "bool": self = .bool
        default:
            if let d = DType(rawValue: name.uppercased()) { self = d } else { return nil }
        }
    }

    /// Type promotion for mixed float inputs (as torch does): f32 wins over f16/bf16; f16 with bf16 gives f32.
    public static func promote(_ a: DType, _ b: DType) -> DType {
        if a == b { return a }
        if a == .f64 || b == .f64 { return .f64 }
        return .f32
    }
}

import Foundation
