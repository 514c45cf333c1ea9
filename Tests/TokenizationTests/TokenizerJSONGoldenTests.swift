import XCTest
import Checkpoints
import Tokenization
import TestSupport

/// The byte-level BPE fixture (`fixtures/tokenizer/`) against the `tokenizers` library's own output.
final class TokenizerJSONGoldenTests: XCTestCase {
    struct Entry {
        let text: String
        let ids: [Int]
        let idsWithSpecial: [Int]
        let tokens: [String]
        let decoded: String
    }

    static func entries() throws -> [Entry] {
        let root = try JSONValue.parse(file: Fixtures.fixture("tokenizer/golden.json"))
        return try XCTUnwrap(root.arrayValue).map { e in
            Entry(text: e["text"]!.stringValue!,
                  ids: e["ids"]!.arrayValue!.map { $0.intValue! },
                  idsWithSpecial: e["ids_with_special"]!.arrayValue!.map { $0.intValue! },
                  tokens: e["tokens"]!.arrayValue!.map { $0.stringValue! },
                  decoded: e["decoded"]!.stringValue!)
        }
    }

    func testGoldenEncodingsMatchTokenizersLibrary() throws {
        let entries = try Self.entries()
        XCTAssertEqual(entries.count, 32)
        let tokenizer = try TokenizerLoader.load(path: Fixtures.fixture("tokenizer"))
        for e in entries {
            // The tokenizers library matches special-token spellings in text by default.
            XCTAssertEqual(tokenizer.encode(e.text, addSpecial: false, parseSpecial: true), e.ids, e.text.debugDescription)
            XCTAssertEqual(tokenizer.encode(e.text, addSpecial: true, parseSpecial: true), e.idsWithSpecial, e.text.debugDescription)
            XCTAssertEqual(e.ids.map { tokenizer.tokenText($0) ?? "?" }, e.tokens, e.text.debugDescription)
            XCTAssertEqual(tokenizer.decode(e.ids), e.decoded, e.text.debugDescription)
        }
    }

    func testTemplateAddsBOSButNoEOS() throws {
        let tokenizer = try TokenizerLoader.load(path: Fixtures.fixture("tokenizer"))
        XCTAssertEqual(tokenizer.bosID, 1)
        XCTAssertEqual(tokenizer.eosID, 2)
        XCTAssertTrue(tokenizer.addsBOS)
        XCTAssertFalse(tokenizer.addsEOS)
        XCTAssertEqual(tokenizer.vocabularySize, 512)
    }

    func testSpecialSpellingsAreTextWithoutParseSpecial() throws {
        let tokenizer = try TokenizerLoader.load(path: Fixtures.fixture("tokenizer"))
        let ids = tokenizer.encode("<s>", addSpecial: false, parseSpecial: false)
        XCTAssertFalse(ids.contains(1))
        XCTAssertEqual(tokenizer.decode(ids), "<s>")
    }

    func testDecodeCanDropSpecialTokens() throws {
        let tokenizer = try TokenizerLoader.load(path: Fixtures.fixture("tokenizer"))
        let ids = tokenizer.encode("<s>hello</s>", addSpecial: true, parseSpecial: true)
        XCTAssertEqual(ids.first, 1)
        XCTAssertEqual(tokenizer.decode(ids, skipSpecial: true), "hello")
        XCTAssertEqual(tokenizer.decode(ids), "<s><s>hello</s>")
    }
}
