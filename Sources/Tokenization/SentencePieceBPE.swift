/// Score-ordered BPE as SentencePiece's BPE model runs it (Llama 1/2, Mistral), following llama.cpp's
/// `llm_tokenizer_spm_session`: the text (spaces already spelled `▁`) starts as one symbol per UTF-8
/// character; repeatedly the adjacent pair whose concatenation is a vocabulary token with the highest
/// score (leftmost on ties) is merged. A final symbol that is not a token is spelled with `<0xXX>`
/// byte tokens (byte fallback), or the unknown token if the vocabulary has no byte tokens.
struct SentencePieceBPE: Sendable {
    /// Token for each byte value: `<0xXX>`, else the one-byte string, else nil.
    private let byteTokens: [Int?]
    private let unknownID: Int?
    /// True when no token has a `▁` right after another character, so no token can span a point in the
    /// text where a `▁` follows a non-`▁` character. The text is then cut into words there and each word
    /// merged on its own (and cached), which gives the same tokens as one pass over the whole text.
    private let splitsAtWordStarts: Bool

    init(vocabulary: Vocabulary, unknownID: Int?) {
        splitsAtWordStarts = !vocabulary.bytes.contains { token in
            var p = 1
            while p + 3 <= token.count {
                if Self.isSpaceMark(token, at: p) && !(p >= 3 && Self.isSpaceMark(token, at: p - 3)) { return true }
                p += 1
            }
            return false
        }
        byteTokens = (0..<256).map { b -> Int? in
            let hex = String(b, radix: 16, uppercase: true)
            let name = "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
            return vocabulary.lookup.find(name) ?? vocabulary.lookup.find([UInt8(b)])
        }
        self.unknownID = unknownID
    }

    private struct Candidate: Comparable {
        let score: Float
        let left: Int32
        let right: Int32
        let size: Int32
        /// Higher score first, then the leftmost pair.
        static func < (a: Candidate, b: Candidate) -> Bool {
            a.score != b.score ? a.score > b.score : a.left < b.left
        }
        static func == (a: Candidate, b: Candidate) -> Bool { a.score == b.score && a.left == b.left }
    }

    @inline(__always)
    static func isSpaceMark<C: RandomAccessCollection>(_ bytes: C, at p: C.Index) -> Bool where C.Element == UInt8, C.Index == Int {
        bytes[p] == 0xE2 && bytes[p + 1] == 0x96 && bytes[p + 2] == 0x81
    }

    /// Appends the tokens of `text` (spaces already spelled `▁`) to `output`.
    func encode(_ text: UnsafeBufferPointer<UInt8>, vocabulary: Vocabulary, output: inout [Int]) {
        guard splitsAtWordStarts else {
            encodeWord(text, vocabulary: vocabulary, output: &output)
            return
        }
        var cache: [[UInt8]: [Int]] = [:]
        var word: [Int] = []
        var start = 0
        var p = 1
        func flush(_ end: Int) {
            let piece = UnsafeBufferPointer(rebasing: text[start..<end])
            let key = Array(piece)
            if let cached = cache[key] {
                output.append(contentsOf: cached)
            } else {
                word.removeAll(keepingCapacity: true)
                encodeWord(piece, vocabulary: vocabulary, output: &word)
                cache[key] = word
                output.append(contentsOf: word)
            }
            start = end
        }
        while p + 3 <= text.count {
            if Self.isSpaceMark(text, at: p) && !(p >= 3 && Self.isSpaceMark(text, at: p - 3)) {
                flush(p)
                p += 3
            } else {
                p += 1
            }
        }
        if start < text.count { flush(text.count) }
    }

    /// The merge loop over one stretch of text.
    private func encodeWord(_ text: UnsafeBufferPointer<UInt8>, vocabulary: Vocabulary, output: inout [Int]) {
        guard !text.isEmpty else { return }
        var start: [Int32] = []
        var length: [Int32] = []
        var next: [Int32] = []
        var prev: [Int32] = []
        var offset = 0
        while offset < text.count {
            let lead = text[offset]
            let width = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            let n = min(width, text.count - offset)
            prev.append(Int32(start.count - 1))
            start.append(Int32(offset))
            length.append(Int32(n))
            offset += n
            next.append(offset == text.count ? -1 : Int32(start.count))
        }
        var heap = BinaryHeap<Candidate>()
        func queue(_ l: Int32, _ r: Int32) {
            guard l >= 0, r >= 0 else { return }
            let s = Int(start[Int(l)]), size = Int(length[Int(l)] + length[Int(r)])
            let slice = UnsafeBufferPointer(rebasing: text[s..<(s + size)])
            // A score of -inf marks a token that no merge produces (tokenizer.json vocabularies).
            guard let id = vocabulary.lookup.find(slice), vocabulary.scores[id] > -.infinity else { return }
            heap.push(Candidate(score: vocabulary.scores[id], left: l, right: r, size: Int32(size)))
        }
        for i in 1..<start.count { queue(Int32(i - 1), Int32(i)) }

        while let c = heap.pop() {
            let l = Int(c.left), r = Int(c.right)
            // Stale if either side has been merged away or has grown since the pair was queued.
            if length[l] == 0 || length[r] == 0 || length[l] + length[r] != c.size { continue }
            length[l] += length[r]
            length[r] = 0
            next[l] = next[r]
            if next[r] >= 0 { prev[Int(next[r])] = c.left }
            queue(prev[l], c.left)
            queue(c.left, next[l])
        }

        var i: Int32 = 0
        while i >= 0 {
            let s = Int(start[Int(i)]), n = Int(length[Int(i)])
            let slice = UnsafeBufferPointer(rebasing: text[s..<(s + n)])
            if let id = vocabulary.lookup.find(slice) {
                output.append(id)
            } else if slice.allSatisfy({ byteTokens[Int($0)] != nil }) {
                for b in slice { output.append(byteTokens[Int(b)]!) }
            } else if let unknownID {
                output.append(unknownID)
            }
            i = next[Int(i)]
        }
    }
}
