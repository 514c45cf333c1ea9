import XCTest
import Tokenization
import TestSupport

/// Token counts of WikiText-2 test as llama-perplexity tokenizes it (one trailing newline dropped,
/// add_special per the vocabulary, special spellings as text), measured with llama.cpp at c392e50
/// (perplexity-protocol.md §7). A whole-corpus count is a strong check of the pre-tokenizers.
final class WikiTextCountTests: XCTestCase {
    static func corpus() throws -> String {
        var text = try String(contentsOfFile: Fixtures.requireSharedFile(Fixtures.wikiTextTest), encoding: .utf8)
        if text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    func count(_ tokenizer: Tokenizer) throws -> [Int] {
        try tokenizer.encode(Self.corpus(), addSpecial: true, parseSpecial: false)
    }

    func testSmolLM2CountMatchesLlamaCpp() throws {
        let path = try Fixtures.requireSmolLM2GGUF()
        let tokenizer = try TokenizerLoader.load(path: path)
        XCTAssertFalse(tokenizer.addsBOS)
        let ids = try count(tokenizer)
        XCTAssertEqual(ids.count, 303_415)
    }

    func testSmolLM2ChatMarkersAreControlTokens() throws {
        let path = try Fixtures.requireSmolLM2GGUF()
        let tokenizer = try TokenizerLoader.load(path: path)
        let start = try XCTUnwrap(tokenizer.tokenID("<|im_start|>"))
        let end = try XCTUnwrap(tokenizer.tokenID("<|im_end|>"))
        XCTAssertEqual(tokenizer.tokenKind(start), .control)
        let text = "<|im_start|>user\nWhat is 12+30?<|im_end|>"
        let parsed = tokenizer.encode(text, addSpecial: true, parseSpecial: true)
        XCTAssertEqual(parsed.first, start)
        XCTAssertEqual(parsed.last, end)
        let plain = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        XCTAssertFalse(plain.contains(start) || plain.contains(end))
        XCTAssertEqual(tokenizer.decode(plain), text)
        XCTAssertEqual(tokenizer.decode(parsed), text)
        XCTAssertEqual(tokenizer.decode(parsed, skipSpecial: true), "user\nWhat is 12+30?")
        XCTAssertEqual(tokenizer.vocabularySize, 49_152)
    }

    func testLlama3CountMatchesLlamaCpp() throws {
        let tokenizer = try VocabularyVectorTests.tokenizer("llama-bpe")
        XCTAssertTrue(tokenizer.addsBOS)
        let ids = try count(tokenizer)
        XCTAssertEqual(ids.count, 289_078)
        XCTAssertEqual(ids.first, tokenizer.bosID)
    }

    func testQwen2CountMatchesLlamaCpp() throws {
        let tokenizer = try VocabularyVectorTests.tokenizer("qwen2")
        XCTAssertFalse(tokenizer.addsBOS)
        let ids = try count(tokenizer)
        XCTAssertEqual(ids.count, 299_079)
    }

    func testLlamaSPMCountMatchesLlamaCpp() throws {
        let tokenizer = try VocabularyVectorTests.tokenizer("llama-spm")
        XCTAssertTrue(tokenizer.addsBOS)
        let ids = try count(tokenizer)
        XCTAssertEqual(ids.count, 335_687)
        // perplexity-protocol.md §1: the first line " \n = Robert Boulter = " as llama-tokenize shows it.
        XCTAssertEqual(Array(ids.prefix(15)), [1, 259, 13, 353, 4755, 350, 5059, 357, 353, 29871, 13, 29871, 13, 4755, ids[14]])
    }
}
