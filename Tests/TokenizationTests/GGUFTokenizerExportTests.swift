import Checkpoints
import Foundation
import TestSupport
import Tokenization
import XCTest

/// The Hugging Face files exported from a GGUF vocabulary must tokenize exactly as the GGUF file does.
/// The check goes through Crucible's tokenizer.json loader, which shares nothing with the GGUF path but
/// the merge engine: a wrong vocabulary, merge list, pre-tokenizer, added-token set or BOS rule shows up
/// as a different id somewhere in llama.cpp's vectors or in WikiText-2.
final class GGUFTokenizerExportTests: XCTestCase {
    struct Exported {
        let gguf: Tokenizer
        let json: Tokenizer
        let files: [String: String]
    }

    /// Exports the vocabulary of `path` into a temporary folder and loads both tokenizers.
    func export(_ path: String) throws -> Exported {
        let files = try GGUFTokenizerExport.files(from: GGUFFile(path: path))
        let dir = Fixtures.temporaryFolder("gguf-tokenizer-export")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: false, encoding: .utf8) }
        return Exported(gguf: try TokenizerLoader.load(path: path), json: try TokenizerLoader.load(path: dir.path), files: files)
    }

    func json(_ e: Exported, _ name: String) throws -> JSONValue {
        try JSONValue.parse(Data(XCTUnwrap(e.files[name], "\(name) is exported").utf8))
    }

    /// Every vector string (no BOS, specials as text) gives the same ids from both files and the llama.cpp ids;
    /// the whole WikiText-2 test set (as llama-perplexity tokenizes it) gives the same ids.
    func checkAgreement(_ e: Exported, vectors: VocabularyVectorTests.Vectors?, wikiTextCount: Int, label: String) throws {
        if let vectors {
            var failures = 0
            for (text, expected) in zip(vectors.texts, vectors.ids) {
                let ids = e.json.encode(text, addSpecial: false, parseSpecial: false)
                if ids != expected || ids != e.gguf.encode(text, addSpecial: false, parseSpecial: false) {
                    failures += 1
                    XCTFail("\(label): \(text.debugDescription)\n  expected \(expected)\n  got      \(ids)")
                }
            }
            XCTAssertEqual(failures, 0, "\(label): \(failures) of \(vectors.texts.count) strings differ")
        }
        let corpus = try WikiTextCountTests.corpus()
        let fromJSON = e.json.encode(corpus, addSpecial: true, parseSpecial: false)
        XCTAssertEqual(fromJSON.count, wikiTextCount, "\(label): WikiText-2 token count")
        XCTAssertTrue(fromJSON == e.gguf.encode(corpus, addSpecial: true, parseSpecial: false), "\(label): WikiText-2 ids differ")

        XCTAssertEqual(e.json.addsBOS, e.gguf.addsBOS, label)
        XCTAssertEqual(e.json.addsEOS, e.gguf.addsEOS, label)
        XCTAssertEqual(e.json.bosID, e.gguf.bosID, label)
        XCTAssertEqual(e.json.eosID, e.gguf.eosID, label)
        XCTAssertEqual(e.json.vocabularySize, e.gguf.vocabularySize, label)
        for sample in ["Hello world, it is 2024 and 12345 apples cost $3.50.", "  leading spaces\n\nand\ttabs ",
                       "Ünïcödé 日本語 🦙 text", "mixed CASE words: isn't, they're, I'm"] {
            let ids = e.gguf.encode(sample, addSpecial: true, parseSpecial: false)
            XCTAssertEqual(e.json.encode(sample, addSpecial: true, parseSpecial: false), ids, "\(label): \(sample)")
            XCTAssertEqual(e.json.decode(ids), e.gguf.decode(ids), "\(label): decode of \(sample)")
            // SentencePiece keeps the space it put before the text when decoding (as llama.cpp does).
            XCTAssertEqual(e.json.decode(ids, skipSpecial: true), (e.gguf.tokenKind(e.gguf.tokenID("<0x41>") ?? -1) == .byte ? " " : "") + sample,
                           "\(label): decode of \(sample)")
        }
    }

    /// The keys the `tokenizers` library needs to build a BPE tokenizer, and counts that match the GGUF file.
    func checkStructure(_ e: Exported, path: String) throws {
        let md = try GGUFFile(path: path).metadata
        let tokens = try XCTUnwrap(md["tokenizer.ggml.tokens"]?.stringArray)
        let sentencePiece = md["tokenizer.ggml.model"]?.stringValue == "llama"
        let types = md["tokenizer.ggml.token_type"]?.intArray ?? []
        let root = try json(e, "tokenizer.json")
        XCTAssertEqual(root["model"]?["type"]?.stringValue, "BPE")
        XCTAssertEqual(root["model"]?["byte_fallback"]?.boolValue, sentencePiece)
        // Every distinct spelling, compared by bytes: U+03AF and U+1F77 are two Llama tokens, though Swift's
        // String equality calls them equal.
        XCTAssertEqual(root["model"]?["vocab"]?.objectValue?.count, Set(tokens.map { Array($0.utf8) }).count)
        if sentencePiece {
            XCTAssertEqual(root["model"]?["unk_token"]?.stringValue, "<unk>")
            XCTAssertEqual(root["normalizer"]?["type"]?.stringValue, "Sequence")
            XCTAssertEqual(root["decoder"]?["type"]?.stringValue, "Sequence")
            XCTAssertEqual(root["pre_tokenizer"]?.isNull, true)
        } else {
            let merges = try XCTUnwrap(md["tokenizer.ggml.merges"]?.stringArray)
            XCTAssertEqual(root["model"]?["merges"]?.arrayValue?.count, merges.count)
            XCTAssertEqual(root["decoder"]?["type"]?.stringValue, "ByteLevel")
            XCTAssertNotNil(root["pre_tokenizer"]?["type"]?.stringValue)
        }
        let added = try XCTUnwrap(root["added_tokens"]?.arrayValue)
        XCTAssertFalse(added.isEmpty)
        for entry in added {
            let id = try XCTUnwrap(entry["id"]?.intValue)
            XCTAssertEqual(entry["content"]?.stringValue, tokens[id])
            if types.count == tokens.count, entry["special"]?.boolValue == false { XCTAssertEqual(types[id], 4, tokens[id]) }
        }
        XCTAssertEqual(added.count, Set(tokens.indices.filter { types.count == tokens.count && (types[$0] == 3 || types[$0] == 4) }.map { tokens[$0] })
            .union(tokens.filter { ["<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>"].contains($0) }).count)

        let config = try json(e, "tokenizer_config.json")
        XCTAssertEqual(config["add_bos_token"]?.boolValue, e.gguf.addsBOS)
        XCTAssertEqual(config["bos_token"]?.stringValue, e.gguf.bosID.flatMap { e.gguf.tokenText($0) })
        XCTAssertEqual(config["eos_token"]?.stringValue, e.gguf.eosID.flatMap { e.gguf.tokenText($0) })
        XCTAssertEqual(config["chat_template"]?.stringValue, md["tokenizer.chat_template"]?.stringValue)
        let generation = try json(e, "generation_config.json")
        XCTAssertEqual(generation["bos_token_id"]?.intValue, e.gguf.bosID)
        XCTAssertEqual(generation["eos_token_id"]?.intValue, e.gguf.eosID)
        let specialMap = try json(e, "special_tokens_map.json")
        XCTAssertEqual(specialMap["eos_token"]?["content"]?.stringValue, config["eos_token"]?.stringValue)
    }

    func testLlama3ExportTokenizesLikeTheGGUF() throws {
        let path = try Fixtures.requireSharedFile("tokenizer-vectors/ggml-vocab-llama-bpe.gguf")
        _ = try Fixtures.requireSharedFile(Fixtures.wikiTextTest)
        let e = try export(path)
        XCTAssertTrue(e.json.addsBOS)
        XCTAssertEqual(e.json.encode("Hi", addSpecial: true, parseSpecial: false).first, 128000)
        try checkAgreement(e, vectors: VocabularyVectorTests.vectors("llama-bpe"), wikiTextCount: 289_078, label: "llama-bpe")
        try checkStructure(e, path: path)
        let root = try json(e, "tokenizer.json")
        XCTAssertEqual(root["model"]?["ignore_merges"]?.boolValue, true)
        XCTAssertEqual(root["post_processor"]?["processors"]?.arrayValue?.last?["type"]?.stringValue, "TemplateProcessing")
        // Control tokens are special added tokens, parsed only on request.
        XCTAssertEqual(e.json.tokenKind(128001), .control)
        XCTAssertEqual(e.json.encode("<|end_of_text|>", addSpecial: false, parseSpecial: true), [128001])
    }

    func testQwen2ExportTokenizesLikeTheGGUF() throws {
        let path = try Fixtures.requireSharedFile("tokenizer-vectors/ggml-vocab-qwen2.gguf")
        _ = try Fixtures.requireSharedFile(Fixtures.wikiTextTest)
        let e = try export(path)
        XCTAssertFalse(e.json.addsBOS)
        try checkAgreement(e, vectors: VocabularyVectorTests.vectors("qwen2"), wikiTextCount: 299_079, label: "qwen2")
        try checkStructure(e, path: path)
        // User-defined tokens stay non-special added tokens, matched even without special parsing.
        XCTAssertEqual(e.json.tokenKind(151906), .userDefined)
        XCTAssertEqual(e.json.encode("a[PAD151906]b", addSpecial: false, parseSpecial: false),
                       e.gguf.encode("a[PAD151906]b", addSpecial: false, parseSpecial: false))
        XCTAssertEqual(try json(e, "tokenizer.json")["post_processor"]?["type"]?.stringValue, "ByteLevel")
    }

    func testSmolLM2ExportTokenizesLikeTheGGUF() throws {
        let path = try Fixtures.requireSmolLM2GGUF()
        _ = try Fixtures.requireSharedFile(Fixtures.wikiTextTest)
        let e = try export(path)
        try checkAgreement(e, vectors: nil, wikiTextCount: 303_415, label: "smollm")
        try checkStructure(e, path: path)
        let chat = "<|im_start|>user\nWhat is 12+30?<|im_end|>"
        XCTAssertEqual(e.json.encode(chat, addSpecial: true, parseSpecial: true), e.gguf.encode(chat, addSpecial: true, parseSpecial: true))
        let config = try json(e, "tokenizer_config.json")
        XCTAssertEqual(config["model_max_length"]?.intValue, 8192)
        XCTAssertTrue(config["chat_template"]?.stringValue?.contains("<|im_start|>") == true)
    }

    func testLlamaSentencePieceExportTokenizesLikeTheGGUF() throws {
        let path = try Fixtures.requireSharedFile("tokenizer-vectors/ggml-vocab-llama-spm.gguf")
        _ = try Fixtures.requireSharedFile(Fixtures.wikiTextTest)
        let e = try export(path)
        XCTAssertTrue(e.json.addsBOS)
        try checkAgreement(e, vectors: VocabularyVectorTests.vectors("llama-spm"), wikiTextCount: 335_687, label: "llama-spm")
        try checkStructure(e, path: path)
        let root = try json(e, "tokenizer.json")
        // Merges derived from the scores: every merge joins two pieces into a piece of the vocabulary.
        let vocab = try XCTUnwrap(root["model"]?["vocab"]?.objectValue)
        let merges = try XCTUnwrap(root["model"]?["merges"]?.arrayValue)
        XCTAssertGreaterThan(merges.count, 30_000)
        for m in merges.prefix(2000) {
            let parts = try XCTUnwrap(m.stringValue, "merges are \"a b\" strings").split(separator: " ").map(String.init)
            XCTAssertEqual(parts.count, 2)
            XCTAssertNotNil(vocab[parts.joined()], "\(parts)")
        }
        XCTAssertEqual(try json(e, "tokenizer_config.json")["tokenizer_class"]?.stringValue, "LlamaTokenizerFast")
        // Byte fallback: a character outside the vocabulary becomes its UTF-8 bytes and decodes back.
        let rare = "\u{10348}"
        let ids = e.json.encode(rare, addSpecial: false, parseSpecial: false)
        XCTAssertEqual(ids, e.gguf.encode(rare, addSpecial: false, parseSpecial: false))
        XCTAssertEqual(ids.first, e.json.tokenID("\u{2581}"), "the space prefix")
        XCTAssertEqual(ids.count, 5)
        XCTAssertTrue(ids.dropFirst().allSatisfy { e.json.tokenKind($0) == .byte }, "\(ids)")
        XCTAssertEqual(e.json.decode(ids), rare, "the bytes fuse back into the character; the leading ▁ is dropped")
        XCTAssertEqual(e.json.decode(ids), e.gguf.decode(ids))
    }

    /// The merge derivation on a vocabulary small enough to check by hand.
    func testSentencePieceMergesFollowPieceScores() throws {
        let tokens = ["<unk>", "<s>", "</s>", "a", "b", "c", "\u{2581}", "ab", "bc", "abc", "\u{2581}a"]
        let scores: [Float] = [0, 0, 0, -1, -2, -3, -4, -10, -5, -20, -7]
        let md: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string("llama"), "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }),
            "tokenizer.ggml.scores": .array(scores.map { .float32($0) }),
            "tokenizer.ggml.token_type": .array([2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1].map { .int32($0) }),
        ]
        let files = try GGUFTokenizerExport.files(metadata: md, file: "tiny.gguf")
        let root = try JSONValue.parse(Data(XCTUnwrap(files["tokenizer.json"]).utf8))
        let merges = try XCTUnwrap(root["model"]?["merges"]?.arrayValue).map { $0.stringValue?.split(separator: " ").map(String.init) ?? [] }
        // By score of the result: bc (-5), ▁a (-7), ab (-10), then abc (-20) split as a+bc (ids 3, 8) before ab+c (7, 5).
        XCTAssertEqual(merges, [["b", "c"], ["\u{2581}", "a"], ["a", "b"], ["a", "bc"], ["ab", "c"]])
        let added = try XCTUnwrap(root["added_tokens"]?.arrayValue).compactMap { $0["content"]?.stringValue }
        XCTAssertEqual(added, ["<s>", "</s>"])
        let dir = Fixtures.temporaryFolder("gguf-tokenizer-export-spm")
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: false, encoding: .utf8) }
        let json = try TokenizerLoader.load(path: dir.path)
        let gguf = try TokenizerLoader.load(ggufMetadata: md, file: "tiny.gguf")
        for text in ["abc", "ab c", "abcabc", " a", "cab"] {
            XCTAssertEqual(json.encode(text, addSpecial: true, parseSpecial: false), gguf.encode(text, addSpecial: true, parseSpecial: false), text)
        }
    }

    func testUnknownPreTokenizerAndMissingVocabularyAreRefused() throws {
        let base: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string("gpt2"),
            "tokenizer.ggml.tokens": .array(["a", "b", "ab"].map { .string($0) }),
            "tokenizer.ggml.merges": .array([.string("a b")]),
        ]
        var unknownPre = base
        unknownPre["tokenizer.ggml.pre"] = .string("no-such-pre")
        XCTAssertThrowsError(try GGUFTokenizerExport.files(metadata: unknownPre, file: "x.gguf")) { error in
            XCTAssertTrue("\(error)".contains("x.gguf") && "\(error)".contains("no-such-pre"), "\(error)")
        }
        var noTokens = base
        noTokens["tokenizer.ggml.tokens"] = nil
        XCTAssertThrowsError(try GGUFTokenizerExport.files(metadata: noTokens, file: "y.gguf")) { error in
            XCTAssertTrue("\(error)".contains("y.gguf") && "\(error)".contains("tokenizer.ggml.tokens"), "\(error)")
        }
        var badMerge = base
        badMerge["tokenizer.ggml.merges"] = .array([.string("ab")])
        XCTAssertThrowsError(try GGUFTokenizerExport.files(metadata: badMerge, file: "z.gguf")) { error in
            XCTAssertTrue("\(error)".contains("z.gguf") && "\(error)".contains("merges[0]"), "\(error)")
        }
        XCTAssertThrowsError(try GGUFTokenizerExport.files(metadata: [:], file: "w.gguf")) { error in
            XCTAssertTrue("\(error)".contains("tokenizer.ggml.model"), "\(error)")
        }
    }

    /// The GPT-2 byte-to-character table: printable bytes stand for themselves, the rest take 256, 257, ….
    static func byteLevelAlphabet() -> [String] {
        var next: UInt32 = 256
        return (0..<256).map { (b: UInt32) -> String in
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) { return String(Unicode.Scalar(b)!) }
            defer { next += 1 }
            return String(Unicode.Scalar(next)!)
        }
    }

    /// Every pre-tokenizer the export writes cuts text as llama.cpp does for that `tokenizer.ggml.pre`, on a
    /// small vocabulary whose merges cross digit, punctuation and space boundaries (so the families differ).
    func testEveryPreTokenizerFamilyRoundTrips() throws {
        let merges = ["1 2", "12 3", "3 4", "34 5", "Ġ 1", "Ġ 12", "Ġ a", "Ġa b", "! !", "!! ?", "Ġ !", "a b", "Ċ Ċ", "Ġ Ġ"]
        var tokens = Self.byteLevelAlphabet()
        for m in merges {
            let parts = m.split(separator: " ").map(String.init)
            let joined = parts[0] + parts[1]
            if !tokens.contains(joined) { tokens.append(joined) }
        }
        tokens += ["<|endoftext|>", "<extra>"]
        var types = [GGUFValue](repeating: .int32(1), count: tokens.count)
        types[tokens.count - 1] = .int32(4)
        let texts = ["12345 ab!!? 2345", "  12 ab\n\n\nab !!", "x 123456789 y", "ab<extra>ab<|endoftext|>", "a'sb 'll 12.345,6"]
        var seen: [[Int]] = []
        for pre in ["default", "gpt-2", "smollm", "llama-bpe", "qwen2", "starcoder"] {
            let md: [String: GGUFValue] = [
                "tokenizer.ggml.model": .string("gpt2"), "tokenizer.ggml.pre": .string(pre),
                "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }), "tokenizer.ggml.token_type": .array(types),
                "tokenizer.ggml.merges": .array(merges.map { .string($0) }),
                "tokenizer.ggml.bos_token_id": .uint32(UInt32(tokens.count - 2)), "tokenizer.ggml.eos_token_id": .uint32(UInt32(tokens.count - 2)),
            ]
            let files = try GGUFTokenizerExport.files(metadata: md, file: "\(pre).gguf")
            let dir = Fixtures.temporaryFolder("gguf-tokenizer-export-pre")
            defer { try? FileManager.default.removeItem(at: dir) }
            for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: false, encoding: .utf8) }
            let json = try TokenizerLoader.load(path: dir.path)
            let gguf = try TokenizerLoader.load(ggufMetadata: md, file: "\(pre).gguf")
            XCTAssertEqual(json.addsBOS, gguf.addsBOS, pre)
            var all: [Int] = []
            for text in texts {
                for special in [false, true] {
                    let ids = gguf.encode(text, addSpecial: true, parseSpecial: special)
                    XCTAssertEqual(json.encode(text, addSpecial: true, parseSpecial: special), ids, "\(pre): \(text.debugDescription)")
                    XCTAssertEqual(json.decode(ids), gguf.decode(ids), "\(pre): \(text.debugDescription)")
                    all += ids
                }
            }
            seen.append(all)
        }
        // The families really cut differently here, so agreement above is not agreement by accident.
        XCTAssertGreaterThanOrEqual(Set(seen).count, 4)
    }
}
