import XCTest
import Checkpoints
import Tokenization
import TestSupport

/// Bad or unsupported tokenizers are refused with an error naming the file, never tokenized differently.
final class LoaderErrorTests: XCTestCase {
    let file = "test.gguf"

    func gpt2Metadata(pre: String = "gpt-2") -> [String: GGUFValue] {
        [
            "tokenizer.ggml.model": .string("gpt2"),
            "tokenizer.ggml.pre": .string(pre),
            "tokenizer.ggml.tokens": .array(["a", "b", "ab"].map { .string($0) }),
            "tokenizer.ggml.merges": .array([.string("a b")]),
        ]
    }

    func assertThrows(_ expected: TokenizerError, _ body: () throws -> Tokenizer, line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { error in
            XCTAssertEqual(error as? TokenizerError, expected, line: line)
            XCTAssertTrue("\(error)".contains(self.file) || "\(error)".contains("/"), "message names the file", line: line)
        }
    }

    func testMinimalGGUFVocabularyMerges() throws {
        let tokenizer = try TokenizerLoader.load(ggufMetadata: gpt2Metadata(), file: file)
        XCTAssertEqual(tokenizer.encode("ab", addSpecial: false, parseSpecial: false), [2])
        XCTAssertEqual(tokenizer.encode("aba", addSpecial: false, parseSpecial: false), [2, 0])
        XCTAssertFalse(tokenizer.addsBOS)
        XCTAssertNil(tokenizer.bosID, "llama.cpp's default BOS id 11 lies outside this vocabulary")
    }

    func testUnknownTokenizerModelIsRefused() {
        var md = gpt2Metadata()
        md["tokenizer.ggml.model"] = .string("bert")
        assertThrows(.unsupported(kind: "tokenizer model (tokenizer.ggml.model)", value: "bert", file: file)) {
            try TokenizerLoader.load(ggufMetadata: md, file: file)
        }
    }

    func testUnknownPreTokenizerIsRefused() {
        assertThrows(.unsupported(kind: "pre-tokenizer (tokenizer.ggml.pre)", value: "tekken-9", file: file)) {
            try TokenizerLoader.load(ggufMetadata: gpt2Metadata(pre: "tekken-9"), file: file)
        }
    }

    func testMissingTokensAreReported() {
        var md = gpt2Metadata()
        md["tokenizer.ggml.tokens"] = nil
        assertThrows(.malformed(file: file, reason: "tokenizer.ggml.tokens is missing or not an array of strings")) {
            try TokenizerLoader.load(ggufMetadata: md, file: file)
        }
    }

    func testMergeWithoutSeparatorIsReported() {
        var md = gpt2Metadata()
        md["tokenizer.ggml.merges"] = .array([.string("a b"), .string("ab")])
        assertThrows(.malformed(file: file, reason: "tokenizer.ggml.merges[1] = 'ab' is not two tokens separated by a space")) {
            try TokenizerLoader.load(ggufMetadata: md, file: file)
        }
    }

    func testShortScoreArrayIsReported() {
        var md = gpt2Metadata()
        md["tokenizer.ggml.scores"] = .array([.float32(0)])
        assertThrows(.malformed(file: file, reason: "tokenizer.ggml.scores must hold a number per token")) {
            try TokenizerLoader.load(ggufMetadata: md, file: file)
        }
    }

    func testAddBOSWithoutBOSTokenIsReported() {
        var md = gpt2Metadata()
        md["tokenizer.ggml.add_bos_token"] = .bool(true)
        assertThrows(.malformed(file: file, reason: "add_bos_token is true but the vocabulary has no BOS token")) {
            try TokenizerLoader.load(ggufMetadata: md, file: file)
        }
    }

    func testMissingPathIsReported() {
        let path = "/no/such/model"
        XCTAssertThrowsError(try TokenizerLoader.load(path: path)) { error in
            XCTAssertEqual(error as? TokenizerError, .fileNotFound(path: path))
        }
    }

    func testFolderWithoutTokenizerJSONIsReported() throws {
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        XCTAssertThrowsError(try TokenizerLoader.load(path: folder.path)) { error in
            XCTAssertEqual(error as? TokenizerError, .fileNotFound(path: folder.appendingPathComponent("tokenizer.json").path))
        }
    }

    func testNonGGUFFileIsRefusedByTheReader() throws {
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("bad.gguf").path
        _ = FileManager.default.createFile(atPath: path, contents: Data("not a gguf file".utf8))
        XCTAssertThrowsError(try TokenizerLoader.load(path: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }

    /// Writes `json` as tokenizer.json in a fresh folder and loads it.
    func loadJSON(_ json: String) throws -> Tokenizer {
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try json.write(to: folder.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        return try TokenizerLoader.load(path: folder.path)
    }

    func testTokenizerJSONErrorsNameTheFileAndTheUnsupportedPart() throws {
        let cases: [(String, String, String)] = [
            (#"{"model": {"type": "WordPiece", "vocab": {"a": 0}}}"#, "model type", "WordPiece"),
            (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}"#,
             "pre-tokenizer", "Whitespace"),
            (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated"}, {"type": "ByteLevel", "use_regex": false}]}}"#,
             "Split pattern", "\\w+"),
            (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}, "normalizer": {"type": "Lowercase"}}"#,
             "normalizer", "Lowercase"),
            // Gemma's Split(" ") is a no-op only after a normalizer that spells every space `▁`.
            (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": true}, "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious"}}"#,
             "pipeline", "BPE without a byte-level pre-tokenizer or a ▁ normalizer"),
            (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": true}, "normalizer": {"type": "Prepend", "prepend": "▁"}, "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious"}}"#,
             "normalizer", "no Replace(' ' → '▁')"),
            (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": true}, "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}, "pre_tokenizer": {"type": "Split", "pattern": {"String": "\n"}, "behavior": "MergedWithPrevious"}}"#,
             "pre-tokenizer", "Split"),
        ]
        for (json, kind, value) in cases {
            XCTAssertThrowsError(try loadJSON(json)) { error in
                guard case let .unsupported(k, v, f)? = error as? TokenizerError else { return XCTFail("\(error)") }
                XCTAssertEqual(k, kind)
                XCTAssertEqual(v, value)
                XCTAssertTrue(f.hasSuffix("tokenizer.json"))
            }
        }
    }

    func testBrokenTokenizerJSONIsMalformed() throws {
        XCTAssertThrowsError(try loadJSON(#"{"model": {"type": "BPE", "vocab": {"a": 0}"#)) { error in
            guard case let .malformed(file, _)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertTrue(file.hasSuffix("tokenizer.json"))
        }
        XCTAssertThrowsError(try loadJSON(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [3]}, "pre_tokenizer": {"type": "ByteLevel"}}"#)) { error in
            guard case let .malformed(_, reason)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("merges[0]"), reason)
        }
    }
}

extension LoaderErrorTests {
    func testOutOfRangeIdsAreMalformed() throws {
        let hugeID = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 9000000000}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}"#
        XCTAssertThrowsError(try loadJSON(hugeID)) { error in
            guard case let .malformed(_, reason)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("9000000000"), reason)
        }
        let badTemplate = #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [7], "tokens": ["<s>"]}}}}"#
        XCTAssertThrowsError(try loadJSON(badTemplate)) { error in
            guard case let .malformed(_, reason)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("token id 7"), reason)
        }
    }
}
