import XCTest
import Recipes

/// Every rejected recipe names the line and column to fix and says what was expected.
final class RecipeErrorTests: XCTestCase {
    func testMalformedYamlReportsLibyamlsPosition() {
        let error = assertRecipeError("""
            merge_method: linear
            models:
              - model: org/a: b
            """, line: 3, column: 17, mentions: ["not valid YAML", "mapping values are not allowed"])
        guard case .malformedYAML? = error else { return XCTFail("\(String(describing: error))") }
    }

    func testTabIndentationIsExplained() {
        assertRecipeError("merge_method: linear\nmodels:\n\t- model: org/a\n", line: 3, column: 1, mentions: ["not valid YAML", "spaces, not tabs"])
    }

    func testASecondYamlDocumentIsRejectedWhereItStarts() {
        assertRecipeError("merge_method: linear\nmodels: [{model: org/a}]\n---\nmerge_method: ties\n", line: 3, column: 1,
                          mentions: ["one YAML document"])
    }

    func testUnclosedFlowListIsMalformedYaml() {
        do {
            _ = try parseRecipe("merge_method: linear\nmodels: [{model: org/a}\ndtype: float32\n")
            XCTFail("expected an error")
        } catch let error as RecipeError {
            guard case .malformedYAML(let location, _) = error else { return XCTFail("\(error)") }
            XCTAssertGreaterThanOrEqual(location.line, 2, "\(error)")
            XCTAssertTrue(error.description.hasPrefix("test.yaml:\(location.line):\(location.column): error: the recipe is not valid YAML"))
        } catch { XCTFail("\(error)") }
    }

    func testMissingMergeMethodPointsAtTheRecipeStart() {
        let error = assertRecipeError("""
            models: [{model: org/a}]
            dtype: float32
            """, line: 1, column: 1, mentions: ["no `merge_method` key", "merge_method: linear"])
        guard case .missingKey(_, "merge_method", _, nil)? = error else { return XCTFail("\(String(describing: error))") }
    }

    func testMisspelledMergeMethodKeyIsNamedWhereItWasWritten() {
        assertRecipeError("""
            models: [{model: org/a}]
            merge_mehtod: linear
            """, line: 2, column: 1, mentions: ["`merge_mehtod`", "did you mean `merge_method`"])
    }

    func testMergeMethodMustBeAName() {
        assertRecipeError("merge_method: [linear]\nmodels: [{model: org/a}]\n", line: 1, column: 15,
                          mentions: ["`merge_method`", "expected a method name", "found a list"])
    }

    func testModelsAndSlicesTogetherAreRejectedAtTheSecond() {
        assertRecipeError("""
            merge_method: linear
            models: [{model: org/a}]
            slices:
              - sources: [{model: org/a, layer_range: [0, 2]}]
            """, line: 3, column: 1, mentions: ["both `models` (line 2) and `slices`", "exactly one"])
    }

    func testNeitherModelsNorSlicesIsRejected() {
        let error = assertRecipeError("merge_method: linear\ndtype: float32\n", line: 1, column: 1, mentions: ["neither `models` nor `slices`"])
        guard case .missingInputs? = error else { return XCTFail("\(String(describing: error))") }
    }

    func testModulesAreNotSupportedYet() {
        assertRecipeError("""
            merge_method: linear
            modules:
              text_decoder:
                models: [{model: org/a}]
            """, line: 2, column: 1, mentions: ["`modules:`", "not supported yet", "use `models:` or `slices:`"])
    }

    func testModelsMustBeAList() {
        assertRecipeError("merge_method: linear\nmodels: org/a\n", line: 2, column: 9, mentions: ["expected a list of models", "found the text `org/a`"])
        assertRecipeError("merge_method: linear\nmodels:\n  - parameters: {weight: 1}\n", line: 3, column: 5,
                          mentions: ["no `model` key"])
    }

    func testLayerRangeWithStartNotBelowEnd() {
        assertRecipeError("""
            merge_method: passthrough
            slices:
              - sources:
                  - model: org/a
                    layer_range: [8, 4]
            """, line: 5, column: 22, mentions: ["invalid `layer_range`", "start must be below end", "[8, 4]"])
    }

    func testLayerRangeMustBeTwoNonNegativeIntegers() {
        let prefix = "merge_method: passthrough\nslices:\n  - sources:\n      - model: org/a\n        layer_range: "
        assertRecipeError(prefix + "[4]\n", line: 5, column: 22, mentions: ["expected two integers", "1 item"])
        assertRecipeError(prefix + "[0, 1.5]\n", line: 5, column: 26, mentions: ["expected an integer layer index", "1.5"])
        assertRecipeError(prefix + "[-2, 4]\n", line: 5, column: 22, mentions: ["cannot be negative"])
        assertRecipeError(prefix + "0-4\n", line: 5, column: 22, mentions: ["expected two integers"])
    }

    func testSourcesOfOneSliceMustSpanEqualLayerCounts() {
        assertRecipeError("""
            merge_method: slerp
            slices:
              - sources:
                  - {model: org/a, layer_range: [0, 4]}
                  - {model: org/b, layer_range: [0, 6]}
            """, line: 5, column: 37, mentions: ["spans 6 layers", "spans 4"])
    }

    func testUnknownDTypeNamesTheValue() {
        assertRecipeError("merge_method: linear\nmodels: [{model: org/a}]\ndtype: float8\n", line: 3, column: 8,
                          mentions: ["`dtype`", "unknown dtype `float8`", "float32, float16 or bfloat16"])
        assertRecipeError("merge_method: linear\nmodels: [{model: org/a}]\nout_dtype: int8\n", line: 3, column: 12,
                          mentions: ["`out_dtype`", "unknown dtype `int8`"])
    }

    func testTokenizerAndTokenizerSourceTogetherAreRefused() {
        assertRecipeError("""
            merge_method: linear
            models: [{model: org/a}]
            tokenizer_source: union
            tokenizer: {source: union}
            """, line: 4, column: 1, mentions: ["`tokenizer` and `tokenizer_source` cannot both be given", "line 3"])
    }

    func testMalformedTokenEntriesAreLocated() {
        let prefix = "merge_method: linear\nmodels: [{model: org/a}]\ntokenizer:\n  tokens:\n    "
        assertRecipeError(prefix + "x: {source: {kind: one}}\n", line: 5, column: 24,
                          mentions: ["unknown token source kind `one`", "`zero`"])
        assertRecipeError(prefix + "x: {source: {kind: model_token, model: org/a}}\n", line: 5, column: 17,
                          mentions: ["exactly one of `token_id`", "`token`"])
        assertRecipeError(prefix + "x: {source: {kind: model_token, model: org/a, token_id: -2}}\n", line: 5, column: 61,
                          mentions: ["`token_id`", "non-negative"])
        assertRecipeError(prefix + "x: {force: maybe}\n", line: 5, column: 16, mentions: ["`force`", "true or false"])
        assertRecipeError("merge_method: linear\nmodels: [{model: org/a}]\ntokenizer: {pad_to_multiple_of: 0}\n", line: 3, column: 33,
                          mentions: ["`pad_to_multiple_of`", "whole number"])
    }

    func testInvalidParameterValuesAreLocated() {
        let prefix = "merge_method: linear\nmodels: [{model: org/a}]\nparameters:\n  weight: "
        assertRecipeError(prefix + "[]\n", line: 4, column: 11, mentions: ["parameter `weight`", "empty list"])
        assertRecipeError(prefix + "[0, [1, 2]]\n", line: 4, column: 15, mentions: ["parameter `weight`", "nested list"])
        assertRecipeError(prefix + "{filter: mlp}\n", line: 4, column: 11, mentions: ["parameter `weight`", "no `value`"])
        assertRecipeError(prefix + "\n", line: 4, column: 3, mentions: ["parameter `weight`", "no value given"])
        assertRecipeError(prefix + "[0.5, {filter: mlp, value: 1}]\n", line: 4, column: 17, mentions: ["mixing"])
        assertRecipeError(prefix + "[{filter: mlp, value: {value: 1}}]\n", line: 4, column: 33, mentions: ["not another mapping"])
    }

    func testDuplicateKeysAreRejected() {
        assertRecipeError("merge_method: linear\nmodels: [{model: org/a}]\nmerge_method: ties\n", line: 3, column: 1,
                          mentions: ["`merge_method` is given twice", "first at line 1, column 1"])
    }

    func testNonMappingAndEmptyRecipes() {
        assertRecipeError("- merge_method: linear\n", line: 1, column: 1, mentions: ["expected the recipe to be a mapping", "found a list"])
        for text in ["", "# only a comment\n", "~\n"] {
            XCTAssertThrowsError(try parseRecipe(text)) { error in
                XCTAssertEqual(error as? RecipeError, .emptyRecipe(file: "test.yaml"))
                XCTAssertTrue("\(error)".hasPrefix("test.yaml: error: the recipe is empty"), "\(error)")
            }
        }
    }

    /// mergekit's dict form `{model: M, lora: A}` is the same input as `M+A`; a lora that is not one path is refused.
    func testLoraInDictFormIsTheSameAsAPlusReference() throws {
        let recipe = try parseRecipe("merge_method: linear\nmodels:\n  - model: {model: org/a, lora: org/adapter}\n")
        XCTAssertEqual(recipe.models?.first?.model.raw, "org/a+org/adapter")
        assertRecipeError("merge_method: linear\nmodels:\n  - model: {model: org/a, lora: [x]}\n", line: 3, column: 33,
                          mentions: ["lora", "PEFT LoRA adapter"])
        assertRecipeError("merge_method: linear\nmodels:\n  - model: {model: org/a+org/b, lora: org/c}\n", line: 3, column: 20,
                          mentions: ["already names an adapter"])
    }

    func testNegativeRandomSeedIsRejected() {
        assertRecipeError("merge_method: linear\nmodels: [{model: org/a}]\nrandom_seed: -1\n", line: 3, column: 14, mentions: ["non-negative"])
    }
}
