import XCTest
import Tokenization
import TestSupport

/// llama.cpp's own tokenizer test vectors (`models/ggml-vocab-*.gguf.inp/.out` at c392e50): every string
/// must encode to exactly the expected ids, with no BOS and special-token spellings taken as text.
final class VocabularyVectorTests: XCTestCase {
    struct Vectors {
        let texts: [String]
        let ids: [[Int]]
    }

    static func vectors(_ name: String) throws -> Vectors {
        try Fixtures.requireShared()
        let base = Fixtures.path("tokenizer-vectors/ggml-vocab-\(name).gguf")
        let input = try String(contentsOfFile: base + ".inp", encoding: .utf8)
        var texts = input.components(separatedBy: "\n__ggml_vocab_test__\n")
        XCTAssertEqual(texts.last, "", "the piece after the last separator is empty")
        texts.removeLast()
        var lines = try String(contentsOfFile: base + ".out", encoding: .utf8).components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        let ids = lines.map { $0.split(separator: " ").map { Int($0)! } }
        XCTAssertEqual(texts.count, ids.count, "one .out line per test string")
        return Vectors(texts: texts, ids: ids)
    }

    static func tokenizer(_ name: String) throws -> Tokenizer {
        try TokenizerLoader.load(path: Fixtures.path("tokenizer-vectors/ggml-vocab-\(name).gguf"))
    }

    func checkVectors(_ name: String) throws {
        let v = try Self.vectors(name)
        let tokenizer = try Self.tokenizer(name)
        XCTAssertEqual(v.texts.count, 46)
        var failures = 0
        for (text, expected) in zip(v.texts, v.ids) {
            let got = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
            if got != expected {
                failures += 1
                XCTFail("\(name): \(text.debugDescription)\n  expected \(expected)\n  got      \(got)")
            }
        }
        XCTAssertEqual(failures, 0, "\(name): \(failures) of \(v.texts.count) strings differ")
    }

    func testLlamaSPMVectorsMatchLlamaCpp() throws { try checkVectors("llama-spm") }
    func testLlamaBPEVectorsMatchLlamaCpp() throws { try checkVectors("llama-bpe") }
    func testQwen2VectorsMatchLlamaCpp() throws { try checkVectors("qwen2") }
}
