import XCTest
import Checkpoints
import Tokenization
import TestSupport

/// Gemma's SentencePiece vocabulary (Gemma 1/2/3): a small BPE model trained with Gemma's settings, its
/// `tokenizer.json` as transformers 5.24's `GemmaConverter` writes it, and a tokenizer-only GGUF written as llama.cpp's
/// converter writes Gemma vocabularies (`tokenizer.ggml.model = llama`, `add_space_prefix = false`). The expected ids
/// are the `tokenizers` library's (Tests/References/gemma-spm, made by scripts/make-gemma-spm-reference.py).
final class GemmaSentencePieceTests: XCTestCase {
    struct Case { let text: String; let ids: [Int]; let idsWithBOS: [Int]; let decoded: String }

    static let folder = Fixtures.packageRoot.appendingPathComponent("Tests/References/gemma-spm")

    static func cases() throws -> [Case] {
        let root = try JSONValue.parse(file: folder.appendingPathComponent("expected.json").path)
        return try XCTUnwrap(root["cases"]?.arrayValue).map { c in
            Case(text: c["text"]!.stringValue!, ids: c["ids"]!.arrayValue!.map { $0.intValue! },
                 idsWithBOS: c["ids_with_bos"]!.arrayValue!.map { $0.intValue! }, decoded: c["decoded"]!.stringValue!)
        }
    }

    func testTokenizerJSONMatchesTokenizersLibrary() throws {
        let cases = try Self.cases()
        XCTAssertEqual(cases.count, 44)
        let tokenizer = try TokenizerLoader.load(path: Self.folder.path)
        XCTAssertEqual(tokenizer.bosID, 2)
        XCTAssertEqual(tokenizer.eosID, 1)
        XCTAssertTrue(tokenizer.addsBOS)
        XCTAssertFalse(tokenizer.addsEOS)
        var matched = 0
        for c in cases {
            // The tokenizers library cuts added-token spellings out of text by default.
            let ids = tokenizer.encode(c.text, addSpecial: false, parseSpecial: true)
            XCTAssertEqual(ids, c.ids, c.text.debugDescription)
            XCTAssertEqual(tokenizer.encode(c.text, addSpecial: true, parseSpecial: true), c.idsWithBOS, c.text.debugDescription)
            XCTAssertEqual(tokenizer.decode(c.ids), c.decoded, c.text.debugDescription)
            if ids == c.ids { matched += 1 }
        }
        XCTAssertEqual(matched, cases.count)
    }

    func testGGUFVocabularyMatchesTokenizersLibrary() throws {
        let cases = try Self.cases()
        let tokenizer = try TokenizerLoader.load(path: Self.folder.appendingPathComponent("gemma-spm-vocab.gguf").path)
        XCTAssertEqual(tokenizer.bosID, 2)
        XCTAssertEqual(tokenizer.eosID, 1)
        XCTAssertTrue(tokenizer.addsBOS)
        var compared = 0
        for c in cases {
            // `<unk>` is a special token to llama.cpp but not an added token of the tokenizer.json transformers writes,
            // so with parseSpecial the two differ on that spelling by design; the rest must match.
            if c.text.contains("<unk>") { continue }
            XCTAssertEqual(tokenizer.encode(c.text, addSpecial: false, parseSpecial: true), c.ids, c.text.debugDescription)
            XCTAssertEqual(tokenizer.encode(c.text, addSpecial: true, parseSpecial: true), c.idsWithBOS, c.text.debugDescription)
            XCTAssertEqual(tokenizer.decode(c.ids), c.decoded, c.text.debugDescription)
            compared += 1
        }
        XCTAssertEqual(compared, 43)
        // Without parseSpecial the spelling is text, as in the tokenizer.json.
        let unk = try XCTUnwrap(cases.first { $0.text == "<unk>" })
        XCTAssertEqual(tokenizer.encode(unk.text, addSpecial: false, parseSpecial: false), unk.ids)
    }

    /// A 27,825-character mixed text (random stretches of the GPL and random strings of ASCII, whitespace runs, CJK,
    /// Hangul, emoji, combining marks, NBSP, `▁` and user-defined pieces): 13,217 ids from both loaders.
    func testMixedTextMatchesFromBothLoaders() throws {
        let data = try Data(contentsOf: Self.folder.appendingPathComponent("mixed.txt"))
        let text = String(decoding: data, as: UTF8.self)
        let expected = try XCTUnwrap(JSONValue.parse(file: Self.folder.appendingPathComponent("mixed-ids.json").path).arrayValue)
            .map { $0.intValue! }
        XCTAssertEqual(expected.count, 13_217)
        for path in [Self.folder.path, Self.folder.appendingPathComponent("gemma-spm-vocab.gguf").path] {
            let tokenizer = try TokenizerLoader.load(path: path)
            let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: true)
            XCTAssertEqual(ids.count, expected.count, path)
            XCTAssertTrue(ids == expected, "\(path): first difference at \(ids.indices.first { $0 >= expected.count || ids[$0] != expected[$0] } ?? -1)")
            // A `▁` written in the text decodes as a space, as in the tokenizers library's Gemma decoder.
            // (Scalar by scalar: `▁` followed by an emoji modifier is one Character, which String replacement skips.)
            var want = String.UnicodeScalarView()
            want.append(contentsOf: text.unicodeScalars.map { $0 == "\u{2581}" ? " " : $0 })
            XCTAssertTrue(tokenizer.decode(ids).unicodeScalars.elementsEqual(want), path)
        }
    }
}
