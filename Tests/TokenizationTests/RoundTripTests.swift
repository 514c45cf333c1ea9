import XCTest
import Tokenization
import TestSupport

/// decode(encode(x)) gives x back wherever the tokenizer is lossless.
final class RoundTripTests: XCTestCase {
    /// llama.cpp's byte-level detokenizer tidies spaces before punctuation and contractions for most
    /// vocabularies (Llama 3 included), so strings with those patterns do not come back verbatim.
    static func touchedByCleanup(_ text: String) -> Bool {
        [" ?", " !", " .", " ,", " '"].contains { text.contains($0) }
    }

    func checkRoundTrip(_ name: String, cleansSpaces: Bool) throws {
        let vectors = try VocabularyVectorTests.vectors(name)
        let tokenizer = try VocabularyVectorTests.tokenizer(name)
        var checked = 0
        for text in vectors.texts where !(cleansSpaces && Self.touchedByCleanup(text)) {
            XCTAssertEqual(tokenizer.decode(tokenizer.encode(text, addSpecial: false, parseSpecial: false)), text, "\(name): \(text.debugDescription)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 30)
    }

    func testLlamaSPMRoundTrips() throws { try checkRoundTrip("llama-spm", cleansSpaces: false) }
    func testLlamaBPERoundTrips() throws { try checkRoundTrip("llama-bpe", cleansSpaces: true) }
    func testQwen2RoundTrips() throws { try checkRoundTrip("qwen2", cleansSpaces: false) }

    func testLlamaBPEDecodeTidiesSpaceBeforePunctuation() throws {
        let tokenizer = try VocabularyVectorTests.tokenizer("llama-bpe")
        XCTAssertEqual(tokenizer.decode(tokenizer.encode("Hello , world !", addSpecial: false, parseSpecial: false)), "Hello, world!")
    }

    func testSPMDecodeKeepsTextSpaceAfterBOS() throws {
        // llama.cpp's detokenizer strips the added leading space only when the text starts the output.
        let tokenizer = try VocabularyVectorTests.tokenizer("llama-spm")
        let ids = tokenizer.encode("Hello world", addSpecial: true, parseSpecial: false)
        XCTAssertEqual(ids.first, 1)
        XCTAssertEqual(tokenizer.decode(Array(ids.dropFirst())), "Hello world")
        XCTAssertEqual(tokenizer.decode(ids), "<s> Hello world")
        XCTAssertEqual(tokenizer.decode(ids, skipSpecial: true), " Hello world")
    }
}
