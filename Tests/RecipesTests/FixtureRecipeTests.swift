import Recipes
import TestSupport
import XCTest

/// The shared mergekit fixture recipes parse into the fields they spell out.
final class FixtureRecipeTests: XCTestCase {
    private func fixtureRecipe(_ name: String) throws -> MergeRecipe {
        return try RecipeParser.parse(file: Fixtures.fixture("merges/\(name)/recipe.yaml"))
    }

    func testEveryFixtureRecipeParsesWithoutWarningsAndItsModelsResolve() throws {
        let folder = Fixtures.fixture("merges")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter {
            FileManager.default.fileExists(atPath: "\(folder)/\($0)/recipe.yaml")
        }.sorted()
        XCTAssertGreaterThanOrEqual(names.count, 20)
        for name in names {
            let recipe = try RecipeParser.parse(file: "\(folder)/\(name)/recipe.yaml")
            XCTAssertFalse(recipe.mergeMethod.isEmpty, name)
            XCTAssertTrue((recipe.models == nil) != (recipe.slices == nil), name)
            XCTAssertEqual(recipe.warnings, [], name)
            XCTAssertTrue(recipe.text.contains("merge_method: \(recipe.mergeMethod)"), name)
            // The fixtures name models relative to the fixtures folder (mergekit resolves against the working directory).
            let resolver = ModelResolver(recipe: recipe, workingDirectory: Fixtures.fixture(""), environment: [:])
            for ref in recipe.referencedModels {
                let path = try resolver.resolve(ref)
                XCTAssertTrue(FileManager.default.fileExists(atPath: path + "/config.json"), "\(name): \(ref) → \(path)")
            }
        }
    }

    func testTiesRecipeHasBasePerModelParametersAndAppendedBase() throws {
        let recipe = try fixtureRecipe("ties")
        XCTAssertEqual(recipe.mergeMethod, "ties")
        XCTAssertEqual(recipe.mergeMethodLocation.line, 1)
        XCTAssertEqual(recipe.mergeMethodLocation.column, 15)
        XCTAssertEqual(recipe.baseModel?.raw, "models/llama-base")
        XCTAssertEqual(recipe.baseModel?.location.line, 2)
        XCTAssertEqual(recipe.dtype, .f32)
        XCTAssertNil(recipe.outDType)
        let models = try XCTUnwrap(recipe.models)
        // Three listed fine-tunes plus the base, appended as mergekit does, without parameters.
        XCTAssertEqual(models.map(\.model.raw), ["models/llama-ft1", "models/llama-ft2", "models/llama-ft3", "models/llama-base"])
        XCTAssertEqual(models[3].parameters, [:])
        XCTAssertEqual(number(models[0].parameters["density"]?.setting), 0.5)
        XCTAssertEqual(number(models[1].parameters["weight"]?.setting), 0.6)
        XCTAssertEqual(number(models[2].parameters["density"]?.setting), 0.3)
        XCTAssertEqual(models[2].parameters["weight"]?.location.line, 9)
        XCTAssertEqual(recipe.keyLocations["models"], SourceLocation(file: recipe.file, line: 3, column: 1))
        XCTAssertEqual(recipe.keyLocations["dtype"]?.line, 10)
        XCTAssertEqual(recipe.referencedModels.first?.raw, "models/llama-base")
    }

    func testModelStockListsTheBaseOnceBecauseItIsAlreadyAmongModels() throws {
        let recipe = try fixtureRecipe("model-stock")
        XCTAssertEqual(recipe.mergeMethod, "model_stock")
        XCTAssertEqual(recipe.models?.map(\.model.raw), ["models/llama-base", "models/llama-ft1", "models/llama-ft2", "models/llama-ft3"])
    }

    func testKarcherHasNoBaseAndFlowStyleModels() throws {
        let recipe = try fixtureRecipe("karcher")
        XCTAssertNil(recipe.baseModel)
        XCTAssertEqual(recipe.models?.count, 3)
        XCTAssertEqual(recipe.models?.allSatisfy { $0.parameters.isEmpty }, true)
    }

    func testPassthroughFrankenmergeSlicesKeepTheirLayerRanges() throws {
        let recipe = try fixtureRecipe("passthrough-frankenmerge")
        XCTAssertEqual(recipe.mergeMethod, "passthrough")
        XCTAssertNil(recipe.models)
        let slices = try XCTUnwrap(recipe.slices)
        XCTAssertEqual(slices.count, 2)
        XCTAssertEqual(slices.map { $0.sources[0].layerRange }, [0..<3, 1..<4])
        XCTAssertEqual(slices[1].sources[0].layerRangeLocation?.line, 8)
        XCTAssertEqual(slices[1].sources[0].layerRangeLocation?.column, 18)
        XCTAssertEqual(recipe.normalizedSlices.count, 2)
    }

    func testInterleaveRecipeAlternatesParents() throws {
        let slices = try XCTUnwrap(try fixtureRecipe("interleave-two-parents").slices)
        XCTAssertEqual(slices.map { $0.sources[0].model.raw }, ["models/llama-ft1", "models/llama-ft2", "models/llama-ft1", "models/llama-ft2"])
        XCTAssertEqual(slices.map { $0.sources[0].layerRange }, [0..<1, 1..<2, 2..<3, 3..<4])
    }

    func testSlerpGradientFiltersRecipeEvaluatesPerModuleCurves() throws {
        let recipe = try fixtureRecipe("slerp-gradient-filters")
        XCTAssertEqual(recipe.baseModel?.raw, "models/llama-ft1")
        let slice = try XCTUnwrap(recipe.slices?.first)
        XCTAssertEqual(slice.sources.map(\.layerRange), [0..<4, 0..<4])
        let t = try XCTUnwrap(recipe.parameters["t"])
        guard case .conditional(let entries) = t.setting else { return XCTFail("expected a conditional list, got \(t.setting)") }
        XCTAssertEqual(entries.map(\.filter), ["self_attn", "mlp", nil])
        XCTAssertEqual(entries[0].value, .gradient([0.0, 0.5, 0.3, 0.7, 1.0]))
        // Layer 1 of 4: t = 1/3, s = 4/3, i0 = 1, f = 1/3 → (2/3)·0.5 + (1/3)·0.3.
        let position = ParameterSetting.layerPosition(index: 1, count: 4)
        XCTAssertEqual(number(t.setting, "model.layers.1.self_attn.q_proj.weight", t: position) ?? .nan, 2.0 / 3 * 0.5 + 0.3 / 3, accuracy: 1e-12)
        XCTAssertEqual(number(t.setting, "model.layers.1.mlp.down_proj.weight", t: position) ?? .nan, 2.0 / 3 * 0.5 + 0.7 / 3, accuracy: 1e-12)
        XCTAssertEqual(number(t.setting, "model.layers.1.input_layernorm.weight", t: position), 0.5)
        XCTAssertEqual(number(t.setting, "model.embed_tokens.weight", t: ParameterSetting.nonLayerPosition), 0.5)
    }

    func testTiesGradientRecipeReadsGradientsAndGlobalKnobs() throws {
        let recipe = try fixtureRecipe("ties-gradient-density-lambda")
        let models = try XCTUnwrap(recipe.models)
        XCTAssertEqual(models[0].parameters["density"]?.setting, .gradient([0.2, 0.8]))
        XCTAssertEqual(models[1].parameters["density"]?.setting, .gradient([0.8, 0.2]))
        XCTAssertEqual(recipe.parameters["normalize"]?.setting, .scalar(.bool(false)))
        XCTAssertEqual(recipe.parameters["lambda"]?.setting, .scalar(.number(0.8)))
        XCTAssertEqual(recipe.parameters["int8_mask"]?.setting, .scalar(.bool(true)))
    }

    func testMixedDtypeRecipeHasOutDTypeOnly() throws {
        let recipe = try fixtureRecipe("linear-mixed-dtype-bf16-out")
        XCTAssertNil(recipe.dtype)
        XCTAssertEqual(recipe.outDType, .bf16)
        XCTAssertEqual(recipe.models?.first?.model.raw, "models/llama-base-bf16")
    }

    func testNormalizedSlicesTurnModelsIntoOneWholeDepthSlice() throws {
        let recipe = try fixtureRecipe("linear-normalized")
        let slices = recipe.normalizedSlices
        XCTAssertEqual(slices.count, 1)
        XCTAssertEqual(slices[0].sources.map(\.model.raw), ["models/llama-ft1", "models/llama-ft2", "models/llama-ft3"])
        XCTAssertEqual(slices[0].sources.map(\.layerRange), [nil, nil, nil])
        XCTAssertEqual(number(slices[0].sources[0].parameters["weight"]?.setting), 2.0)
        XCTAssertEqual(recipe.parameters["normalize"]?.setting, .scalar(.bool(true)))
    }
}
