/// Pre-tokenizes and merges the text fragments of one encode call, caching each distinct word.
struct ByteLevelSession {
    let bpe: ByteLevelBPE
    let preTokenizer: PreTokenizer
    let vocabulary: Vocabulary
    var scratch = ByteLevelBPE.Scratch()
    var cache: [[UInt8]: [Int]] = [:]
    var scalars: [UInt32] = []
    var offsets: [Int] = []

    init(bpe: ByteLevelBPE, preTokenizer: PreTokenizer, vocabulary: Vocabulary) {
        self.bpe = bpe
        self.preTokenizer = preTokenizer
        self.vocabulary = vocabulary
    }

    mutating func encode(_ text: UnsafeBufferPointer<UInt8>, into output: inout [Int]) {
        decodeScalars(text)
        let ends = scalars.withUnsafeBufferPointer { preTokenizer.split($0) }
        var start = 0
        var word: [Int] = []
        for end in ends {
            let range = offsets[start]..<offsets[end]
            start = end
            let key = Array(text[range])
            if let cached = cache[key] {
                output.append(contentsOf: cached)
                continue
            }
            word.removeAll(keepingCapacity: true)
            bpe.encodeWord(UnsafeBufferPointer(rebasing: text[range]), vocabulary: vocabulary, scratch: &scratch, output: &word)
            cache[key] = word
            output.append(contentsOf: word)
        }
    }

    /// Fills `scalars` and `offsets` (byte offset of each scalar, plus the end) from valid UTF-8.
    private mutating func decodeScalars(_ text: UnsafeBufferPointer<UInt8>) {
        scalars.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        var i = 0
        let n = text.count
        while i < n {
            offsets.append(i)
            let b0 = UInt32(text[i])
            if b0 < 0x80 {
                scalars.append(b0); i += 1
            } else if b0 < 0xE0, i + 1 < n {
                scalars.append((b0 & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F)); i += 2
            } else if b0 < 0xF0, i + 2 < n {
                scalars.append((b0 & 0x0F) << 12 | UInt32(text[i + 1] & 0x3F) << 6 | UInt32(text[i + 2] & 0x3F)); i += 3
            } else if i + 3 < n {
                scalars.append((b0 & 0x07) << 18 | UInt32(text[i + 1] & 0x3F) << 12
                    | UInt32(text[i + 2] & 0x3F) << 6 | UInt32(text[i + 3] & 0x3F)); i += 4
            } else {
                scalars.append(0xFFFD); i += 1  // unreachable for text that came from a String
            }
        }
        offsets.append(n)
    }
}
