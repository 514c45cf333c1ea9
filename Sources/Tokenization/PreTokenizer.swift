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
    /// Qwen3.5: the Qwen2 pattern with combining marks joining letter runs (`[\p{L}\p{M}]+`) and kept out of
    /// the other-symbol runs (`[^\s\p{L}\p{M}\p{N}]`).
    case qwen35
    /// `[\r\n]`: every carriage return and line feed becomes its own piece (the DeepSeek families).
    case lineBreaks
    /// DeepSeek LLM: an optional whitespace, then a run of the letters of a fixed list of cased scripts (Latin, Greek,
    /// Cyrillic, Armenian, Georgian, Cherokee, Glagolitic, Coptic, Deseret, Osage, Old Hungarian, Warang Citi, Adlam…).
    case deepSeekLetters
    /// DeepSeek LLM: an optional whitespace, then a run of ASCII punctuation and symbols, their full-width forms,
    /// the quotation marks U+2018–U+201F and U+3000–U+3002.
    case deepSeekPunctuation
    /// `\s+$`: the whitespace that ends a piece.
    case trailingWhitespace
    /// The DeepSeek families: runs of U+4E00–U+9FA5 (CJK ideographs), U+0800–U+4E00 and U+AC00–U+D7FF (Hangul).
    case deepSeekCJK
    /// DeepSeek Coder: `\s?\p{L}+`.
    case spacedLetterRuns
    /// DeepSeek Coder: `\s?\p{P}+`.
    case spacedPunctuationRuns
    /// `[^\n]+|[\n]+`: runs of line feeds and the stretches between them (Gemma 4, whose merges run on whole lines).
    case lineFeedRuns

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
        case .qwen35:
            return "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}"
                + "| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
        case .lineBreaks: return "[\r\n]"
        case .deepSeekLetters:
            return "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚ"
                + "Ḁ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u{1F7D}ᾀ-ᾴᾶ-ᾼ\u{1FBE}ῂ-ῄῆ-ῌῐ-\u{1FD3}ῖ-\u{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u{2126}ℨ\u{212A}-ℭℯ-ℴℹℼ-ℿ"
                + "ⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"
        case .deepSeekPunctuation: return "\\s?[!-/:-~！-／：-～‘-‟\u{3000}-。]+"
        case .trailingWhitespace: return "\\s+$"
        case .deepSeekCJK: return "[一-龥ࠀ-一가-\u{D7FF}]+"
        case .spacedLetterRuns: return "\\s?\\p{L}+"
        case .spacedPunctuationRuns: return "\\s?\\p{P}+"
        case .lineFeedRuns: return "[^\\n]+|[\\n]+"
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
        GGUFPreTokenizer(["qwen35"], [.qwen35], keepsSpaces: true),
        GGUFPreTokenizer(["deepseek-llm"], [.lineBreaks, .deepSeekLetters, .deepSeekPunctuation, .trailingWhitespace, .deepSeekCJK,
                                            .numberRuns], keepsSpaces: true),
        GGUFPreTokenizer(["deepseek-coder"], [.lineBreaks, .spacedLetterRuns, .spacedPunctuationRuns, .deepSeekCJK, .isolateDigits],
                         keepsSpaces: true),
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
        case .qwen35: scanLlama3(maxDigits: 1, marksJoinLetters: true, into: &ends)
        case .isolateDigits: scanIsolated(of: { $0.isNumber($1) }, into: &ends)
        case .lineBreaks: scanIsolated(of: { $0.isNewline($1) }, into: &ends)
        case .numberRuns: scanRuns(of: { $0.isNumber($1) }, into: &ends)
        case .punctuationRuns: scanRuns(of: { $0.isPunctuation($1, backtick: false) }, into: &ends)
        case .punctuationRunsWithBacktick: scanRuns(of: { $0.isPunctuation($1, backtick: true) }, into: &ends)
        case .digitTriples: scanDigitTriples(into: &ends)
        case .deepSeekLetters: scanSpacedRuns(of: { $0.inClass($1, BracketClass.deepSeekLetters) }, into: &ends)
        case .deepSeekPunctuation: scanSpacedRuns(of: { $0.inClass($1, BracketClass.deepSeekPunctuation) }, into: &ends)
        case .deepSeekCJK: scanRuns(of: { $0.inClass($1, BracketClass.deepSeekCJK) }, into: &ends)
        case .spacedLetterRuns: scanSpacedRuns(of: { $0.isLetter($1) }, into: &ends)
        case .spacedPunctuationRuns: scanSpacedRuns(of: { $0.cls($1).contains(.punctuation) }, into: &ends)
        case .trailingWhitespace: scanTrailingWhitespace(into: &ends)
        case .lineFeedRuns: scanRuns(of: { $1 < $0.hi && $0.scalars[$1] == 0x0A }, into: &ends)
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

    /// The Llama 3 family; with `marksJoinLetters` (Qwen3.5) combining marks count as letters in letter runs and
    /// are never part of an other-symbol run.
    func scanLlama3(maxDigits: Int, marksJoinLetters: Bool = false, into ends: inout [Int]) {
        let letterLike: ScalarClass = marksJoinLetters ? [.letter, .mark] : .letter
        let notOther: ScalarClass = marksJoinLetters ? [.word, .mark] : .word
        func isLetterLike(_ i: Int) -> Bool { i < hi && !cls(i).isDisjoint(with: letterLike) }
        func isOther(_ i: Int) -> Bool { i < hi && cls(i).isDisjoint(with: notOther) }
        var pos = lo
        while pos < hi {
            let n = contraction(at: pos, caseInsensitive: true)
            if n > 0 { pos += n; ends.append(pos); continue }
            let c = scalars[pos]
            // `[^\r\n\p{L}\p{N}]?\p{L}+` (`[\p{L}\p{M}]+` for Qwen3.5)
            if c != 0x0A && c != 0x0D && !isNumber(pos) && (isLetterLike(pos) || isLetterLike(pos + 1)) {
                pos += 1
                while isLetterLike(pos) { pos += 1 }
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
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*` (`[^\s\p{L}\p{M}\p{N}]` for Qwen3.5)
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

    /// Every matching scalar is a piece of its own; so is each stretch between them.
    func scanIsolated(of matches: (PieceScanner, Int) -> Bool, into ends: inout [Int]) {
        var pos = lo
        while pos < hi {
            if matches(self, pos) {
                pos += 1
            } else {
                while pos < hi && !matches(self, pos) { pos += 1 }
            }
            ends.append(pos)
        }
    }

    /// `\s?X+`: an optional whitespace then a run of matching scalars is a piece; so is each stretch between such
    /// pieces. (A whitespace scalar never matches, so the optional one is taken only when a match follows it.)
    func scanSpacedRuns(of matches: (PieceScanner, Int) -> Bool, into ends: inout [Int]) {
        var pos = lo
        var gapStart = lo
        while pos < hi {
            let first = isSpace(pos) && pos + 1 < hi && matches(self, pos + 1) ? pos + 1 : pos
            if matches(self, first) {
                if gapStart < pos { ends.append(pos) }
                pos = first + 1
                while pos < hi && matches(self, pos) { pos += 1 }
                ends.append(pos)
                gapStart = pos
            } else {
                pos += 1
            }
        }
        if gapStart < hi { ends.append(hi) }
    }

    /// `\s+$`: the whitespace run that ends the piece is split from what comes before it.
    func scanTrailingWhitespace(into ends: inout [Int]) {
        guard lo < hi else { return }
        var start = hi
        while start > lo && isSpace(start - 1) { start -= 1 }
        if start > lo && start < hi { ends.append(start) }
        ends.append(hi)
    }

    /// Membership of a bracket class that llama.cpp matches with `std::wregex`: it first turns every non-ASCII
    /// whitespace scalar into U+000B, so those never match a class, even one whose ranges hold them (U+3000).
    func inClass(_ i: Int, _ set: BracketClass) -> Bool {
        guard i < hi else { return false }
        let v = scalars[i]
        if v > 0x7F && cls(i).contains(.whitespace) { return false }
        return set.contains(v)
    }
}

/// The scalar ranges of the one bracket expression `[...]` in a split rule's pattern, read from the pattern itself so
/// the rule and its scanner cannot disagree. Only literal scalars, `a-b` ranges and `\r`, `\n` occur in these.
struct BracketClass: Sendable {
    let ranges: [ClosedRange<UInt32>]

    init(pattern: String) {
        let scalars = Array(pattern.unicodeScalars.map(\.value))
        guard let open = scalars.firstIndex(of: 0x5B), let close = scalars.lastIndex(of: 0x5D), open < close else {
            preconditionFailure("split pattern without a bracket expression: \(pattern)")
        }
        var items: [UInt32] = []
        var i = open + 1
        while i < close {
            if scalars[i] == 0x5C, i + 1 < close {  // an escape: only \r and \n are used
                items.append(scalars[i + 1] == 0x72 ? 0x0D : scalars[i + 1] == 0x6E ? 0x0A : scalars[i + 1])
                i += 2
            } else {
                items.append(scalars[i])
                i += 1
            }
        }
        var ranges: [ClosedRange<UInt32>] = []
        var k = 0
        while k < items.count {
            if k + 2 < items.count, items[k + 1] == 0x2D {
                ranges.append(items[k]...items[k + 2])
                k += 3
            } else {
                ranges.append(items[k]...items[k])
                k += 1
            }
        }
        self.ranges = ranges.sorted { $0.lowerBound < $1.lowerBound }
    }

    func contains(_ v: UInt32) -> Bool {
        // Few ranges, possibly overlapping (the CJK class): a linear scan that stops past `v` is simple and exact.
        for r in ranges {
            if r.lowerBound > v { return false }
            if r.contains(v) { return true }
        }
        return false
    }

    static let deepSeekLetters = BracketClass(pattern: SplitRule.deepSeekLetters.pattern)
    static let deepSeekPunctuation = BracketClass(pattern: SplitRule.deepSeekPunctuation.pattern)
    static let deepSeekCJK = BracketClass(pattern: SplitRule.deepSeekCJK.pattern)
}
