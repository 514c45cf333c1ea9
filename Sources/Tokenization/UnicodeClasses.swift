/// The Unicode classes the split patterns ask about: `\p{L}`, `\p{N}`, `\p{P}`, `\p{M}` and `\s` (the White_Space
/// property, which is what both the Rust `regex` crate and llama.cpp's tables use for `\s`).
/// Anything that is not a letter, number or whitespace (punctuation, symbols, marks, controls,
/// unassigned code points) is "other" to the GPT-2-style patterns.
struct ScalarClass: OptionSet, Sendable {
    let rawValue: UInt8
    static let letter = ScalarClass(rawValue: 1)
    static let number = ScalarClass(rawValue: 2)
    static let whitespace = ScalarClass(rawValue: 4)
    /// `\p{P}` (only llama.cpp's `default` and `falcon` split rules ask about it).
    static let punctuation = ScalarClass(rawValue: 8)
    /// `\p{M}` (only the Qwen3.5 split rule asks about it).
    static let mark = ScalarClass(rawValue: 16)
    /// Letters, numbers and whitespace: a scalar with none of these is "other" (`[^\s\p{L}\p{N}]`).
    static let word: ScalarClass = [.letter, .number, .whitespace]

    /// Class of one scalar value. The Basic Multilingual Plane is looked up in a table built once;
    /// the rare scalars above it ask the standard library directly.
    @inline(__always)
    static func of(_ value: UInt32) -> ScalarClass {
        if value < 0x10000 { return ScalarClass(rawValue: bmpTable[Int(value)]) }
        return compute(value)
    }

    private static let bmpTable: [UInt8] = (0..<0x10000).map { compute(UInt32($0)).rawValue }

    private static func compute(_ value: UInt32) -> ScalarClass {
        guard let scalar = Unicode.Scalar(value) else { return [] }  // surrogates never reach here
        var result: ScalarClass = []
        let properties = scalar.properties
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            result.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber:
            result.insert(.number)
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            result.insert(.punctuation)
        case .nonspacingMark, .spacingMark, .enclosingMark:
            result.insert(.mark)
        default:
            break
        }
        if properties.isWhitespace { result.insert(.whitespace) }
        return result
    }
}
