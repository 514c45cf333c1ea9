import Checkpoints
import Foundation
import TestSupport
import XCTest

final class TokenizeCommandTests: XCTestCase {
    /// `crucible tokenize` prints what the tokenizer's golden vectors say, with and without BOS.
    func testTokenizePrintsTheGoldenIDs() throws {
        guard case let .array(entries) = try JSONValue.parse(file: Fixtures.fixture("tokenizer/golden.json")) else { return XCTFail() }
        let model = Fixtures.fixture("models/llama-base")
        for entry in entries.prefix(6) {
            guard let text = entry["text"]?.stringValue, !text.isEmpty else { continue }
            let expected = entry["ids_with_special"]!.arrayValue!.compactMap(\.intValue)
            let r = try CLI.run(["tokenize", model, "--text", text, "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let ids = try JSONValue.parse(Data(r.stdout.utf8))["ids"]?.arrayValue?.compactMap(\.intValue)
            XCTAssertEqual(ids, expected, text)
            let plain = try CLI.run(["tokenize", model, "--text", text, "--json", "--no-add-special"])
            let noBOS = try JSONValue.parse(Data(plain.stdout.utf8))["ids"]?.arrayValue?.compactMap(\.intValue)
            XCTAssertEqual(noBOS, entry["ids"]!.arrayValue!.compactMap(\.intValue), text)
        }
    }

    func testTokenizeReportsAMissingModelClearly() throws {
        let r = try CLI.run(["tokenize", "/nonexistent/model", "--text", "hi"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("/nonexistent/model"), r.stderr)
    }
}
