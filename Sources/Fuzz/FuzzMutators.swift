import Checkpoints
import Foundation
import Numerics

/// One mutated input: the bytes of each file to write, what was done, and whether the result is certainly invalid
/// (then every entry point must refuse it: success would be "success on invalid input").
struct FuzzMutation {
    var description: [String] = []
    var certainlyInvalid = false

    mutating func note(_ what: String, invalid: Bool = false) {
        description.append(what)
        if invalid { certainlyInvalid = true }
    }
}

/// Random choices of one case, from its own stream.
struct FuzzRandom {
    var rng: SplitMix64

    init(seed: UInt64, index: Int) {
        rng = SplitMix64(seed: seed, stream: "fuzz-case-\(index)")
    }

    mutating func int(_ range: Range<Int>) -> Int {
        range.isEmpty ? range.lowerBound : range.lowerBound + Int(rng.next() % UInt64(range.count))
    }
    mutating func chance(_ p: Double) -> Bool { rng.nextUnitDouble() < p }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0..<items.count)] }
}

/// Values that break code which trusts its input.
enum Interesting {
    static let integers: [Int64] = [0, -1, 1, 2, 3, 7, 8, 31, 32, 33, 63, 64, 255, 256, 511, 512, 513, 4096, 65535, 65536,
                                    Int64(Int32.max), Int64(UInt32.max), 1 << 32, 1 << 40, 1 << 53, 1 << 62, Int64.max, Int64.min]
    static let doubles: [Double] = [.nan, .infinity, -.infinity, 0, -0.0, -1, 1e-300, 1e300, 1e-45, 3.4e38, 0.5, 2, -1e-5]
    static let strings = ["", " ", "\u{0}", "../../../../etc/passwd", "/dev/zero", "NaN", "-1", "1e999", "true", "null",
                          String(repeating: "A", count: 5000), "\u{FFFD}\u{202E}", "model.safetensors", "F32", "I32", "BOOL", "F8_E4M3"]
    static let yamlScalars = ["NaN", ".nan", ".inf", "-.inf", "-1", "0", "1e400", "-0.0", "null", "~", "true", "\"\"", "[]", "{}",
                              "heavy", "0x10", "1_000", "9223372036854775808", "!!binary aGVsbG8=", "*undefined", "&x 1", "'",
                              "\"unterminated",
                              "[1, [2, [3]]]", "{filter: mlp, value: NaN}", "[{filter: x}]", "- 1", "|", ">-", "!!python/object:os.system"]
    static let yamlFragments = ["\n", "\t", ":", "- ", "[", "]", "{", "}", ",", "#", "&a ", "*a", "? ", "---\n", "...\n", "%YAML 1.1\n",
                                "!!str ", "\"", "'", "\u{FEFF}", "\r", "<<: *a\n", "\\"]

    static func json() -> [JSONValue] {
        integers.map { .int($0) } + doubles.map { .double($0) } + strings.prefix(10).map { .string($0) }
            + [.null, .bool(true), .bool(false), .array([]), .object(JSONObject()), .array([.int(-1), .double(.nan)])]
    }
}

enum FuzzMutators {
    // MARK: Text (YAML, JSON)

    /// Byte- and line-level changes of any text: flips, deletions, duplications, interesting scalars, nesting bombs.
    static func mutateText(_ text: String, _ r: inout FuzzRandom, _ m: inout FuzzMutation, yaml: Bool) -> String {
        var bytes = Array(text.utf8)
        switch r.int(0..<11) {
        case 0 where !bytes.isEmpty:
            let i = r.int(0..<bytes.count)
            bytes[i] = UInt8(truncatingIfNeeded: r.int(0..<256))
            m.note("byte \(i) set")
        case 1 where !bytes.isEmpty:
            let i = r.int(0..<bytes.count), n = r.int(1..<min(64, bytes.count - i + 1))
            bytes.removeSubrange(i..<(i + n))
            m.note("deleted \(n) bytes at \(i)")
        case 2 where !bytes.isEmpty:
            let i = r.int(0..<bytes.count), n = r.int(1..<min(256, bytes.count - i + 1))
            bytes.insert(contentsOf: bytes[i..<(i + n)], at: r.int(0..<bytes.count))
            m.note("duplicated \(n) bytes")
        case 3:
            let cut = r.int(0..<(bytes.count + 1))
            bytes = Array(bytes.prefix(cut))
            m.note("truncated at \(cut)")
        case 4:
            let depth = r.pick([10, 63, 65, 200, 3000, 20000])
            let open = r.pick(yaml ? ["[", "{a: ", "- ", "\n a:"] : ["[", "{\"a\":"])
            let bomb = String(repeating: open, count: depth)
            let i = r.int(0..<(bytes.count + 1))
            bytes.insert(contentsOf: Array(bomb.utf8), at: i)
            m.note("nesting bomb \(open.debugDescription) x\(depth)")
        case 5:
            let fragment = yaml ? r.pick(Interesting.yamlFragments)
                : r.pick(["{", "}", "[", "]", ",", ":", "\"", "\\u", "\\ud800", "NaN", "-Infinity", "1e400", "\u{0}"])
            bytes.insert(contentsOf: Array(fragment.utf8), at: r.int(0..<(bytes.count + 1)))
            m.note("inserted \(fragment.debugDescription)")
        default:
            // Replace a scalar value (after `: ` in YAML, or a JSON number/string) with an interesting one.
            var lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\n")
            guard !lines.isEmpty else { break }
            let li = r.int(0..<lines.count)
            let line = lines[li]
            if let colon = line.range(of: ": ") ?? line.range(of: ":") {
                let value = yaml ? r.pick(Interesting.yamlScalars)
                    : r.pick(["NaN", "-1", "0", "1e400", "\"\"", "null", "[]", "{}", "true", "-Infinity", "18446744073709551616"])
                let end = line.range(of: ",", range: colon.upperBound..<line.endIndex)?.lowerBound ?? line.endIndex
                lines[li] = String(line[..<colon.upperBound]) + " " + value + line[end...]
                m.note("line \(li + 1) value -> \(value)")
            } else if yaml, r.chance(0.5) {
                lines.remove(at: li)
                m.note("deleted line \(li + 1)")
            } else {
                lines[li] = String(repeating: " ", count: r.int(0..<5)) + line
                m.note("re-indented line \(li + 1)")
            }
            return lines.joined(separator: "\n")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A structural change of a JSON document: a value replaced, removed, retyped or duplicated at a random path.
    /// `critical` names keys whose change makes the document certainly invalid for its use.
    static func mutateJSON(_ root: JSONValue, _ r: inout FuzzRandom, _ m: inout FuzzMutation,
                           invalidIf: (_ path: [String], _ old: JSONValue?, _ new: JSONValue?) -> Bool) -> JSONValue {
        // Collect paths (sampled so huge vocabularies stay cheap).
        var paths: [[String]] = []
        func walk(_ v: JSONValue, _ path: [String], depth: Int) {
            if paths.count > 4000 || depth > 6 { return }
            paths.append(path)
            switch v {
            case let .object(o):
                let keys = o.keys.count > 40 ? (0..<40).map { _ in o.keys[r.int(0..<o.keys.count)] } : o.keys
                for k in keys { walk(o[k]!, path + [k], depth: depth + 1) }
            case let .array(a):
                let idx = a.count > 20 ? (0..<20).map { _ in r.int(0..<a.count) } : Array(a.indices)
                for i in idx { walk(a[i], path + ["#\(i)"], depth: depth + 1) }
            default: break
            }
        }
        walk(root, [], depth: 0)
        let path = paths.count > 1 ? paths[r.int(1..<paths.count)] : []
        let old = get(root, path)
        let new: JSONValue?
        switch r.int(0..<6) {
        case 0: new = nil
        case 1:
            // A number nudged: off by one, doubled, negated.
            if let d = old?.doubleValue {
                let i = Int64(exactly: d.rounded(.towardZero)) ?? 0
                let choices: [JSONValue] = [.int(i &+ 1), .int(i &- 1), .double(d * 2), .double(-d), .int(0)]
                new = r.pick(choices)
            } else { new = r.pick(Interesting.json()) }
        case 2:
            var deep: JSONValue = .int(1)
            for _ in 0..<r.pick([5, 100, 127, 129, 1000]) { deep = .array([deep]) }
            new = deep
        default: new = r.pick(Interesting.json())
        }
        m.note("json \(path.joined(separator: ".")) -> \(new.map { String("\($0)".prefix(40)) } ?? "removed")",
               invalid: !same(old, new) && invalidIf(path, old, new))
        return set(root, path, new)
    }

    /// Equal as values: numbers compare by value (`0`, `0.0` and `-0.0` are one number).
    static func same(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
        if let x = a?.doubleValue, let y = b?.doubleValue { return x == y }
        return a == b
    }

    static func get(_ v: JSONValue, _ path: [String]) -> JSONValue? {
        var cur: JSONValue? = v
        for p in path {
            if p.hasPrefix("#"), let i = Int(p.dropFirst()), case let .array(a)? = cur {
                cur = i < a.count ? a[i] : nil
            } else {
                cur = cur?[p]
            }
        }
        return cur
    }

    static func set(_ v: JSONValue, _ path: [String], _ new: JSONValue?) -> JSONValue {
        guard let head = path.first else { return new ?? .null }
        let rest = Array(path.dropFirst())
        switch v {
        case var .object(o):
            if rest.isEmpty { o[head] = new } else if let child = o[head] { o[head] = set(child, rest, new) }
            return .object(o)
        case var .array(a):
            guard head.hasPrefix("#"), let i = Int(head.dropFirst()), i < a.count else { return v }
            if rest.isEmpty { if let new { a[i] = new } else { a.remove(at: i) } } else { a[i] = set(a[i], rest, new) }
            return .array(a)
        default:
            return v
        }
    }

    // MARK: Binary (GGUF, safetensors)

    /// Rewrites a recorded GGUF header field with an interesting value of its width, or flips bytes, truncates or
    /// extends the file.
    static func mutateGGUF(_ bytes: [UInt8], fields: [FuzzCorpus.GGUFField], _ r: inout FuzzRandom, _ m: inout FuzzMutation) -> [UInt8] {
        var b = bytes
        switch r.int(0..<10) {
        case 0 where !b.isEmpty:
            let cut = r.int(0..<b.count)
            b = Array(b.prefix(cut))
            m.note("truncated at \(cut) of \(bytes.count)")
        case 1:
            let headerEnd = min(b.count, (fields.last?.offset ?? 64) + 8)
            guard headerEnd > 0 else { break }
            let i = r.int(0..<headerEnd)
            b[i] ^= UInt8(1 << r.int(0..<8))
            m.note("flipped a bit of header byte \(i)")
        case 2:
            b += (0..<r.int(1..<300)).map { _ in UInt8(truncatingIfNeeded: r.int(0..<256)) }
            m.note("appended garbage")
        default:
            let f = r.pick(fields)
            var value: UInt64
            var invalid = false
            switch f.kind {
            case .float:
                let d = r.pick([Float.nan, .infinity, -1, 0, 1e-30, 3e38, 1e-5, 0.5])
                value = UInt64(d.bitPattern)
                invalid = f.owner.contains("epsilon") && !(d > 0 && d < 1) || f.owner.contains("freq_base") && !(d.isFinite && d > 0)
            case .dim:
                value = UInt64(bitPattern: r.pick([0, 1, 2, 3, 15, 17, 31, 32, 33, 511, 513, 1 << 31, 1 << 62, -1]))
                invalid = true
            case .tensorType:
                value = UInt64(r.pick([0, 1, 2, 6, 8, 10, 12, 14, 16, 24, 25, 26, 27, 28, 30, 39, 40, 1000]))
                // Integer types are not weights; 4, 5 and anything past the known types do not exist. Other float
                // types of another size may still fit the file (garbage weights, but a valid file).
                invalid = [4, 5, 24, 25, 26, 27, 40, 1000].contains(value)
            case .number where !f.owner.hasSuffix(".block_count"):
                value = UInt64(bitPattern: r.pick([0, 1, 2, 3, 4, 15, 17, 33, 512, 1 << 31, -1, 1 << 40]))
                invalid = [".embedding_length", ".attention.head_count", ".feed_forward_length"]
                    .contains { f.owner.hasSuffix($0) } && value != readField(b, f)
            case .valueType, .arrayType:
                value = UInt64(r.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 1 << 31]))
                // The same width reads the same bytes (u32 as i32); any other width misaligns everything after it.
                invalid = width(ofValueType: value) != width(ofValueType: readField(b, f))
            case .number where f.owner.hasSuffix(".block_count"):
                // Fewer layers than tensors leaves some unused (transformers warns, llama.cpp refuses): not counted.
                value = UInt64(bitPattern: r.pick([0, 1, 2, 3, 4, 1 << 31, -1, 1 << 40]))
                invalid = value > readField(b, f) || value == 0
            default:
                value = UInt64(bitPattern: r.pick(Interesting.integers))
                invalid = [.tensorCount, .keyCount, .keyLength, .stringLength, .nameLength, .dimCount, .arrayCount].contains(f.kind)
                    && value != readField(b, f)
            }
            let old = readField(b, f)
            for k in 0..<f.width where f.offset + k < b.count { b[f.offset + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
            _ = invalid
            m.note("\(f.kind.rawValue) of '\(f.owner)' \(old) -> \(value)")
        }
        return b
    }

    /// Why the mutated GGUF file is certainly invalid, judged on the final bytes against the original (so a later
    /// round that undoes an earlier one is seen), or nil when it may be valid.
    static func ggufInvalid(original: [UInt8], final b: [UInt8], fields: [FuzzCorpus.GGUFField]) -> String? {
        if b.count < original.count { return "truncated" }   // the corpus file ends with tensor data, no padding
        // Layers past the final block_count are unused (as transformers ignores weights beyond num_hidden_layers):
        // what a mutation does to their values or shapes does not make the file invalid.
        let blockCount = fields.first { $0.owner.hasSuffix(".block_count") && $0.kind == .number }.map { readField(b, $0) } ?? .max
        func unusedLayer(_ owner: String) -> Bool {
            let parts = owner.split(separator: ".")
            guard parts.count > 2, parts[0] == "blk", let layer = UInt64(parts[1]) else { return false }
            return layer >= blockCount
        }
        for f in fields {
            guard f.offset + f.width <= original.count else { continue }
            let old = readField(original, f), value = readField(b, f)
            guard old != value else { continue }
            switch f.kind {
            case .float:
                let d = Float(bitPattern: UInt32(truncatingIfNeeded: value))
                if f.owner.contains("epsilon") && !(d > 0 && d < 1) { return "\(f.owner) = \(d)" }
                if f.owner.contains("freq_base") && !(d.isFinite && d > 0) { return "\(f.owner) = \(d)" }
            case .dim:
                if !unusedLayer(f.owner) { return "a dimension of '\(f.owner)' changed" }
            case .tensorType:
                if [4, 5, 24, 25, 26, 27, 40, 1000].contains(value), !unusedLayer(f.owner) { return "'\(f.owner)' has type \(value)" }
            case .valueType, .arrayType:
                if width(ofValueType: value) != width(ofValueType: old) { return "the value type of '\(f.owner)' changed width" }
            case .number:
                if f.owner.hasSuffix(".block_count") {
                    if value > old || value == 0 { return "block_count \(value)" }
                } else if [".embedding_length", ".attention.head_count", ".feed_forward_length"]
                            .contains(where: { f.owner.hasSuffix($0) }) {
                    return "\(f.owner) changed"
                }
            case .tensorCount, .keyCount, .keyLength, .stringLength, .nameLength, .dimCount, .arrayCount:
                return "\(f.kind.rawValue) of '\(f.owner)' changed"
            case .tensorOffset:
                break
            }
        }
        return nil
    }

    /// Why a mutated safetensors file is certainly invalid (truncated, a lying header length, an unparsable header,
    /// or a tensor entry changed), or nil when it may be valid (identical header, data bytes changed).
    static func safetensorsInvalid(original: [UInt8], final b: [UInt8]) -> String? {
        if b == original { return nil }
        func parts(_ x: [UInt8]) -> (header: JSONValue?, dataCount: Int)? {
            guard x.count >= 8 else { return nil }
            let n = x.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            guard n <= UInt64(x.count - 8) else { return nil }
            return (try? JSONValue.parse(Data(x[8..<(8 + Int(n))])), x.count - 8 - Int(n))
        }
        guard let o = parts(original), let oh = o.header else { return nil }
        guard let f = parts(b), let fh = f.header else { return "the header cannot be read" }
        if f.dataCount < o.dataCount { return "the data section is shorter" }
        guard case let .object(oo) = oh, case let .object(fo) = fh else { return "the header is not an object" }
        for key in Set(oo.keys).union(fo.keys) where key != "__metadata__" {
            if !equivalent(oo[key], fo[key]) { return "tensor entry '\(key)' changed" }
        }
        return nil
    }

    /// Deep equality with numbers compared by value.
    static func equivalent(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
        switch (a, b) {
        case let (.object(x)?, .object(y)?):
            return Set(x.keys) == Set(y.keys) && x.keys.allSatisfy { equivalent(x[$0], y[$0]) }
        case let (.array(x)?, .array(y)?):
            return x.count == y.count && zip(x, y).allSatisfy { equivalent($0, $1) }
        default:
            return same(a, b)
        }
    }

    /// Bytes of one value of a GGUF value type (strings and arrays: -1, variable).
    static func width(ofValueType t: UInt64) -> Int {
        switch t {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 10, 11, 12: return 8
        default: return -1
        }
    }

    static func readField(_ b: [UInt8], _ f: FuzzCorpus.GGUFField) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<f.width where f.offset + k < b.count { v |= UInt64(b[f.offset + k]) << (8 * UInt64(k)) }
        return v
    }

    /// A change of a safetensors file: its JSON header (re-encoded with the right length, or with a lying one),
    /// the length field, or the data.
    static func mutateSafetensors(_ bytes: [UInt8], _ r: inout FuzzRandom, _ m: inout FuzzMutation) -> [UInt8] {
        let n = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let headerText = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        let data = Array(bytes[(8 + n)...])
        func assemble(_ header: [UInt8], lie: Int? = nil) -> [UInt8] {
            var out = [UInt8]()
            withUnsafeBytes(of: UInt64(lie ?? header.count).littleEndian) { out += $0 }
            return out + header + data
        }
        switch r.int(0..<8) {
        case 0:
            let cut = r.int(0..<bytes.count)
            m.note("truncated at \(cut) of \(bytes.count)")
            return Array(bytes.prefix(cut))
        case 1:
            let lie = r.pick([0, 1, n - 1, n + 1, n + 8, bytes.count, Int(Int32.max), 1 << 40])
            m.note("header length \(n) -> \(lie)")
            return assemble(Array(headerText.utf8), lie: lie)
        case 2:
            // Data bytes changed: weights stay numbers unless they became NaN/inf, which the oracle sees downstream.
            var out = bytes
            let i = 8 + n + r.int(0..<max(1, data.count))
            if i < out.count { out[i] = UInt8(truncatingIfNeeded: r.int(0..<256)) }
            m.note("data byte \(i) changed")
            return out
        case 3:
            let text = mutateText(headerText, &r, &m, yaml: false)
            return assemble(Array(text.utf8))
        default:
            guard let header = try? JSONValue.parse(Data(headerText.utf8)) else { return bytes }
            let mutated = mutateJSON(header, &r, &m) { _, _, _ in false }
            return assemble(Array(mutated.serialized(indent: 0).utf8))
        }
    }
}
