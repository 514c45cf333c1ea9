import Checkpoints
import Tokenization
import XCTest

/// The Gemma 4 tokenizer model (`tokenizer.ggml.model = gemma4`) on a small made-up vocabulary, so the rules llama.cpp
/// applies are checked without `../shared` (the real vocabulary's vectors are in `VocabularyVectorTests`).
final class Gemma4TokenizerTests: XCTestCase {
    static let metadata: [String: GGUFValue] = {
        let tokens = ["<pad>", "<eos>", "<bos>", "<0xC3>", "<0xA9>", "a", "b", "▁", "ab", "▁ab", "\n\n", "\n"]
        let types: [Int32] = [3, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1, 1]
        return [
            "tokenizer.ggml.model": .string("gemma4"),
            "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }),
            "tokenizer.ggml.token_type": .array(types.map { .int32($0) }),
            "tokenizer.ggml.merges": .array(["a b", "▁ ab"].map { .string($0) }),
            "tokenizer.ggml.bos_token_id": .uint32(2), "tokenizer.ggml.eos_token_id": .uint32(1),
            "tokenizer.ggml.add_bos_token": .bool(false),
        ]
    }()

    func tokenizer() throws -> Tokenizer { try TokenizerLoader.load(ggufMetadata: Self.metadata, file: "gemma4.gguf") }

    func testHuggingFaceExportIsRefusedByName() {
        XCTAssertThrowsError(try GGUFTokenizerExport.files(metadata: Self.metadata, file: "gemma4.gguf")) { error in
            XCTAssertTrue("\(error)".contains("gemma4 is read but not exported"), "\(error)")
        }
    }

    func testSpacesBecomeMarksMergesRunByRankAndStrangersFallBackToBytes() throws {
        let t = try tokenizer()
        // "ab▁ab" merges to ab, ▁ab; "\n\n" is a token and is taken whole; é is no token and no merge part: its bytes.
        XCTAssertEqual(t.encode("ab ab\n\né", addSpecial: false, parseSpecial: false), [8, 9, 10, 3, 4])
        // Three line feeds are not a token and have no merges: one symbol per character.
        XCTAssertEqual(t.encode("\n\n\n", addSpecial: false, parseSpecial: false), [11, 11, 11])
    }

    func testBOSIsAddedWhateverTheFileSaysAndDecodingUndoesTheMarks() throws {
        let t = try tokenizer()
        let ids = t.encode("ab ab\n\né", addSpecial: true, parseSpecial: false)
        XCTAssertEqual(ids.first, 2)
        XCTAssertEqual(t.decode(ids, skipSpecial: true), "ab ab\n\né")
    }
}
