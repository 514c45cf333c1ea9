import Checkpoints
import Foundation
import TestSupport
import Tokenization
import XCTest

/// The one pre-tokenizer table: every `tokenizer.ggml.pre` it lists loads from GGUF metadata and exports to Hugging Face
/// files that cut, add BOS and decode exactly as the GGUF vocabulary does.
final class PreTokenizerTableTests: XCTestCase {
    func testEveryRowLoadsAndExportsTheSameTokenizer() throws {
        let merges = ["1 2", "12 3", "3 4", "34 5", "Ġ 1", "Ġ a", "Ġa b", "! !", "Ġ !", "a b", "` !", "Ċ Ċ", "Ġ Ġ"]
        var tokens = GGUFTokenizerExportTests.byteLevelAlphabet()
        for m in merges {
            let parts = m.split(separator: " ").map(String.init)
            if !tokens.contains(parts[0] + parts[1]) { tokens.append(parts[0] + parts[1]) }
        }
        tokens.append("<|endoftext|>")
        let texts = ["12345 ab!!? 2345", "  12 ab\n\n\nab !!", "a`! 123456789 y", "a'sb 'll 12.345,6 , ."]
        var names = Set<String>()
        for row in GGUFPreTokenizer.all {
            XCTAssertFalse(row.rules.isEmpty)
            for pre in row.names {
                XCTAssertTrue(names.insert(pre).inserted, "\(pre) is listed twice")
                XCTAssertEqual(PreTokenizer.forGGUF(pre: pre)?.rules, row.rules)
                let md: [String: GGUFValue] = [
                    "tokenizer.ggml.model": .string("gpt2"), "tokenizer.ggml.pre": .string(pre),
                    "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }),
                    "tokenizer.ggml.merges": .array(merges.map { .string($0) }),
                    "tokenizer.ggml.bos_token_id": .uint32(UInt32(tokens.count - 1)),
                ]
                let files = try GGUFTokenizerExport.files(metadata: md, file: "\(pre).gguf")
                let config = try XCTUnwrap(JSONValue.parse(Data(try XCTUnwrap(files["tokenizer_config.json"]).utf8)).objectValue)
                XCTAssertEqual(config["clean_up_tokenization_spaces"], .bool(!row.keepsSpaces), pre)
                let dir = Fixtures.temporaryFolder("pre-tokenizer-table")
                defer { try? FileManager.default.removeItem(at: dir) }
                for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: false, encoding: .utf8) }
                let json = try TokenizerLoader.load(path: dir.path)
                let gguf = try TokenizerLoader.load(ggufMetadata: md, file: "\(pre).gguf")
                XCTAssertEqual(gguf.addsBOS, row.addsBOS, pre)
                XCTAssertEqual(json.addsBOS, gguf.addsBOS, pre)
                for text in texts {
                    let ids = gguf.encode(text, addSpecial: true, parseSpecial: false)
                    XCTAssertEqual(json.encode(text, addSpecial: true, parseSpecial: false), ids, "\(pre): \(text.debugDescription)")
                    XCTAssertEqual(json.decode(ids), gguf.decode(ids), "\(pre): \(text.debugDescription)")
                }
            }
        }
    }
}
