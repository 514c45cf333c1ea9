import Foundation
import TestSupport
import XCTest

final class MoECommandTests: XCTestCase {
    func testDryRunPrintsThePlanAndWritesNothing() throws {
        let out = Fixtures.temporaryFolder("cli-moe").appendingPathComponent("never").path
        let r = try CLI.run(["moe", "moe/moe-hidden/recipe.yaml", "--out", out, "--dry-run"], cwd: Fixtures.fixture(""))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("Plan: Mixtral MoE of 4 expert(s), 2 per token, 4 layers"), r.stdout)
        XCTAssertTrue(r.stdout.contains("model.layers.3.block_sparse_moe.gate.weight [4, 32] F32 <- router"), r.stdout)
        XCTAssertTrue(r.stdout.contains("peak memory (estimate)"), r.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testBuildReportsAndWarnsAboutDegenerateGates() throws {
        let out = Fixtures.temporaryFolder("cli-moe").appendingPathComponent("moe").path
        let r = try CLI.run(["moe", "moe/moe-hidden-negative/recipe.yaml", "--out", out, "--fused-experts"], cwd: Fixtures.fixture(""))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("built a Mixtral MoE of 2 experts"), r.stderr)
        // Expert 0's positive and negative prompts end in the same token: a zero row in layer 0.
        XCTAssertTrue(r.stderr.contains("warning: layer 0: the router rows are nearly degenerate"), r.stderr)
        XCTAssertTrue(r.stderr.contains("zero rows for expert 0 (models/llama-ft1)"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/mergekit_moe_config.yml"))
    }

    func testBadRecipeFailsAtItsLineWithNoOutput() throws {
        let dir = Fixtures.temporaryFolder("cli-moe").path
        try "base_model: a\nexperts_per_token: 3\nexperts:\n  - source_model: b\n    positive_prompts: [x]\n"
            .write(toFile: dir + "/r.yml", atomically: true, encoding: .utf8)
        let r = try CLI.run(["moe", dir + "/r.yml", "--out", dir + "/out"], cwd: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("r.yml:2:20: error:"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out"))
    }
}
