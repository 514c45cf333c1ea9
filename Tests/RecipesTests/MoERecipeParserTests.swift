import Recipes
import TestSupport
import XCTest

final class MoERecipeParserTests: XCTestCase {
    func testFixtureRecipesParseWithMergekitDefaults() throws {
        let hidden = try MoERecipeParser.parse(file: Fixtures.fixture("moe/moe-hidden-negative/recipe.yaml"))
        XCTAssertEqual(hidden.baseModel.raw, "models/llama-base")
        XCTAssertEqual(hidden.gateMode, .hidden)
        XCTAssertEqual(hidden.dtype, .f32)
        XCTAssertEqual(hidden.expertsPerToken, 2)
        XCTAssertEqual(hidden.experts.map(\.sourceModel.raw), ["models/llama-ft1", "models/llama-ft2"])
        XCTAssertEqual(hidden.experts[0].positivePrompts, ["Learning a new skill takes patience."])
        XCTAssertEqual(hidden.experts[0].negativePrompts, ["The result is 55."])
        XCTAssertTrue(hidden.sharedExperts.isEmpty)
        XCTAssertTrue(MoERecipeParser.isMoERecipe(text: hidden.text))

        let shared = try MoERecipeParser.parse(file: Fixtures.fixture("archs/moe/qwen2moe-shared/recipe.yaml"))
        XCTAssertEqual(shared.sharedExperts.map(\.sourceModel.raw), ["models/qwen2-base"])
        XCTAssertEqual(shared.expertsPerToken, 1)
        XCTAssertEqual(shared.referencedModels.map(\.raw), ["models/qwen2-base", "models/qwen2-ft1", "models/qwen2-ft2"])
        XCTAssertFalse(MoERecipeParser.isMoERecipe(text: try String(contentsOfFile: Fixtures.fixture("merges/ties/recipe.yaml"), encoding: .utf8)))
    }

    func testOptionalFieldsAndWarnings() throws {
        let recipe = try MoERecipeParser.parse(text: """
        base_model: {model: org/base}
        gate_mode: hidden_last
        dtype: bfloat16
        architecture: Qwen
        random_seed: 9
        experts:
          - source_model: org/a
            positive_prompts: ["one", "two"]
            noise_scale: 0.01
            residual_scale: 0.5
            extra_key: 1
          - source_model: org/b
            positive_prompts: ["three"]
        shared_experts:
          - source_model: org/c
            positive_prompts: ["four"]
        expert_per_token: 2
        """, file: "m.yaml")
        XCTAssertEqual(recipe.gateMode, .hidden, "mergekit's hidden_last is hidden")
        XCTAssertEqual(recipe.dtype, .bf16)
        XCTAssertEqual(recipe.architecture, "Qwen")
        XCTAssertEqual(recipe.randomSeed, 9)
        XCTAssertEqual(recipe.experts[0].noiseScale, 0.01)
        XCTAssertEqual(recipe.experts[0].residualScale, 0.5)
        XCTAssertEqual(recipe.experts[0].location, SourceLocation(file: "m.yaml", line: 7, column: 5))
        XCTAssertEqual(recipe.warnings.count, 2)
        XCTAssertTrue(recipe.warnings[0].description.hasPrefix("m.yaml:11:5: warning: unknown key `extra_key`"), recipe.warnings[0].description)
        XCTAssertTrue(recipe.warnings[1].description.contains("did you mean `experts_per_token`?"), recipe.warnings[1].description)
    }

    func testBadValuesAreLocated() {
        func error(_ text: String) -> RecipeError? {
            do { _ = try MoERecipeParser.parse(text: text, file: "m.yaml"); return nil } catch { return error as? RecipeError }
        }
        let negative = error("base_model: a\nexperts:\n  - source_model: b\n    noise_scale: -1\n    positive_prompts: [x]\n")
        XCTAssertEqual(negative?.location, SourceLocation(file: "m.yaml", line: 4, column: 18))
        let prompt = error("base_model: a\nexperts:\n  - source_model: b\n    positive_prompts: [[x]]\n")
        XCTAssertEqual(prompt?.location, SourceLocation(file: "m.yaml", line: 4, column: 24))
        let noBase = error("experts:\n  - source_model: b\n")
        XCTAssertTrue(noBase?.description.contains("has no `base_model` key") ?? false, "\(String(describing: noBase))")
        let zero = error("base_model: a\nexperts_per_token: 0\nexperts:\n  - source_model: b\n")
        XCTAssertEqual(zero?.location, SourceLocation(file: "m.yaml", line: 2, column: 20))
    }
}
