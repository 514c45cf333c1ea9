import XCTest
import Checkpoints
import Tokenization
import TestSupport

/// tokenizer.json pipelines of the supported families map onto the right split rules and options.
final class TokenizerJSONPipelineTests: XCTestCase {
    /// The fixture tokenizer.json with its pre-tokenizer (and normalizer) replaced.
    func load(preTokenizer: String, normalizer: String = "null") throws -> BPETokenizer {
        var root = try JSONValue.parse(file: Fixtures.fixture("tokenizer/tokenizer.json")).objectValue!
        root["pre_tokenizer"] = try JSONValue.parse(Data(preTokenizer.utf8))
        root["normalizer"] = try JSONValue.parse(Data(normalizer.utf8))
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try JSONValue.object(root).serialized().write(to: folder.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        let tokenizer = try TokenizerLoader.load(path: folder.path)
        return try XCTUnwrap(tokenizer as? BPETokenizer)
    }

    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"#

    func testLlama3SplitSequenceUsesTheLlama3Rules() throws {
        let t = try load(preTokenizer: """
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "\(Self.llama3Pattern)"}, "behavior": "Isolated", "invert": false},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
            """)
        XCTAssertEqual(t.preTokenizer, PreTokenizer(rules: [.llama3]))
    }

    func testSmolLM2SequenceIsolatesDigitsThenUsesGPT2() throws {
        let t = try load(preTokenizer: """
            {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}
            """)
        XCTAssertEqual(t.preTokenizer, PreTokenizer(rules: [.isolateDigits, .gpt2]))
    }

    func testQwen2PipelineComposesToNFCBeforeSplitting() throws {
        let t = try load(preTokenizer: """
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "\(Self.qwen2Pattern)"}, "behavior": "Isolated", "invert": false},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]}
            """, normalizer: #"{"type": "NFC"}"#)
        XCTAssertEqual(t.preTokenizer, PreTokenizer(rules: [.qwen2]))
        let composed = t.encode("caf\u{E9}", addSpecial: false, parseSpecial: false)
        XCTAssertEqual(t.encode("cafe\u{301}", addSpecial: false, parseSpecial: false), composed)
    }

    func testWithoutNFCDecomposedTextStaysDecomposed() throws {
        let t = try load(preTokenizer: #"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}"#)
        XCTAssertNotEqual(t.encode("cafe\u{301}", addSpecial: false, parseSpecial: false),
                          t.encode("caf\u{E9}", addSpecial: false, parseSpecial: false))
    }

    func testByteLevelPrefixSpaceIsRefused() throws {
        XCTAssertThrowsError(try load(preTokenizer: #"{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}"#)) { error in
            guard case let .unsupported(kind, _, _)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(kind, "pre-tokenizer option")
        }
    }
}
