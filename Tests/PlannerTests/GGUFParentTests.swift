import Checkpoints
import Foundation
import Planner
import Recipes
import TestSupport
import XCTest

/// A GGUF file is a merge parent like any checkpoint folder (mergekit cannot read GGUF).
final class GGUFParentTests: XCTestCase {
    func testLinearMergeOfAGGUFParentEqualsTheSafetensorsMerge() throws {
        try Fixtures.requireShared()
        let dir = Fixtures.temporaryFolder("gguf-parent")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (bytes, _) = try GGUFConversion.convert(folder: Fixtures.fixture("models/llama-base"), arch: "llama")
        let gguf = try GGUFBytes.write(bytes, to: dir, name: "llama-base.gguf")
        let recipe = { (first: String) in writeRecipe("""
            merge_method: linear
            models:
              - model: \(first)
                parameters: {weight: 0.3}
              - model: \(Fixtures.fixture("models/llama-ft1"))
                parameters: {weight: 0.7}
            dtype: float32
            """) }
        let (plan, fromGGUF) = try runRecipe(recipe(gguf))
        let (_, fromFolder) = try runRecipe(recipe(Fixtures.fixture("models/llama-base")))
        XCTAssertEqual(plan.models[0].architecture.name, "llama")
        XCTAssertTrue(plan.warnings.contains { $0.contains("no tokenizer files are copied") }, "\(plan.warnings)")
        let a = try loadTensors(fromGGUF + "/model.safetensors"), b = try loadTensors(fromFolder + "/model.safetensors")
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        for (name, t) in b {
            XCTAssertEqual(a[name]!.values, t.values, "\(name): the GGUF parent (Q/K un-permuted) gives the same merge")
        }
    }
}
