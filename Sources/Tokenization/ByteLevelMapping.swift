/// GPT-2's reversible byte ↔ character table: byte-level BPE vocabularies spell every byte as one
/// printable character, so that token strings never contain spaces or control characters.
/// Printable Latin-1 bytes (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for themselves; the other 68 bytes are
/// given the code points 256, 257, … in byte order (so a space is `Ġ`, U+0120, and a newline `Ċ`).
enum ByteLevelMapping {
    /// `scalarForByte[b]` is the character that spells byte `b`.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// UTF-8 spelling of each byte's character.
    static let utf8ForByte: [[UInt8]] = scalarForByte.map { Array(String(Unicode.Scalar($0)!).utf8) }

    /// The byte a character stands for, or nil if it is not one of the 256 byte characters.
    static func byte(for scalar: UInt32) -> UInt8? {
        if scalar < 324, let b = byteForScalar[Int(scalar)] { return b }
        return nil
    }

    private static let byteForScalar: [UInt8?] = {
        var table = [UInt8?](repeating: nil, count: 324)
        for (b, s) in scalarForByte.enumerated() { table[Int(s)] = UInt8(b) }
        return table
    }()

    /// Spells `bytes` with byte characters (the form byte-level vocabularies and merges use).
    static func encode(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        for b in bytes { out.append(contentsOf: utf8ForByte[Int(b)]) }
    }

    /// Turns a byte-level token string back into raw bytes; nil if some character is not a byte character.
    static func decode(_ token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.utf8.count)
        for s in token.unicodeScalars {
            guard let b = byte(for: s.value) else { return nil }
            out.append(b)
        }
        return out
    }
}
