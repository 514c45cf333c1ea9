import Checkpoints
import Foundation
import TestSupport
import Tokenization
import XCTest

/// A tokenizer.json read as a vocabulary for merging: strip, append and re-mark tokens, and the result still tokenizes.
final class TokenizerVocabularyFileTests: XCTestCase {
    private func load(_ model: String) throws -> TokenizerVocabularyFile {
        let path = Fixtures.fixture("vocab-lora/models/\(model)/tokenizer.json")
        return try TokenizerVocabularyFile(text: try String(contentsOfFile: path, encoding: .utf8), file: path)
    }

    /// Writes `file` as a model folder's tokenizer and loads it with the tokenizer used everywhere else.
    private func tokenizer(_ file: TokenizerVocabularyFile) throws -> any Tokenizer {
        let dir = Fixtures.temporaryFolder("vocabulary-file")
        try file.serialized().write(to: dir.appendingPathComponent("tokenizer.json"), atomically: false, encoding: .utf8)
        return try TokenizerLoader.load(path: dir.path)
    }

    func testIdsAddedTokensAndFlagsAreRead() throws {
        let tool = try load("tool")
        XCTAssertEqual(tool.count, 324)
        XCTAssertEqual(tool.id(of: "s."), 320)
        XCTAssertFalse(tool.isAdded(320), "`s.` is an ordinary vocabulary token of tool")
        XCTAssertEqual(tool.added.map(\.content), ["<pad>", "<s>", "</s>", "<|im_start|>", "<tool_call>", "barometer"])
        XCTAssertEqual(tool.added.first { $0.content == "barometer" }?.special, false)
        XCTAssertEqual(tool.added.first { $0.content == "<tool_call>" }?.normalized, false)
    }

    /// Stripping to a size drops the tokens at or above it and their added entries; merges go only when one of their
    /// two parts is dropped, as mergekit 0.1.5 strips them (a merge whose result is dropped stays).
    func testStrippingDropsTokensAndTheirMerges() throws {
        let tool = try load("tool")
        let stripped = tool.stripped(to: 320)
        XCTAssertEqual(stripped.count, 320)
        XCTAssertNil(stripped.id(of: "s."))
        XCTAssertNil(stripped.id(of: "barometer"))
        let root = try JSONValue.parse(Data(stripped.serialized().utf8))
        XCTAssertEqual(root["model"]?["vocab"]?.objectValue?.count, 320)
        XCTAssertEqual(root["model"]?["merges"]?.arrayValue?.count, 62, "`s .` stays: neither `s` nor `.` is dropped")
        let withoutBarometer = tool.stripped(to: 323)
        XCTAssertEqual(withoutBarometer.added.map(\.content), ["<pad>", "<s>", "</s>", "<|im_start|>", "<tool_call>"])
    }

    /// Appended tokens take the next ids and are matched in text; re-marking an ordinary token keeps its id.
    func testAppendAndMarkAdded() throws {
        var base = try load("base")
        XCTAssertEqual(base.append(.plain("lighthouse")), 320)
        XCTAssertEqual(base.append(AddedTokenEntry(id: 0, content: "<|im_start|>", normalized: false, special: true)), 321)
        let the = try XCTUnwrap(base.id(of: "The"))
        base.markAdded(AddedTokenEntry(id: 0, content: "The", normalized: false, special: true))
        XCTAssertEqual(base.count, 322)
        XCTAssertTrue(base.isAdded(the))
        XCTAssertEqual(base.id(of: "The"), the)
        let root = try JSONValue.parse(Data(base.serialized().utf8))
        let ids = root["added_tokens"]?.arrayValue?.compactMap { $0["id"]?.intValue }
        XCTAssertEqual(ids, [0, 1, 2, the, 320, 321], "added_tokens stay in id order")
        let t = try tokenizer(base)
        XCTAssertEqual(t.encode("a lighthouse", addSpecial: false, parseSpecial: true).last, 320)
        XCTAssertEqual(t.encode("<|im_start|>x", addSpecial: false, parseSpecial: true).first, 321)
    }

    func testNonConsecutiveIdsAndOtherModelTypesAreRefused() {
        let text = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 2}, "merges": []}, "added_tokens": []}"#
        XCTAssertThrowsError(try TokenizerVocabularyFile(text: text, file: "x.json")) { error in
            XCTAssertTrue("\(error)".contains("not consecutive"), "\(error)")
        }
        let unigram = #"{"model": {"type": "Unigram", "vocab": []}}"#
        XCTAssertThrowsError(try TokenizerVocabularyFile(text: unigram, file: "u.json")) { error in
            XCTAssertTrue("\(error)".contains("Unigram") && "\(error)".contains("only BPE"), "\(error)")
        }
    }
}
