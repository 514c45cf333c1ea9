import Checkpoints
import Foundation
import TestSupport
import XCTest

final class InspectCompareCommandTests: XCTestCase {
    func testInspectPrintsTextAndJSON() throws {
        let model = Fixtures.fixture("models/llama-base")
        let text = try CLI.run(["inspect", model])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("Parameters: 82,208"), text.stdout)
        let json = try CLI.run(["inspect", model, "--json", "--tensors"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try JSONValue.parse(Data(json.stdout.utf8))
        XCTAssertEqual(object["parameters"]?.intValue, 82_208)
        XCTAssertEqual(object["tensors"]?.arrayValue?.count, 39)
    }

    func testCompareWritesTheHeatmapAndJSON() throws {
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let svg = folder.appendingPathComponent("heatmap.svg").path
        let r = try CLI.run(["compare", Fixtures.fixture("models/llama-ft1"), Fixtures.fixture("models/llama-ft2"),
                             "--base", Fixtures.fixture("models/llama-base"), "--json", "--svg", svg, "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONValue.parse(Data(r.stdout.utf8))
        XCTAssertEqual(object["mode"]?.stringValue, "task_vectors")
        XCTAssertEqual(object["layers"]?.arrayValue?.count, 4)
        let written = try String(contentsOfFile: svg, encoding: .utf8)
        XCTAssertTrue(written.hasPrefix("<?xml") && written.contains("<svg"), String(written.prefix(200)))
    }

    func testErrorsNameTheModelAndExitNonZero() throws {
        let inspect = try CLI.run(["inspect", "/nonexistent/model.gguf"])
        XCTAssertNotEqual(inspect.status, 0)
        XCTAssertTrue(inspect.stderr.contains("/nonexistent/model.gguf"), inspect.stderr)
        let compare = try CLI.run(["compare", Fixtures.fixture("models/llama-base"), Fixtures.fixture("models/llama-tied")])
        XCTAssertNotEqual(compare.status, 0)
        XCTAssertTrue(compare.stderr.contains("llama-tied") && compare.stderr.contains("layers"), compare.stderr)
    }
}
