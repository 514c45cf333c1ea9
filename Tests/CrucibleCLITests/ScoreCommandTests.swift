import Checkpoints
import Foundation
import TestSupport
import XCTest

/// `crucible score` and `crucible run` as whole processes.
final class ScoreCommandTests: XCTestCase {
    private func keeper(in dir: URL) throws -> String {
        let path = dir.appendingPathComponent("keeper.txt").path
        try "The keeper climbed the ninety-two steps at 7:45 pm, and the light burned until dawn.\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The merged fixture copied into `dir/name` with `recipe` as its recorded mergekit_config.yml.
    private func mergedFolder(in dir: URL, recipe: String, name: String = "merged") throws -> String {
        let out = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let source = Fixtures.fixture("merges/linear-normalized/output")
        for file in try FileManager.default.contentsOfDirectory(atPath: source) {
            try FileManager.default.copyItem(atPath: source + "/" + file, toPath: out.appendingPathComponent(file).path)
        }
        try recipe.write(to: out.appendingPathComponent("mergekit_config.yml"), atomically: true, encoding: .utf8)
        return out.path
    }

    func testJSONCarriesPPLOnEveryModelEntryWithParentsFromTheRecordedRecipe() throws {
        let dir = Fixtures.temporaryFolder("score-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipe = try String(contentsOfFile: Fixtures.fixture("merges/linear-normalized/recipe.yaml"), encoding: .utf8)
        let merged = try mergedFolder(in: dir, recipe: recipe)
        // The recipe's references (models/llama-ft1 …) are relative to the fixtures folder: the working directory.
        let r = try CLI.run(["score", merged, "--eval", try keeper(in: dir), "--ctx", "39", "--json"], cwd: Fixtures.fixture(""))
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONValue.parse(Data(r.stdout.utf8))
        XCTAssertEqual(json["schema"]?.stringValue, "crucible.score/1")
        let entries = try XCTUnwrap(json["texts"]?.arrayValue?.first?["models"]?.arrayValue)
        XCTAssertEqual(entries.map { $0["name"]?.stringValue }, ["merged", "llama-ft1", "llama-ft2", "llama-ft3"])
        for entry in entries { XCTAssertNotNil(entry["ppl"]?.doubleValue, "\(entry)") }
        XCTAssertEqual(json["texts"]?.arrayValue?.first?["comparisons"]?.arrayValue?.count, 3)
        // Progress goes to stderr, one line per window off a terminal.
        XCTAssertTrue(r.stderr.contains("score: window 1/1 keeper.txt"), r.stderr)
    }

    func testAMissingParentFailsNamingTheReferenceAndWhereItLooked() throws {
        let dir = Fixtures.temporaryFolder("score-cli-missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let merged = try mergedFolder(in: dir, recipe: "merge_method: linear\nmodels:\n  - model: models/llama-ft1\n  - model: models/llama-ft9\n")
        let r = try CLI.run(["score", merged, "--eval", try keeper(in: dir), "--ctx", "39"], cwd: Fixtures.fixture(""))
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("models/llama-ft9"), r.stderr)
        XCTAssertTrue(r.stderr.contains("mergekit_config.yml:4"), r.stderr)
        XCTAssertTrue(r.stderr.contains(merged + "/models/llama-ft9"), r.stderr)
        XCTAssertTrue(r.stdout.isEmpty, "nothing is printed as a result")
    }

    func testRunMergesTheRecipeThenScoresItAgainstItsParents() throws {
        let dir = Fixtures.temporaryFolder("run-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("slerp").path
        let r = try CLI.run(["run", Fixtures.fixture("merges/slerp-scalar/recipe.yaml"), "--out", out, "--eval", try keeper(in: dir),
                             "--ctx", "39", "--json", "--report", dir.appendingPathComponent("report").path], cwd: Fixtures.fixture(""))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("report/report.html").path))
        let json = try JSONValue.parse(Data(r.stdout.utf8))
        XCTAssertEqual(json["models"]?.arrayValue?.map { $0["name"]?.stringValue }, ["slerp", "llama-ft1", "llama-ft2"])
        for stage in ["run plan:", "run merge:", "run score:"] { XCTAssertTrue(r.stderr.contains(stage), r.stderr) }
    }

    func testRunBuildsAMixtureOfExpertsAndScoresItAgainstItsBaseAndExperts() throws {
        let dir = Fixtures.temporaryFolder("run-cli-moe")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("moe").path
        let r = try CLI.run(["run", Fixtures.fixture("moe/moe-cheap-embed/recipe.yaml"), "--out", out, "--eval", try keeper(in: dir),
                             "--ctx", "39", "--json"], cwd: Fixtures.fixture(""))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/mergekit_moe_config.yml"))
        let json = try JSONValue.parse(Data(r.stdout.utf8))
        XCTAssertEqual(json["models"]?.arrayValue?.map { $0["name"]?.stringValue },
                       ["moe", "llama-base", "llama-ft1", "llama-ft2", "llama-ft3"])
        XCTAssertEqual(json["models"]?.arrayValue?.first?["role"]?.stringValue, "merge")
        for stage in ["run plan:", "run merge:", "run score:"] { XCTAssertTrue(r.stderr.contains(stage), r.stderr) }

        // `crucible score` on the built folder finds the same models in its mergekit_moe_config.yml.
        let score = try CLI.run(["score", out, "--eval", try keeper(in: dir), "--ctx", "39", "--json"], cwd: Fixtures.fixture(""))
        XCTAssertEqual(score.status, 0, score.stderr)
        XCTAssertEqual(try JSONValue.parse(Data(score.stdout.utf8))["models"]?.arrayValue?.count, 5)
    }
}
