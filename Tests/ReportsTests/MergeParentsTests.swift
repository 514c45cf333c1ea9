import Foundation
import Recipes
import Reports
import TestSupport
import XCTest

/// Finding a merge's parents from the recipe recorded in its folder.
final class MergeParentsTests: XCTestCase {
    private func folder(recipe: String?, file: String = MergeParents.recipeFileName) throws -> URL {
        let dir = Fixtures.temporaryFolder("merge-parents")
        if let recipe { try recipe.write(to: dir.appendingPathComponent(file), atomically: true, encoding: .utf8) }
        return dir
    }

    func testEveryMergedModelIsAParentAndATokenizerDonorAloneIsNot() throws {
        let dir = try folder(recipe: """
            merge_method: passthrough
            slices:
              - sources:
                  - model: a
                    layer_range: [0, 2]
              - sources:
                  - model: b
                    layer_range: [2, 4]
              - sources:
                  - model: a
                    layer_range: [4, 6]
            tokenizer_source: c
            """)
        defer { try? FileManager.default.removeItem(at: dir) }
        let recorded = try MergeParents.parentReferences(inMergedFolder: dir.path)
        XCTAssertEqual(recorded.references.map(\.raw), ["a", "b"])
        XCTAssertTrue(recorded.recipeFile.hasSuffix("mergekit_config.yml"))
    }

    func testBaseModelComesFirstAndRepeatsAreDropped() throws {
        let recipe = try RecipeParser.parse(text: """
            merge_method: ties
            base_model: base
            models:
              - model: ft1
              - model: base
              - model: ft2
            """, file: "r.yml")
        XCTAssertEqual(MergeParents.references(of: recipe).map(\.raw), ["base", "ft1", "ft2"])
    }

    func testParentsResolveBesideTheMergeThenInTheWorkingDirectory() throws {
        let dir = try folder(recipe: try String(contentsOfFile: Fixtures.fixture("merges/slerp-scalar/recipe.yaml"), encoding: .utf8))
        defer { try? FileManager.default.removeItem(at: dir) }
        let paths = try MergeParents.resolveParents(inMergedFolder: dir.path, workingDirectory: Fixtures.fixture(""), environment: [:])
        XCTAssertEqual(paths, [Fixtures.fixture("models/llama-ft1"), Fixtures.fixture("models/llama-ft2")].map {
            URL(fileURLWithPath: $0).standardizedFileURL.path
        })
    }

    func testAMissingParentIsNamedWithTheRecipeLineAndEveryPlaceLooked() throws {
        let dir = try folder(recipe: "merge_method: linear\nmodels:\n  - model: parents/nowhere\n    parameters: {weight: 1}\n")
        defer { try? FileManager.default.removeItem(at: dir) }
        let work = Fixtures.temporaryFolder("merge-parents-cwd")
        defer { try? FileManager.default.removeItem(at: work) }
        XCTAssertThrowsError(try MergeParents.resolveParents(inMergedFolder: dir.path, workingDirectory: work.path,
                                                             environment: ["HF_HUB_CACHE": work.path + "/hub"])) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("parents/nowhere"), message)
            XCTAssertTrue(message.contains("mergekit_config.yml:3"), message)
            XCTAssertTrue(message.contains(dir.appendingPathComponent("parents/nowhere").path), message)
            XCTAssertTrue(message.contains(work.appendingPathComponent("parents/nowhere").path), message)
            XCTAssertTrue(message.contains(work.path + "/hub"), message)
        }
    }

    func testAMixtureOfExpertsOutputsParentsAreItsBaseAndExperts() throws {
        let dir = try folder(recipe: """
            base_model: org/base
            gate_mode: random
            shared_experts:
              - source_model: org/shared
            experts:
              - source_model: org/a
              - source_model: org/base
            """, file: MergeParents.moeRecipeFileName)
        defer { try? FileManager.default.removeItem(at: dir) }
        let recorded = try MergeParents.parentReferences(inMergedFolder: dir.path)
        XCTAssertEqual(recorded.references.map(\.raw), ["org/base", "org/a", "org/shared"])
        XCTAssertEqual(recorded.recipeFile, dir.appendingPathComponent("mergekit_moe_config.yml").path)
        XCTAssertTrue(MergeParents.isMoERecipe(atPath: dir.appendingPathComponent("mergekit_moe_config.yml").path))
    }

    func testAFolderWithoutARecipeAsksForParents() throws {
        let dir = try folder(recipe: nil)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try MergeParents.parentReferences(inMergedFolder: dir.path)) { error in
            XCTAssertEqual(error as? ScoreError, .noRecipe(folder: dir.path))
        }
    }
}
