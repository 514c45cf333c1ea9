import XCTest
import Tokenization
import TestSupport

/// llama.cpp's own tokenizer test vectors (`models/ggml-vocab-*.gguf.inp/.out`: Llama SPM, Llama BPE and Qwen2 at
/// c392e50, Qwen3.5, DeepSeek LLM and DeepSeek Coder from the llama.cpp vendored in llama-cpp-python 0.3.36): every
/// string must encode to exactly the expected ids, with no BOS and special-token spellings taken as text.
final class VocabularyVectorTests: XCTestCase {
    struct Vectors {
        let texts: [String]
        let ids: [[Int]]
    }

    static func vectors(_ name: String) throws -> Vectors {
        let base = "tokenizer-vectors/ggml-vocab-\(name).gguf"
        let input = try String(contentsOfFile: Fixtures.requireSharedFile(base + ".inp"), encoding: .utf8)
        var texts = input.components(separatedBy: "\n__ggml_vocab_test__\n")
        // The piece after the last separator is empty; the Gemma 4 file ends with its last string instead.
        if texts.last == "" { texts.removeLast() }
        var lines = try String(contentsOfFile: Fixtures.requireSharedFile(base + ".out"), encoding: .utf8).components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        let ids = lines.map { $0.split(separator: " ").map { Int($0)! } }
        XCTAssertEqual(texts.count, ids.count, "one .out line per test string")
        return Vectors(texts: texts, ids: ids)
    }

    private static var loaded: [String: Tokenizer] = [:]
    private static let lock = NSLock()

    /// The vocabulary's tokenizer, loaded once per test run (the Llama 3 and Qwen2 files are large); skips the
    /// calling test when the vocabulary file is not in `../shared`.
    static func tokenizer(_ name: String) throws -> Tokenizer {
        lock.lock()
        defer { lock.unlock() }
        if let t = loaded[name] { return t }
        let t = try TokenizerLoader.load(path: Fixtures.requireSharedFile("tokenizer-vectors/ggml-vocab-\(name).gguf"))
        loaded[name] = t
        return t
    }

    func checkVectors(_ name: String, count: Int = 46) throws {
        let v = try Self.vectors(name)
        let tokenizer = try Self.tokenizer(name)
        XCTAssertEqual(v.texts.count, count)
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
    func testQwen35VectorsMatchLlamaCpp() throws { try checkVectors("qwen35", count: 50) }
    func testDeepSeekLLMVectorsMatchLlamaCpp() throws { try checkVectors("deepseek-llm") }
    func testGemma4VectorsMatchLlamaCpp() throws { try checkVectors("gemma-4") }
    /// The DeepSeek Coder vocabulary is not in `../shared` today (llama.cpp ships it as `models/ggml-vocab-deepseek-coder.gguf`):
    /// this skips, naming the file, until it is added there.
    func testDeepSeekCoderVectorsMatchLlamaCpp() throws { try checkVectors("deepseek-coder") }
}

/// Special-token handling on the real vocabularies, as llama.cpp's partition does it.
final class VocabularySpecialTokenTests: XCTestCase {
    func testLlama3ControlTokensAreParsedOnlyOnRequest() throws {
        let t = try VocabularyVectorTests.tokenizer("llama-bpe")
        XCTAssertEqual(t.tokenID("<|begin_of_text|>"), 128000)
        XCTAssertEqual(t.bosID, 128000)
        XCTAssertEqual(t.eosID, 128001)
        let parsed = t.encode("<|begin_of_text|>Hi", addSpecial: false, parseSpecial: true)
        XCTAssertEqual(parsed.first, 128000)
        XCTAssertEqual(parsed.count, 2)
        let plain = t.encode("<|begin_of_text|>Hi", addSpecial: false, parseSpecial: false)
        XCTAssertFalse(plain.contains(128000))
        XCTAssertEqual(t.decode(plain), "<|begin_of_text|>Hi")
    }

    func testQwen2UserDefinedTokensAreAlwaysMatched() throws {
        // Qwen2's [PAD…] tokens are user-defined (type 4): llama.cpp cuts them out even without parse_special.
        let t = try VocabularyVectorTests.tokenizer("qwen2")
        XCTAssertEqual(t.tokenKind(151906), .userDefined)
        XCTAssertEqual(t.encode("a[PAD151906]b", addSpecial: true, parseSpecial: false).filter { $0 == 151906 }.count, 1)
        XCTAssertFalse(t.encode("<|endoftext|>", addSpecial: false, parseSpecial: false).contains(151643))
        XCTAssertEqual(t.encode("<|endoftext|>", addSpecial: false, parseSpecial: true), [151643])
    }

    func testGemma4AddsBOSAndDecodesSpacesAndBytes() throws {
        // llama.cpp forces add_bos for Gemma 4 and decodes `▁` as a space and `<0xXX>` tokens as bytes.
        let t = try VocabularyVectorTests.tokenizer("gemma-4")
        XCTAssertTrue(t.addsBOS)
        let text = "Hello  world\n\n\tx 🦙 ကာ"
        let ids = t.encode(text, addSpecial: true, parseSpecial: false)
        XCTAssertEqual(ids.first, t.bosID)
        XCTAssertEqual(t.decode(ids, skipSpecial: true), text)
    }

    func testVocabularySizesMatchTheFiles() throws {
        // Loaded outside the assertions: a missing vocabulary file must skip the test, not count as a thrown error.
        let spm = try VocabularyVectorTests.tokenizer("llama-spm")
        let bpe = try VocabularyVectorTests.tokenizer("llama-bpe")
        let qwen2 = try VocabularyVectorTests.tokenizer("qwen2")
        XCTAssertEqual(spm.vocabularySize, 32000)
        XCTAssertEqual(bpe.vocabularySize, 128256)
        XCTAssertEqual(qwen2.vocabularySize, 151936)
    }
}
