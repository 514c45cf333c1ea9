import Foundation
import TestSupport
import XCTest

/// `crucible evolve` as a whole process: the shipped example config, and a bad config's located error.
final class EvolveCommandTests: XCTestCase {
    func testExampleConfigWritesBestLogAndReport() throws {
        let dir = Fixtures.temporaryFolder("evolve-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = Fixtures.packageRoot.appendingPathComponent("examples/evolve-slerp.yml").path
        let out = dir.appendingPathComponent("out").path
        let r = try CLI.run(["evolve", config, "--out", out, "--budget", "6", "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("best: candidate"), r.stdout)
        XCTAssertTrue(r.stderr.contains("[   6/6]"), r.stderr)
        for file in ["best.yml", "evaluations.jsonl", "report.html"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + file), file)
        }
        let lines = try String(contentsOfFile: out + "/evaluations.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 6)
        // best.yml merges with `crucible merge`.
        let merged = dir.appendingPathComponent("merged").path
        let m = try CLI.run(["merge", out + "/best.yml", "--out", merged, "--quiet"])
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: merged + "/model.safetensors"))
        // Without --resume an existing log is refused; with it, the search goes on to a larger budget.
        let again = try CLI.run(["evolve", config, "--out", out, "--budget", "8"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("--resume"), again.stderr)
        let resumed = try CLI.run(["evolve", config, "--out", out, "--budget", "8", "--resume", "--threads", "2", "--no-final-scores"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("6 taken from the log"), resumed.stderr)
        XCTAssertEqual(try String(contentsOfFile: out + "/evaluations.jsonl", encoding: .utf8).split(separator: "\n").count, 8)
    }

    func testBadConfigNamesFileLineAndColumn() throws {
        let dir = Fixtures.temporaryFolder("evolve-cli-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("bad.yml").path
        try """
            merge_method: linear
            models:
              - model: \(Fixtures.fixture("models/llama-base"))
              - model: \(Fixtures.fixture("models/llama-ft1"))
            search:
              parameters:
                weight: {min: 1, max: 0.5}
            objective:
              texts:
                - path: \(config)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let r = try CLI.run(["evolve", config, "--out", dir.appendingPathComponent("out").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("\(config):7:27: error: `max`: must be above `min` (1.0), found 0.5"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
    }
}
