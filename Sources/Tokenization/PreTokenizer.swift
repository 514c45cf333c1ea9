/// How byte-level BPE text is cut into words before merging. Each rule is a hand-written scanner
/// equivalent to one of the split regexes of the tokenizers it names (alternatives tried in order at
/// each position, greedy quantifiers with backtracking), run over Unicode scalars.
///
/// Rules are applied in sequence: each one splits every piece the previous rule produced, and never
/// looks across a piece boundary (a lookahead at the end of a piece sees "end of text").
public enum SplitRule: String, Sendable, CaseIterable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Qwen2: the Llama 3 pattern with single digits (`\p{N}` instead of `\p{N}{1,3}`).
    case qwen2
    /// `\p{N}`: every number character becomes its own piece (HF `Digits(individual_digits: true)`).
    case isolateDigits
    /// `\p{N}+`: runs of number characters become pieces.
    case numberRuns
    /// `[0-9][0-9][0-9]`: groups of three ASCII digits, left to right, become pieces.
    case digitTriples
    /// `[\p{P}\$\+<=>\^~\|]+`: runs of punctuation and those ASCII symbols (llama.cpp's `default`).
    case punctuationRuns
    /// `[\p{P}\$\+<=>\^~\|`]+`: the same with the backtick (llama.cpp's `falcon`).
    case punctuationRunsWithBacktick

    /// The regex this rule scans for, as a Hugging Face `Split` pre-tokenizer writes it.
    public var pattern: String {
        switch self {
        case .gpt2: return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
        case .llama3:
            return "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
                + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
        case .qwen2:
            return "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
                + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
        case .isolateDigits: return "\\p{N}"
        case .numberRuns: return "\\p{N}+"
        case .digitTriples: return "[0-9][0-9][0-9]"
        case .punctuationRuns: return "[\\p{P}\\$\\+<=>\\^~\\|]+"
        case .punctuationRunsWithBacktick: return "[\\p{P}\\$\\+<=>\\^~\\|`]+"
        }
    }
}

/// Every `tokenizer.ggml.pre` value Crucible reads, with what llama.cpp (`llama_vocab::impl::load`) attaches to it:
/// the split rules, and the vocabulary flags of the family. The GGUF vocabulary loader and the Hugging Face export
/// both read this table; a new pre-tokenizer is one row.
public struct GGUFPreTokenizer: Sendable, Equatable {
    /// The `tokenizer.ggml.pre` spellings of this row; the GGUF export writes the first (the one llama.cpp's
    /// converter writes for the best-known model of the row).
    public let names: [String]
    public let rules: [SplitRule]
    /// BOS is added unless the file says otherwise (llama.cpp's `add_bos`; the Llama 3 family).
    public let addsBOS: Bool
    /// A word that is itself a token skips the merges (llama.cpp's `ignore_merges`).
    public let ignoresMerges: Bool
    /// Decoding keeps spaces before punctuation (llama.cpp's `clean_spaces = false`).
    public let keepsSpaces: Bool

    init(_ names: [String], _ rules: [SplitRule], addsBOS: Bool = false, ignoresMerges: Bool = false, keepsSpaces: Bool = false) {
        self.names = names
        self.rules = rules
        self.addsBOS = addsBOS
        self.ignoresMerges = ignoresMerges
        self.keepsSpaces = keepsSpaces
    }

    public static let all: [GGUFPreTokenizer] = [
        GGUFPreTokenizer(["llama-bpe", "llama3", "llama-v3", "falcon3", "pixtral"], [.llama3], addsBOS: true, ignoresMerges: true),
        GGUFPreTokenizer(["dbrx", "smaug-bpe", "chatglm-bpe", "glm4"], [.llama3]),
        GGUFPreTokenizer(["qwen2", "deepseek-r1-qwen"], [.qwen2], keepsSpaces: true),
        GGUFPreTokenizer(["stablelm2", "megrez", "hunyuan"], [.qwen2]),
        GGUFPreTokenizer(["gpt-2", "phi-2", "jina-es", "jina-de", "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code",
                          "roberta-bpe", "mpt", "olmo", "jais", "gigachat", "exaone4"], [.gpt2]),
        GGUFPreTokenizer(["smollm", "command-r"], [.isolateDigits, .gpt2], keepsSpaces: true),
        GGUFPreTokenizer(["starcoder", "refact", "codeshell", "exaone", "minerva-7b"], [.isolateDigits, .gpt2]),
        GGUFPreTokenizer(["default"], [.punctuationRuns, .gpt2, .numberRuns, .digitTriples]),
        GGUFPreTokenizer(["falcon"], [.punctuationRunsWithBacktick, .gpt2, .digitTriples]),
    ]

    /// The row for a `tokenizer.ggml.pre` value, or nil when Crucible does not read it.
    public static func named(_ pre: String) -> GGUFPreTokenizer? {
        all.first { $0.names.contains(pre) }
    }
}

/// A sequence of split rules (see `SplitRule`).
public struct PreTokenizer: Sendable, Equatable {
    public let rules: [SplitRule]

    public init(rules: [SplitRule]) { self.rules = rules }

    /// The rules llama.cpp uses for a GGUF `tokenizer.ggml.pre` value, or nil if it is not supported.
    public static func forGGUF(pre: String) -> PreTokenizer? {
        GGUFPreTokenizer.named(pre).map { PreTokenizer(rules: $0.rules) }
    }

    /// The pieces `text` is cut into (for inspection and tests; encoding works on scalars directly).
    public func split(_ text: String) -> [String] {
        let scalars = text.unicodeScalars.map(\.value)
        let ends = scalars.withUnsafeBufferPointer { split($0) }
        var start = 0
        return ends.map { end in
            defer { start = end }
            var piece = String.UnicodeScalarView()
            for v in scalars[start..<end] { piece.append(Unicode.Scalar(v)!) }
            return String(piece)
        }
    }

    /// Splits `scalars` into pieces, returned as consecutive end offsets (exclusive, in scalars).
    func split(_ scalars: UnsafeBufferPointer<UInt32>) -> [Int] {
        var ends = scalars.isEmpty ? [] : [scalars.count]
        for rule in rules {
            var next: [Int] = []
            next.reserveCapacity(ends.count * 2 + 16)
            var start = 0
            for end in ends {
                PieceScanner(scalars: scalars, lo: start, hi: end).scan(rule, into: &next)
                start = end
            }
            ends = next
        }
        return ends
    }
}

/// Scans one piece `[lo, hi)` of the text with one rule, appending the end offset of every sub-piece.
private struct PieceScanner {
    let scalars: UnsafeBufferPointer<UInt32>
    let lo: Int
    let hi: Int

    @inline(__always) func cls(_ i: Int) -> ScalarClass { ScalarClass.of(scalars[i]) }
    @inline(__always) func isLetter(_ i: Int) -> Bool { i < hi && cls(i).contains(.letter) }
    @inline(__always) func isNumber(_ i: Int) -> Bool { i < hi && cls(i).contains(.number) }
    @inline(__always) func isSpace(_ i: Int) -> Bool { i < hi && cls(i).contains(.whitespace) }
    /// `[^\s\p{L}\p{N}]`
    @inline(__always) func isOther(_ i: Int) -> Bool { i < hi && cls(i).isDisjoint(with: .word) }
    @inline(__always) func isNewline(_ i: Int) -> Bool { i < hi && (scalars[i] == 0x0A || scalars[i] == 0x0D) }

    func scan(_ rule: SplitRule, into ends: inout [Int]) {
        switch rule {
        case .gpt2: scanGPT2(into: &ends)
        case .llama3: scanLlama3(maxDigits: 3, into: &ends)
        case .qwen2: scanLlama3(maxDigits: 1, into: &ends)
        case .isolateDigits: scanDigits(into: &ends)
        case .numberRuns: scanRuns(of: { $0.isNumber($1) }, into: &ends)
        case .punctuationRuns: scanRuns(of: { $0.isPunctuation($1, backtick: false) }, into: &ends)
        case .punctuationRunsWithBacktick: scanRuns(of: { $0.isPunctuation($1, backtick: true) }, into: &ends)
        case .digitTriples: scanDigitTriples(into: &ends)
        }
    }

    /// Length of a contraction (`'s 't 'm 'd 're 've 'll`) starting at `pos`, or 0.
    func contraction(at pos: Int, caseInsensitive: Bool) -> Int {
        guard scalars[pos] == 0x27, pos + 1 < hi else { return 0 }
        func lower(_ v: UInt32) -> UInt32 {
            caseInsensitive && v >= 0x41 && v <= 0x5A ? v + 32 : v
        }
        let a = lower(scalars[pos + 1])
        if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return 2 }  // s t m d
        guard pos + 2 < hi else { return 0 }
        let b = lower(scalars[pos + 2])
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return 3 }  // re ve ll
        return 0
    }

    /// The whitespace alternatives shared by both families, at a position where nothing else matched:
    /// `\s+(?!\S)` keeps the last space of a run for the next word unless the run ends the piece; `\s+`.
    func whitespaceEnd(at pos: Int) -> Int {
        var end = pos
        while isSpace(end) { end += 1 }
        let run = end - pos
        if run > 1 && end < hi { return end - 1 }
        if run > 0 { return end }
        return pos + 1  // nothing matched: the character stands alone
    }

    func scanGPT2(into ends: inout [Int]) {
        var pos = lo
        while pos < hi {
            let n = contraction(at: pos, caseInsensitive: false)
            if n > 0 { pos += n; ends.append(pos); continue }
            // ` ?X+` for X in letters, numbers, others: an optional leading space, then a run of one class.
            let lead = scalars[pos] == 0x20 ? 1 : 0
            let first = pos + lead
            if isLetter(first) {
                pos = first
                while isLetter(pos) { pos += 1 }
            } else if isNumber(first) {
                pos = first
                while isNumber(pos) { pos += 1 }
            } else if isOther(first) {
                pos = first
                while isOther(pos) { pos += 1 }
            } else {
                pos = whitespaceEnd(at: pos)
            }
            ends.append(pos)
        }
    }

    func scanLlama3(maxDigits: Int, into ends: inout [Int]) {
        var pos = lo
        while pos < hi {
            let n = contraction(at: pos, caseInsensitive: true)
            if n > 0 { pos += n; ends.append(pos); continue }
            let c = scalars[pos]
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if c != 0x0A && c != 0x0D && !isNumber(pos) && (isLetter(pos) || isLetter(pos + 1)) {
                pos += 1
                while isLetter(pos) { pos += 1 }
                ends.append(pos)
                continue
            }
            // `\p{N}{1,maxDigits}`
            if isNumber(pos) {
                var count = 0
                while isNumber(pos) && count < maxDigits { pos += 1; count += 1 }
                ends.append(pos)
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let first = pos + (c == 0x20 ? 1 : 0)
            if isOther(first) {
                pos = first
                while isOther(pos) { pos += 1 }
                while isNewline(pos) { pos += 1 }
                ends.append(pos)
                continue
            }
            // `\s*[\r\n]+`: a whitespace run containing a line break ends after its last \r or \n.
            var end = pos
            var afterLastNewline = -1
            while isSpace(end) {
                if isNewline(end) { afterLastNewline = end + 1 }
                end += 1
            }
            if afterLastNewline > 0 {
                pos = afterLastNewline
            } else {
                pos = whitespaceEnd(at: pos)
            }
            ends.append(pos)
        }
    }

    /// `\p{P}` or one of the ASCII symbols `$ + < = > ^ ~ |` (and `` ` `` when asked).
    func isPunctuation(_ i: Int, backtick: Bool) -> Bool {
        guard i < hi else { return false }
        switch scalars[i] {
        case 0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x7E, 0x7C: return true
        case 0x60: return backtick
        default: return cls(i).contains(.punctuation)
        }
    }

    /// Maximal runs of matching scalars are pieces; so are the stretches between them.
    func scanRuns(of matches: (PieceScanner, Int) -> Bool, into ends: inout [Int]) {
        var pos = lo
        while pos < hi {
            let inRun = matches(self, pos)
            while pos < hi && matches(self, pos) == inRun { pos += 1 }
            ends.append(pos)
        }
    }

    func scanDigitTriples(into ends: inout [Int]) {
        func isDigit(_ i: Int) -> Bool { i < hi && scalars[i] >= 0x30 && scalars[i] <= 0x39 }
        var pos = lo
        var gapStart = lo
        while pos < hi {
            if isDigit(pos) && isDigit(pos + 1) && isDigit(pos + 2) {
                if gapStart < pos { ends.append(pos) }
                pos += 3
                ends.append(pos)
                gapStart = pos
            } else {
                pos += 1
            }
        }
        if gapStart < hi { ends.append(hi) }
    }

    func scanDigits(into ends: inout [Int]) {
        var pos = lo
        while pos < hi {
            if isNumber(pos) {
                pos += 1
            } else {
                while pos < hi && !isNumber(pos) { pos += 1 }
            }
            ends.append(pos)
        }
    }
}
