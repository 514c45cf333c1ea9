import Recipes
import XCTest

/// Parameter value forms and their evaluation, per mergekit-behaviour §1.3.
final class ParameterEvaluationTests: XCTestCase {
    private let location = SourceLocation(file: "test.yaml", line: 1, column: 1)

    func testGradientReproducesTheWorkedThirtyTwoLayerExample() {
        let weight = ParameterSetting.gradient([0, 0.3, 1])
        let t = ParameterSetting.layerPosition(index: 10, count: 32)
        XCTAssertEqual(t, 10.0 / 31, accuracy: 1e-15)
        XCTAssertEqual(number(weight, t: t) ?? .nan, 0.194, accuracy: 1e-3)
        // The exact value: s = 2·10/31, f = s → f·0.3.
        XCTAssertEqual(number(weight, t: t) ?? .nan, 20.0 / 31 * 0.3, accuracy: 1e-12)
        // Past the middle the second segment applies: layer 20 → s = 40/31, f = 9/31 → (22/31)·0.3 + (9/31)·1.
        XCTAssertEqual(number(weight, t: ParameterSetting.layerPosition(index: 20, count: 32)) ?? .nan, 22.0 / 31 * 0.3 + 9.0 / 31, accuracy: 1e-12)
    }

    func testGradientEndsAndSingleValue() {
        let g = ParameterSetting.gradient([0.2, 0.8, 0.4])
        XCTAssertEqual(number(g, t: 0), 0.2)
        XCTAssertEqual(number(g, t: 1), 0.4)
        XCTAssertEqual(number(g, t: 0.5), 0.8)
        XCTAssertEqual(number(g, t: 0.25) ?? .nan, 0.5, accuracy: 1e-12)
        XCTAssertEqual(number(.gradient([0.7]), t: 0), 0.7)
        XCTAssertEqual(number(.gradient([0.7]), t: 1), 0.7)
        // Out-of-range positions are clamped instead of indexing past the list.
        XCTAssertEqual(number(g, t: 1.5), 0.4)
        XCTAssertEqual(number(g, t: -0.5), 0.2)
    }

    func testLayerPositionIsSliceRelativeAndOneForASingleLayer() {
        XCTAssertEqual(ParameterSetting.layerPosition(index: 0, count: 4), 0)
        XCTAssertEqual(ParameterSetting.layerPosition(index: 3, count: 4), 1)
        XCTAssertEqual(ParameterSetting.layerPosition(index: 0, count: 1), 1)
        XCTAssertEqual(ParameterSetting.nonLayerPosition, 0)
    }

    func testStepListLooksUpByFloorWithoutInterpolating() {
        let steps = ParameterSetting.steps([.string("a"), .number(2), .string("c")])
        XCTAssertEqual(steps.evaluate(tensorName: "x", t: 0), .string("a"))
        XCTAssertEqual(steps.evaluate(tensorName: "x", t: 0.49), .string("a"))
        XCTAssertEqual(steps.evaluate(tensorName: "x", t: 0.5), .number(2))
        XCTAssertEqual(steps.evaluate(tensorName: "x", t: 0.99), .number(2))
        XCTAssertEqual(steps.evaluate(tensorName: "x", t: 1), .string("c"))
    }

    func testFirstMatchingFilterWinsAndFiltersArePlainSubstrings() {
        let setting = ParameterSetting.conditional([
            ConditionalSetting(filter: "self_attn", value: .scalar(.number(0.1)), location: location),
            ConditionalSetting(filter: "q_proj", value: .scalar(.number(0.2)), location: location),
            ConditionalSetting(filter: "layers.1.", value: .gradient([0, 1]), location: location),
            ConditionalSetting(filter: "mlp.*", value: .scalar(.number(0.4)), location: location),
        ])
        // Both self_attn and q_proj match: the first listed applies.
        XCTAssertEqual(number(setting, "model.layers.1.self_attn.q_proj.weight"), 0.1)
        XCTAssertEqual(number(setting, "model.layers.1.mlp.up_proj.weight", t: 0.25), 0.25)
        // `mlp.*` is not a glob: it matches nothing here, so this level yields nothing.
        XCTAssertNil(setting.evaluate(tensorName: "model.layers.2.mlp.up_proj.weight", t: 0))
        let withFallback = ParameterSetting.conditional([
            ConditionalSetting(filter: "mlp", value: .scalar(.number(0.4)), location: location),
            ConditionalSetting(filter: "*", value: .scalar(.number(0.9)), location: location),
            ConditionalSetting(filter: nil, value: .scalar(.number(0.7)), location: location),
        ])
        XCTAssertEqual(number(withFallback, "model.norm.weight"), 0.9)
    }

    func testPrecedenceTakesTheFirstLevelThatYieldsAValue() throws {
        let recipe = try parseRecipe("""
            merge_method: ties
            base_model: org/base
            slices:
              - sources:
                  - model: org/a
                    layer_range: [0, 4]
                    parameters:
                      density: [{filter: mlp, value: 0.1}]
                  - model: org/base
                    layer_range: [0, 4]
                parameters:
                  density: [{filter: self_attn, value: 0.2}]
            parameters:
              density: 0.3
              weight: 1.0
            """)
        let slice = try XCTUnwrap(recipe.slices?.first)
        let levels = [slice.sources[0].parameters, slice.parameters, recipe.parameters]
        func density(_ tensor: String) -> Double? {
            ParameterSetting.resolve("density", levels: levels, tensorName: tensor, t: 0)?.number
        }
        XCTAssertEqual(density("model.layers.0.mlp.gate_proj.weight"), 0.1)
        XCTAssertEqual(density("model.layers.0.self_attn.k_proj.weight"), 0.2)
        XCTAssertEqual(density("model.layers.0.input_layernorm.weight"), 0.3)
        XCTAssertEqual(ParameterSetting.resolve("weight", levels: levels, tensorName: "x", t: 0), .number(1))
        XCTAssertNil(ParameterSetting.resolve("gamma", levels: levels, tensorName: "x", t: 0))
        // Per-level tensor names: the source level matches its input name, the others the output name.
        let perLevel = [(settings: levels[0], tensorName: "model.layers.3.mlp.up_proj.weight"),
                        (settings: levels[1], tensorName: "model.layers.0.self_attn.q_proj.weight")]
        XCTAssertEqual(ParameterSetting.resolve("density", levels: perLevel, t: 0), .number(0.1))
    }

    func testScalarsFollowYamlTagResolution() throws {
        let recipe = try parseRecipe("""
            merge_method: linear
            models: [{model: org/a}]
            parameters:
              a: 1
              b: 0.5
              c: true
              d: "0.5"
              e: yes
              f: chatml
              g: 1e-3
              h: -2
            """)
        let p = recipe.parameters
        XCTAssertEqual(p["a"]?.setting, .scalar(.number(1)))
        XCTAssertEqual(p["b"]?.setting, .scalar(.number(0.5)))
        XCTAssertEqual(p["c"]?.setting, .scalar(.bool(true)))
        XCTAssertEqual(p["d"]?.setting, .scalar(.string("0.5")))   // quoted: text
        XCTAssertEqual(p["e"]?.setting, .scalar(.bool(true)))      // YAML 1.1 bool, as PyYAML reads it
        XCTAssertEqual(p["f"]?.setting, .scalar(.string("chatml")))
        XCTAssertEqual(p["g"]?.setting, .scalar(.number(0.001)))
        XCTAssertEqual(p["h"]?.setting, .scalar(.number(-2)))
        XCTAssertEqual(p["b"]?.location, SourceLocation(file: "test.yaml", line: 5, column: 6))
    }

    func testListsBecomeGradientsStepsOrConditions() throws {
        let recipe = try parseRecipe("""
            merge_method: slerp
            models: [{model: org/a}]
            parameters:
              t: [0, 0.5, 1]
              flags: [true, false]
              modes: [a, 1, b]
              c:
                - filter: mlp
                  value: [0.1, 0.9]
                - value: 0.5
            """)
        let p = recipe.parameters
        XCTAssertEqual(p["t"]?.setting, .gradient([0, 0.5, 1]))
        XCTAssertEqual(p["flags"]?.setting, .gradient([1, 0]))
        XCTAssertEqual(p["modes"]?.setting, .steps([.string("a"), .number(1), .string("b")]))
        guard case .conditional(let entries)? = p["c"]?.setting else { return XCTFail("expected conditions") }
        XCTAssertEqual(entries.map(\.filter), ["mlp", nil])
        XCTAssertEqual(entries[0].value, .gradient([0.1, 0.9]))
        XCTAssertEqual(entries[1].location.line, 10)
        XCTAssertEqual(number(p["c"]?.setting, "model.layers.0.mlp.up_proj.weight", t: 0.5) ?? .nan, 0.5, accuracy: 1e-12)
        XCTAssertEqual(number(p["c"]?.setting, "model.layers.0.mlp.up_proj.weight", t: 1), 0.9)
        XCTAssertEqual(number(p["c"]?.setting, "model.norm.weight", t: 1), 0.5)
        XCTAssertEqual(recipe.warnings, [])
    }

    func testLoneFilterMappingIsReadAsAOneEntryListWithAWarning() throws {
        let recipe = try parseRecipe("""
            merge_method: ties
            base_model: org/base
            models:
              - model: org/a
                parameters:
                  weight: 1
                  density: {filter: mlp, value: 0.4}
            """)
        let density = try XCTUnwrap(recipe.models?[0].parameters["density"])
        XCTAssertEqual(density.setting, .conditional([ConditionalSetting(filter: "mlp", value: .scalar(.number(0.4)),
                                                                        location: SourceLocation(file: "test.yaml", line: 7, column: 16))]))
        XCTAssertEqual(number(density.setting, "model.layers.0.mlp.up_proj.weight"), 0.4)
        XCTAssertNil(density.setting.evaluate(tensorName: "model.layers.0.self_attn.q_proj.weight", t: 0))
        XCTAssertEqual(recipe.warnings.count, 1)
        let warning = try XCTUnwrap(recipe.warnings.first)
        XCTAssertEqual(warning.location, SourceLocation(file: "test.yaml", line: 7, column: 16))
        XCTAssertTrue(warning.description.hasPrefix("test.yaml:7:16: warning: "), warning.description)
        XCTAssertTrue(warning.message.contains("one-element"), warning.message)
    }

    func testValueWithoutFilterAppliesToEveryTensor() throws {
        let recipe = try parseRecipe("""
            merge_method: linear
            models: [{model: org/a}]
            parameters:
              weight: {value: [0, 1]}
            """)
        let weight = try XCTUnwrap(recipe.parameters["weight"]?.setting)
        XCTAssertEqual(number(weight, "anything", t: 0.25), 0.25)
        XCTAssertEqual(recipe.warnings.count, 1)
    }
}
