import Foundation
import Host

/// A JSON document as parsed by `JSONValue.parse`: integers and doubles kept apart, object key order kept.
///
/// Crucible parses JSON itself (configs, safetensors headers, tokenizer.json) so that it controls the limits,
/// keeps `1` distinct from `1.0` and `true`, and can write configs back in the order it read them.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public subscript(key: String) -> JSONValue? {
        if case let .object(o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case let .string(s) = self { return s }; return nil }
    public var boolValue: Bool? { if case let .bool(b) = self { return b }; return nil }
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { return a }; return nil }
    public var objectValue: JSONObject? { if case let .object(o) = self { return o }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    /// Integer value (a double with an integral value counts too).
    public var intValue: Int? {
        switch self {
        case let .int(i): return Int(exactly: i)
        case let .double(d): return d.rounded() == d && abs(d) < 9e15 ? Int(d) : nil
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }
}

/// A JSON object that remembers its key order.
///
/// Keys are compared code point by code point, as JSON defines them, not with Swift's String equality
/// (which treats canonically equivalent spellings as equal): a tokenizer.json vocabulary can hold both
/// U+03AF and U+1F77 as different tokens.
public struct JSONObject: Sendable, Equatable {
    public private(set) var keys: [String] = []
    private var storage: [ExactKey: JSONValue] = [:]

    /// A key that hashes and compares by its UTF-8 bytes.
    private struct ExactKey: Hashable, Sendable {
        let text: String
        static func == (a: ExactKey, b: ExactKey) -> Bool { a.text.utf8.elementsEqual(b.text.utf8) }
        func hash(into hasher: inout Hasher) {
            var copy = text
            copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        }
    }

    public init() {}
    public init(_ pairs: [(String, JSONValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    public subscript(key: String) -> JSONValue? {
        get { storage[ExactKey(text: key)] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: ExactKey(text: key)) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: ExactKey(text: key)) != nil {
                keys.removeAll { $0.utf8.elementsEqual(key.utf8) }
            }
        }
    }

    public var count: Int { keys.count }
    public var pairs: [(String, JSONValue)] { keys.map { ($0, storage[ExactKey(text: $0)]!) } }
}

public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    public let offset: Int
    public let reason: String
    public var description: String { "JSON error at byte \(offset): \(reason)" }
}

extension JSONValue {
    /// Parses a complete JSON document. Nesting deeper than `maxDepth` is refused.
    public static func parse(_ data: Data, maxDepth: Int = 128) throws -> JSONValue {
        try data.withUnsafeBytes { raw in
            try parse(raw, maxDepth: maxDepth)
        }
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 128) throws -> JSONValue {
        var p = JSONParser(bytes: bytes, maxDepth: maxDepth)
        p.skipWhitespace()
        let v = try p.parseValue(depth: 0)
        p.skipWhitespace()
        if p.pos != bytes.count { throw JSONParseError(offset: p.pos, reason: "unexpected trailing characters") }
        return v
    }

    public static func parse(file path: String) throws -> JSONValue {
        let data: Data
        do { data = try RegularFile.read(path) } catch let e as RegularFile.Failure {
            if e.notFound { throw CheckpointError.fileNotFound(path: path) }
            throw CheckpointError.unreadable(path: path, reason: e.reason)
        }
        do { return try parse(data) } catch let e as JSONParseError {
            throw CheckpointError.invalidConfig(file: path, reason: e.description)
        }
    }
}

private struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    var pos = 0

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    @inline(__always) func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            let c = bytes[pos]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 } else { break }
        }
    }

    func fail(_ reason: String) -> JSONParseError { JSONParseError(offset: pos, reason: reason) }

    mutating func expect(_ literal: StaticString) throws {
        let n = literal.utf8CodeUnitCount
        guard pos + n <= bytes.count else { throw fail("unexpected end of input") }
        let lit = UnsafeRawBufferPointer(start: literal.utf8Start, count: n)
        for i in 0..<n where bytes[pos + i] != lit[i] { throw fail("invalid literal") }
        pos += n
    }

    mutating func parseValue(depth: Int) throws -> JSONValue {
        if depth > maxDepth { throw fail("nesting deeper than \(maxDepth)") }
        guard let c = peek() else { throw fail("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"):
            pos += 1
            var obj = JSONObject()
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { pos += 1; return .object(obj) }
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try parseString()
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw fail("expected ':'") }
                pos += 1
                skipWhitespace()
                let v = try parseValue(depth: depth + 1)
                if obj[key] != nil { throw fail("duplicate key '\(key)'") }
                obj[key] = v
                skipWhitespace()
                guard let d = peek() else { throw fail("unexpected end of input") }
                pos += 1
                if d == UInt8(ascii: "}") { return .object(obj) }
                if d != UInt8(ascii: ",") { pos -= 1; throw fail("expected ',' or '}'") }
            }
        case UInt8(ascii: "["):
            pos += 1
            var arr: [JSONValue] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") { pos += 1; return .array(arr) }
            while true {
                skipWhitespace()
                arr.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard let d = peek() else { throw fail("unexpected end of input") }
                pos += 1
                if d == UInt8(ascii: "]") { return .array(arr) }
                if d != UInt8(ascii: ",") { pos -= 1; throw fail("expected ',' or ']'") }
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "N"): try expect("NaN"); return .double(.nan)
        case UInt8(ascii: "I"): try expect("Infinity"); return .double(.infinity)
        default:
            return try parseNumber()
        }
    }

    mutating func parseNumber() throws -> JSONValue {
        let start = pos
        var isInt = true
        if peek() == UInt8(ascii: "-") {
            pos += 1
            if peek() == UInt8(ascii: "I") { try expect("Infinity"); return .double(-.infinity) }
        }
        var digits = 0
        while let c = peek() {
            if c >= 0x30 && c <= 0x39 { digits += 1; pos += 1 }
            else if c == UInt8(ascii: ".") || c == UInt8(ascii: "e")
                || c == UInt8(ascii: "E") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                isInt = false; pos += 1
            } else { break }
        }
        if digits == 0 { pos = start; throw fail("unexpected character") }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        if isInt, let i = Int64(text) { return .int(i) }
        guard let d = Double(text) else { pos = start; throw fail("invalid number '\(text)'") }
        return .double(d)
    }

    mutating func parseHex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v * 16 + d
            pos += 1
        }
        return v
    }

    mutating func parseString() throws -> String {
        pos += 1  // opening quote
        var out: [UInt8] = []
        var runStart = pos
        while true {
            guard pos < bytes.count else { throw fail("unterminated string") }
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                out.append(contentsOf: bytes[runStart..<pos])
                pos += 1
                break
            }
            if c == UInt8(ascii: "\\") {
                out.append(contentsOf: bytes[runStart..<pos])
                pos += 1
                guard pos < bytes.count else { throw fail("unterminated escape") }
                let e = bytes[pos]
                pos += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        // Surrogate pair.
                        if pos + 6 <= bytes.count && bytes[pos] == UInt8(ascii: "\\") && bytes[pos + 1] == UInt8(ascii: "u") {
                            pos += 2
                            let low = try parseHex4()
                            if low >= 0xDC00 && low < 0xE000 {
                                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                            } else { scalar = 0xFFFD }
                        } else { scalar = 0xFFFD }
                    } else if scalar >= 0xDC00 && scalar < 0xE000 { scalar = 0xFFFD }
                    let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw fail("invalid escape")
                }
                runStart = pos
                continue
            }
            if c < 0x20 { throw fail("control character in string") }
            pos += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

// MARK: - Writing

extension JSONValue {
    /// Serializes with `indent` spaces per level (0 = compact, as in safetensors headers).
    public func serialized(indent: Int = 2, sortKeys: Bool = false) -> String {
        var out = ""
        write(into: &out, indent: indent, level: 0, sortKeys: sortKeys)
        return out
    }

    private func write(into out: inout String, indent: Int, level: Int, sortKeys: Bool) {
        let nl = indent > 0 ? "\n" : ""
        let pad = String(repeating: " ", count: indent * (level + 1))
        let padEnd = String(repeating: " ", count: indent * level)
        let sep = indent > 0 ? ": " : ":"
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .double(d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d > 0 ? "Infinity" : "-Infinity" } else { out += "\(d)" }
        case let .string(s): out += JSONValue.quote(s)
        case let .array(a):
            if a.isEmpty { out += "[]"; return }
            out += "[" + nl
            for (i, v) in a.enumerated() {
                out += pad
                v.write(into: &out, indent: indent, level: level + 1, sortKeys: sortKeys)
                if i < a.count - 1 { out += "," }
                out += nl
            }
            out += padEnd + "]"
        case let .object(o):
            if o.count == 0 { out += "{}"; return }
            out += "{" + nl
            let keys = sortKeys ? o.keys.sorted() : o.keys
            for (i, k) in keys.enumerated() {
                out += pad + JSONValue.quote(k) + sep
                o[k]!.write(into: &out, indent: indent, level: level + 1, sortKeys: sortKeys)
                if i < keys.count - 1 { out += "," }
                out += nl
            }
            out += padEnd + "}"
        }
    }

    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
