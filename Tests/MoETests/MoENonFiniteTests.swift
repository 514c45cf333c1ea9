import Foundation
import MoE
import Planner
import Recipes
import TestSupport
import XCTest

/// Issue 9, defect 9 for MoE builds: an expert tensor copied byte for byte is checked for NaN like every other.
final class MoENonFiniteTests: XCTestCase {
    func testNaNInACopiedExpertTensorFailsTheBuild() throws {
        let work = Fixtures.temporaryFolder("moe-nan")
        defer { try? FileManager.default.removeItem(at: work) }
        let expert = try HostileModels.copy("llama-ft1", to: work, as: "nan-expert")
        try HostileModels.setElement(expert, "model.layers.0.mlp.up_proj.weight", 3, .nan)
        let recipe = work.appendingPathComponent("moe.yml").path
        try """
        base_model: \(Fixtures.fixture("models/llama-base"))
        gate_mode: random
        experts:
          - source_model: \(expert)
          - source_model: \(Fixtures.fixture("models/llama-ft2"))
        """.write(toFile: recipe, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try buildMoE(recipe: recipe, workingDirectory: work.path, label: "moe-nan")) { error in
            XCTAssertTrue("\(error)".contains("NaN or infinite"), "\(error)")
        }
    }
}
