import XCTest
import Checkpoints
import Tokenization
import TestSupport

/// SentencePiece-style BPE on small hand-made vocabularies: score order, `▁` prefix, byte fallback.
final class SentencePieceTests: XCTestCase {
    static let byteTokens = (0..<256).map { String(format: "<0x%02X>", $0) }

    /// <unk> <s> </s>, 256 byte tokens, then ▁ a b c ▁a ab bc ▁ab.
    static func metadata(scores extra: [Float]) -> [String: GGUFValue] {
        let words = ["\u{2581}", "a", "b", "c", "\u{2581}a", "ab", "bc", "\u{2581}ab"]
        let tokens = ["<unk>", "<s>", "</s>"] + byteTokens + words
        let types = [2, 3, 3] + [Int](repeating: 6, count: 256) + [Int](repeating: 1, count: words.count)
        let scores = [Float](repeating: 0, count: 259) + extra
        return [
            "tokenizer.ggml.model": .string("llama"),
            "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }),
            "tokenizer.ggml.token_type": .array(types.map { .int32(Int32($0)) }),
            "tokenizer.ggml.scores": .array(scores.map { .float32($0) }),
        ]
    }

    static let first = 259  // id of ▁

    func testHigherScoreMergesFirst() throws {
        // "▁abc": ▁a (-1) beats ab (-2) and bc (-3); then ▁ab (-1.5) is formed, c stays alone.
        let t = try TokenizerLoader.load(ggufMetadata: Self.metadata(scores: [-5, -5, -5, -5, -1, -2, -3, -1.5]), file: "spm.gguf")
        XCTAssertEqual(t.encode("abc", addSpecial: false, parseSpecial: false), [Self.first + 7, Self.first + 3])
        // With bc scoring best, b and c pair up first and ▁a takes the a.
        let u = try TokenizerLoader.load(ggufMetadata: Self.metadata(scores: [-5, -5, -5, -5, -2, -3, -1, -1.5]), file: "spm.gguf")
        XCTAssertEqual(u.encode("abc", addSpecial: false, parseSpecial: false), [Self.first + 4, Self.first + 6])
    }

    func testDefaultsAddBOSAndSpacePrefix() throws {
        let t = try TokenizerLoader.load(ggufMetadata: Self.metadata(scores: [-5, -5, -5, -5, -1, -2, -3, -1.5]), file: "spm.gguf")
        XCTAssertTrue(t.addsBOS)
        XCTAssertEqual(t.bosID, 1)
        XCTAssertEqual(t.eosID, 2)
        XCTAssertEqual(t.encode("ab", addSpecial: true, parseSpecial: false), [1, Self.first + 7])
        XCTAssertEqual(t.encode("", addSpecial: true, parseSpecial: false), [1])
    }

    func testUnknownCharactersFallBackToBytes() throws {
        let t = try TokenizerLoader.load(ggufMetadata: Self.metadata(scores: [-5, -5, -5, -5, -1, -2, -3, -1.5]), file: "spm.gguf")
        let ids = t.encode("é", addSpecial: false, parseSpecial: false)
        XCTAssertEqual(ids, [Self.first, 3 + 0xC3, 3 + 0xA9])
        XCTAssertEqual(t.decode(ids), "é")
    }

    func testSpecialSpellingIsParsedOnlyOnRequest() throws {
        let t = try TokenizerLoader.load(ggufMetadata: Self.metadata(scores: [-5, -5, -5, -5, -1, -2, -3, -1.5]), file: "spm.gguf")
        // After a special token the text gets its own ▁ prefix, as at the start.
        XCTAssertEqual(t.encode("<s>ab", addSpecial: false, parseSpecial: true), [1, Self.first + 7])
        XCTAssertEqual(t.encode("a<s>ab", addSpecial: false, parseSpecial: true), [Self.first + 4, 1, Self.first + 7])
        let plain = t.encode("<s>", addSpecial: false, parseSpecial: false)
        XCTAssertEqual(plain, [Self.first, 3 + 0x3C, 3 + 0x73, 3 + 0x3E])
        XCTAssertEqual(t.decode(plain), "<s>")
    }

    func testAddSpacePrefixCanBeTurnedOff() throws {
        var md = Self.metadata(scores: [-5, -5, -5, -5, -1, -2, -3, -1.5])
        md["tokenizer.ggml.add_space_prefix"] = .bool(false)
        md["tokenizer.ggml.add_bos_token"] = .bool(false)
        let t = try TokenizerLoader.load(ggufMetadata: md, file: "spm.gguf")
        XCTAssertFalse(t.addsBOS)
        XCTAssertEqual(t.encode("ab", addSpecial: true, parseSpecial: false), [Self.first + 5])
        XCTAssertEqual(t.decode([Self.first + 7]), " ab")
    }

    /// The same vocabulary as a tokenizer.json in the Llama 2 layout (▁ normalizer, byte fallback, merges).
    func testTokenizerJSONSentencePieceLayout() throws {
        let words = ["\u{2581}", "a", "b", "c", "\u{2581}a", "ab", "bc", "\u{2581}ab"]
        var vocab: [String] = []
        for (i, t) in (["<unk>", "<s>", "</s>"] + Self.byteTokens + words).enumerated() {
            vocab.append("\(JSONValue.quote(t)): \(i)")
        }
        let json = """
            {"added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true},
                              {"id": 2, "content": "</s>", "special": true}],
             "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
             "pre_tokenizer": null,
             "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                {"Sequence": {"id": "A", "type_id": 0}}],
                                "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
             "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "vocab": {\(vocab.joined(separator: ", "))},
                       "merges": ["▁ a", "▁a b", "a b", "b c"]}}
            """
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try json.write(to: folder.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        try #"{"bos_token": "<s>", "eos_token": "</s>"}"#.write(to: folder.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let t = try TokenizerLoader.load(path: folder.path)
        XCTAssertTrue(t.addsBOS)
        XCTAssertEqual(t.encode("abc ab", addSpecial: true, parseSpecial: false), [1, Self.first + 7, Self.first + 3, Self.first + 7])
        XCTAssertEqual(t.encode("é", addSpecial: false, parseSpecial: false), [Self.first, 3 + 0xC3, 3 + 0xA9])
        XCTAssertEqual(t.decode([Self.first + 7, Self.first + 3, Self.first + 7]), "abc ab")
    }
}
