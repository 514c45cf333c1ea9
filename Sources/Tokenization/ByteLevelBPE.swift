/// Rank-ordered BPE merges over byte-level symbols (GPT-2, Llama 3, Qwen2, SmolLM2), or over raw UTF-8 characters
/// (Gemma 4, `rawUTF8`).
///
/// Implements the merge loop of byte-level BPE as llama.cpp's `llm_tokenizer_bpe_session` does it: a
/// word starts as one symbol per byte; the adjacent pair with the lowest merge rank (leftmost on ties)
/// is merged, its neighbours' pairs are re-queued, until no pair has a rank. Symbols are interned as
/// integers: vocabulary tokens keep their ids, merge parts or results missing from the vocabulary get
/// ids past the end, so the loop compares integers and never builds strings.
struct ByteLevelBPE: Sendable {
    /// `(left << 32) | right` → `(rank << 32) | merged symbol`.
    private let merges: [UInt64: UInt64]
    /// Bytes of every symbol: the vocabulary's tokens, then the extra symbols.
    private let symbolBytes: [[UInt8]]
    private let vocabularyCount: Int
    /// Symbol of the single byte character for each byte value.
    private let byteSymbols: [Int32]
    /// Token ids for the raw single bytes (llama.cpp's fallback for a symbol missing from the vocabulary).
    private let rawByteTokens: [Int32]
    let ignoreMerges: Bool
    /// Gemma 4 (llama.cpp's `gemma4` tokenizer model): the text is raw UTF-8 with spaces written `▁`, a word starts as
    /// one symbol per character, a symbol missing from the vocabulary falls back to `<0xXX>` byte tokens, and a word of
    /// line feeds that is a token is emitted whole.
    let rawUTF8: Bool
    /// Raw mode: the symbol of every character a merge or the vocabulary spells; other characters never merge.
    private let characterSymbols: [[UInt8]: Int32]
    /// Raw mode: the symbol of a character that is neither a token nor a merge part.
    private let strangerSymbol: Int32

    /// - Parameter merges: merge pairs in rank order (rank = index), as token strings.
    init(vocabulary: Vocabulary, merges: [(String, String)], ignoreMerges: Bool, rawUTF8: Bool = false) {
        var symbolBytes = vocabulary.bytes
        var extra: [[UInt8]: Int] = [:]
        func intern(_ bytes: [UInt8]) -> Int {
            if let id = vocabulary.lookup.find(bytes) { return id }
            if let id = extra[bytes] { return id }
            let id = symbolBytes.count
            symbolBytes.append(bytes)
            extra[bytes] = id
            return id
        }
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            let left = intern(Array(a.utf8)), right = intern(Array(b.utf8))
            let merged = intern(Array((a + b).utf8))
            let key = UInt64(left) << 32 | UInt64(right)
            if table[key] == nil { table[key] = UInt64(rank) << 32 | UInt64(merged) }
        }
        if rawUTF8 {
            byteSymbols = []
            let hex = Array("0123456789ABCDEF".utf8)
            rawByteTokens = (0..<256).map { b in
                Int32(vocabulary.lookup.find([0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E]) ?? -1)  // <0xXX>
            }
            characterSymbols = extra.mapValues { Int32($0) }
            strangerSymbol = Int32(symbolBytes.count)
            symbolBytes.append([])
        } else {
            byteSymbols = (0..<256).map { Int32(intern(ByteLevelMapping.utf8ForByte[$0])) }
            rawByteTokens = (0..<256).map { b in Int32(vocabulary.lookup.find([UInt8(b)]) ?? -1) }
            characterSymbols = [:]
            strangerSymbol = -1
        }
        self.rawUTF8 = rawUTF8
        self.merges = table
        self.symbolBytes = symbolBytes
        self.vocabularyCount = vocabulary.count
        self.ignoreMerges = ignoreMerges
    }

    fileprivate struct Candidate: Comparable {
        let rank: Int32
        let left: Int32
        let right: Int32
        let leftSymbol: Int32
        let rightSymbol: Int32
        let merged: Int32
        static func < (a: Candidate, b: Candidate) -> Bool {
            a.rank != b.rank ? a.rank < b.rank : a.left < b.left
        }
        static func == (a: Candidate, b: Candidate) -> Bool { a.rank == b.rank && a.left == b.left }
    }

    /// Reusable buffers for one encode call.
    struct Scratch {
        var symbols: [Int32] = []
        var next: [Int32] = []
        var prev: [Int32] = []
        fileprivate var heap = BinaryHeap<Candidate>()
        var spelled: [UInt8] = []
        /// Raw mode: the byte offset in the word where each initial symbol starts, and the end.
        var starts: [Int] = []
    }

    /// Appends the token ids of one pre-tokenized word (raw UTF-8 bytes) to `output`.
    func encodeWord(_ word: UnsafeBufferPointer<UInt8>, vocabulary: Vocabulary, scratch: inout Scratch, output: inout [Int]) {
        guard !word.isEmpty else { return }
        if ignoreMerges {
            scratch.spelled.removeAll(keepingCapacity: true)
            ByteLevelMapping.encode(word, into: &scratch.spelled)
            if let id = vocabulary.lookup.find(scratch.spelled) {
                output.append(id)
                return
            }
        }
        if rawUTF8 && !word.contains(where: { $0 != 0x0A }), let id = vocabulary.lookup.find(Array(word)) {
            output.append(id)
            return
        }
        scratch.symbols.removeAll(keepingCapacity: true)
        scratch.next.removeAll(keepingCapacity: true)
        scratch.prev.removeAll(keepingCapacity: true)
        if rawUTF8 {
            scratch.starts.removeAll(keepingCapacity: true)
            var offset = 0
            while offset < word.count {
                let lead = word[offset]
                let length = min(word.count - offset, lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4)
                let character = Array(word[offset..<(offset + length)])
                scratch.starts.append(offset)
                scratch.symbols.append(Int32(vocabulary.lookup.find(character) ?? characterSymbols[character].map(Int.init)
                                             ?? Int(strangerSymbol)))
                offset += length
            }
            scratch.starts.append(word.count)
        } else {
            for b in word { scratch.symbols.append(byteSymbols[Int(b)]) }
        }
        let n = scratch.symbols.count
        for i in 0..<n {
            scratch.prev.append(Int32(i - 1))
            scratch.next.append(i + 1 < n ? Int32(i + 1) : -1)
        }
        scratch.heap.removeAll()
        for i in 1..<max(n, 1) { queuePair(Int32(i - 1), Int32(i), scratch: &scratch) }

        while let c = scratch.heap.pop() {
            let l = Int(c.left), r = Int(c.right)
            // Skip candidates made stale by an earlier merge of either side.
            guard scratch.symbols[l] == c.leftSymbol, scratch.symbols[r] == c.rightSymbol, scratch.next[l] == c.right else { continue }
            scratch.symbols[l] = c.merged
            scratch.symbols[r] = -1
            let after = scratch.next[r]
            scratch.next[l] = after
            if after >= 0 { scratch.prev[Int(after)] = c.left }
            scratch.next[r] = -1
            if scratch.prev[l] >= 0 { queuePair(scratch.prev[l], c.left, scratch: &scratch) }
            if after >= 0 { queuePair(c.left, after, scratch: &scratch) }
        }

        var i: Int32 = 0
        while i >= 0 {
            let symbol = Int(scratch.symbols[Int(i)])
            if symbol < vocabularyCount {
                output.append(symbol)
            } else if symbol == Int(strangerSymbol) {
                for b in word[scratch.starts[Int(i)]..<scratch.starts[Int(i) + 1]] where rawByteTokens[Int(b)] >= 0 {
                    output.append(Int(rawByteTokens[Int(b)]))
                }
            } else {
                for b in symbolBytes[symbol] where rawByteTokens[Int(b)] >= 0 {
                    output.append(Int(rawByteTokens[Int(b)]))
                }
            }
            i = scratch.next[Int(i)]
        }
    }

    @inline(__always)
    private func queuePair(_ left: Int32, _ right: Int32, scratch: inout Scratch) {
        let a = scratch.symbols[Int(left)], b = scratch.symbols[Int(right)]
        guard let entry = merges[UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))] else { return }
        scratch.heap.push(Candidate(rank: Int32(truncatingIfNeeded: entry >> 32), left: left, right: right, leftSymbol: a, rightSymbol: b,
                                   merged: Int32(truncatingIfNeeded: entry & 0xFFFF_FFFF)))
    }
}
