import Foundation
import TestSupport
import XCTest

final class MergeCommandTests: XCTestCase {
    func testMergeWritesACompleteCheckpoint() throws {
        let out = Fixtures.temporaryFolder("cli").appendingPathComponent("merged").path
        let r = try CLI.run(["merge", "merges/ties/recipe.yaml", "--out", out], cwd: Fixtures.fixture(""))
        XCTAssertEqual(r.status, 0, r.stderr)
        for f in ["model.safetensors", "config.json", "README.md", "mergekit_config.yml", "tokenizer.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + f), f)
        }
        XCTAssertTrue(r.stderr.contains("merged 39 tensors"), r.stderr)
    }

    func testDryRunPrintsThePlanAndWritesNothing() throws {
        let out = Fixtures.temporaryFolder("cli").appendingPathComponent("never").path
        let r = try CLI.run(["merge", "merges/dare-ties/recipe.yaml", "--out", out, "--dry-run", "--seed", "5"], cwd: Fixtures.fixture(""))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("model.layers.3.mlp.down_proj.weight [32, 96] F32 <- dare_ties"), r.stdout)
        XCTAssertTrue(r.stdout.contains("seed: 5"))
        XCTAssertTrue(r.stdout.contains("density: 0.5"))
        XCTAssertTrue(r.stdout.contains("peak memory (estimate)"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testBadRecipeFailsWithItsLocationAndNoOutput() throws {
        let dir = Fixtures.temporaryFolder("cli").path
        try "merge_method: linear\nmodels:\n  - model: nowhere/to-be-found\n    parameters: {weight: 1}\n"
            .write(toFile: dir + "/r.yml", atomically: true, encoding: .utf8)
        let r = try CLI.run(["merge", dir + "/r.yml", "--out", dir + "/out"], cwd: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("r.yml:3:") && r.stderr.contains("nowhere/to-be-found"), r.stderr)
        XCTAssertTrue(r.stderr.contains("huggingface-cli download"), r.stderr)
        XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out"))
    }

    func testSynthMakesParentsThatMerge() throws {
        let dir = Fixtures.temporaryFolder("cli").path
        XCTAssertEqual(try CLI.run(["synth", "--preset", "tiny", "--seed", "1", "--out", dir + "/base"]).status, 0)
        XCTAssertEqual(try CLI.run(["synth", "--finetune-of", dir + "/base", "--seed", "2", "--out", dir + "/ft"]).status, 0)
        try "merge_method: slerp\nbase_model: base\nmodels: [{model: base}, {model: ft}]\nparameters: {t: 0.3}\n"
            .write(toFile: dir + "/r.yml", atomically: true, encoding: .utf8)
        let r = try CLI.run(["merge", "r.yml", "--out", "out", "--quiet"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/out/model.safetensors"))
    }
}
