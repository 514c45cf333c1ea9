import Recipes
import XCTest

/// Recipe keys beyond the fixtures: forms mergekit accepts, quirks, warnings.
final class RecipeParserTests: XCTestCase {
    func testAllTopLevelKeysAreRead() throws {
        let recipe = try parseRecipe("""
            merge_method: dare_ties
            base_model: {model: org/base}
            models:
              - org/bare
              - model: org/a
                parameters: {weight: 0.6, density: 0.5}
            parameters: {int8_mask: true}
            dtype: torch.bfloat16
            out_dtype: float16
            tokenizer_source: base
            chat_template: chatml
            random_seed: 42
            """)
        XCTAssertEqual(recipe.mergeMethod, "dare_ties")
        XCTAssertEqual(recipe.mergeMethodLocation, SourceLocation(file: "test.yaml", line: 1, column: 15))
        XCTAssertEqual(recipe.baseModel?.raw, "org/base")
        XCTAssertEqual(recipe.baseModel?.location, SourceLocation(file: "test.yaml", line: 2, column: 21))
        XCTAssertEqual(recipe.models?.map(\.model.raw), ["org/bare", "org/a", "org/base"])
        XCTAssertEqual(recipe.models?[1].parameters["density"]?.setting, .scalar(.number(0.5)))
        XCTAssertEqual(recipe.dtype, .bf16)
        XCTAssertEqual(recipe.outDType, .f16)
        XCTAssertEqual(recipe.tokenizerSource, .base)
        XCTAssertEqual(recipe.chatTemplate, "chatml")
        XCTAssertEqual(recipe.randomSeed, 42)
        XCTAssertEqual(recipe.keyLocations["random_seed"], SourceLocation(file: "test.yaml", line: 12, column: 1))
        XCTAssertEqual(recipe.warnings, [])
        XCTAssertEqual(recipe.referencedModels.map(\.raw), ["org/base", "org/bare", "org/a"])
    }

    func testTokenizerSourceModelAndLegacyPrefix() throws {
        let plain = try parseRecipe("merge_method: linear\nmodels: [{model: a/b}]\ntokenizer_source: org/tok\n")
        XCTAssertEqual(plain.tokenizerSource, .model(ModelReference(raw: "org/tok", location: SourceLocation(file: "test.yaml", line: 3, column: 19))))
        let legacy = try parseRecipe("merge_method: linear\nmodels: [{model: a/b}]\ntokenizer_source: model:org/tok\n")
        XCTAssertEqual(legacy.tokenizerSource, .model(ModelReference(raw: "org/tok", location: SourceLocation(file: "test.yaml", line: 3, column: 19))))
        XCTAssertEqual(legacy.warnings.count, 1)
    }

    func testTokenizerBlockIsRead() throws {
        let recipe = try parseRecipe("""
            merge_method: linear
            models: [{model: org/a}, {model: org/b}]
            tokenizer:
              pad_to_multiple_of: 64
              tokens:
                <|im_start|>: {source: org/b}
                <s>: {source: {kind: zero}, force: true}
                x: {source: {kind: model_token, model: org/a, token_id: 40}}
                y: {source: {kind: model_token, model: org/a, token: <|im_end|>}}
                z:
            """)
        let t = try XCTUnwrap(recipe.tokenizer)
        XCTAssertEqual(t.source, .union, "a block without `source` means a union")
        XCTAssertEqual(recipe.tokenizerSource, .union)
        XCTAssertEqual(t.padToMultipleOf, 64)
        XCTAssertEqual(t.tokens.map(\.token), ["<|im_start|>", "<s>", "x", "y", "z"])
        XCTAssertEqual(t.tokens[0].source?.model?.raw, "org/b")
        XCTAssertEqual(t.tokens[1].source, .zero)
        XCTAssertTrue(t.tokens[1].force)
        XCTAssertFalse(t.tokens[0].force)
        guard case let .modelTokenID(m, 40)? = t.tokens[2].source, m.raw == "org/a" else { return XCTFail("\(t.tokens[2])") }
        guard case .modelToken(_, "<|im_end|>")? = t.tokens[3].source else { return XCTFail("\(t.tokens[3])") }
        XCTAssertNil(t.tokens[4].source)
        XCTAssertEqual(t.tokens[1].location, SourceLocation(file: "test.yaml", line: 7, column: 5))
        XCTAssertEqual(try parseRecipe("merge_method: linear\nmodels: [{model: a/b}]\ntokenizer_source: union\n").tokenizerSource, .union)
    }

    func testSliceBaseModelAndParametersAreKept() throws {
        let recipe = try parseRecipe("""
            merge_method: slerp
            slices:
              - sources:
                  - {model: org/a, layer_range: [0, 16]}
                  - {model: org/b, layer_range: [16, 32]}
                base_model: org/a
                parameters: {t: 0.3}
              - sources: [{model: org/c}]
            """)
        let slices = try XCTUnwrap(recipe.slices)
        XCTAssertEqual(slices[0].baseModel?.raw, "org/a")
        XCTAssertEqual(slices[0].parameters["t"]?.setting, .scalar(.number(0.3)))
        XCTAssertEqual(slices[0].location, SourceLocation(file: "test.yaml", line: 3, column: 5))
        XCTAssertEqual(slices[1].sources[0].layerRange, nil)
        XCTAssertNil(recipe.baseModel)
    }

    func testUnknownKeysAndLegacyEmbedSlerpWarnButParse() throws {
        let recipe = try parseRecipe("""
            merge_method: slerp
            base_model: org/a
            models: [{model: org/a}, {model: org/b}]
            parameters:
              t: 0.5
              embed_slerp: true
            out_dtpye: bfloat16
            """)
        XCTAssertNil(recipe.parameters["embed_slerp"])
        XCTAssertEqual(recipe.warnings.map(\.location.line), [6, 7])   // in file order
        let unknown = try XCTUnwrap(recipe.warnings.first { $0.location.line == 7 })
        XCTAssertTrue(unknown.message.contains("out_dtype"), unknown.message)   // the suggestion
        XCTAssertNil(recipe.outDType)
        let legacy = try XCTUnwrap(recipe.warnings.first { $0.location.line == 6 })
        XCTAssertTrue(legacy.message.contains("embed_slerp"))
    }

    func testAnchorsAliasesAndMergeKeysWorkAsInPyYAML() throws {
        let recipe = try parseRecipe("""
            merge_method: ties
            base_model: org/base
            models:
              - model: org/a
                parameters: &shared {density: 0.5, weight: 0.3}
              - model: org/b
                parameters:
                  <<: *shared
                  weight: 0.7
            """)
        let models = try XCTUnwrap(recipe.models)
        XCTAssertEqual(models[0].parameters["weight"]?.setting, .scalar(.number(0.3)))
        XCTAssertEqual(models[1].parameters["density"]?.setting, .scalar(.number(0.5)))
        XCTAssertEqual(models[1].parameters["weight"]?.setting, .scalar(.number(0.7)))   // explicit key wins over the merged one
        XCTAssertEqual(models[1].parameters["weight"]?.location.line, 9)
        XCTAssertEqual(recipe.warnings, [])
    }

    func testEmptyOptionalKeysMeanUnset() throws {
        let recipe = try parseRecipe("""
            merge_method: linear
            base_model:
            models: [{model: org/a, parameters: }]
            dtype: null
            out_dtype: ~
            tokenizer_source:
            chat_template:
            random_seed:
            """)
        XCTAssertNil(recipe.baseModel)
        XCTAssertNil(recipe.dtype)
        XCTAssertNil(recipe.outDType)
        XCTAssertNil(recipe.tokenizerSource)
        XCTAssertNil(recipe.chatTemplate)
        XCTAssertNil(recipe.randomSeed)
        XCTAssertEqual(recipe.models?.first?.parameters, [:])
    }

    func testWindowsLineEndingsKeepLineNumbers() throws {
        let recipe = try parseRecipe("merge_method: linear\r\nmodels:\r\n  - model: org/a\r\n    parameters: {weight: 0.5}\r\n")
        XCTAssertEqual(recipe.models?.first?.model.location, SourceLocation(file: "test.yaml", line: 3, column: 12))
        XCTAssertEqual(recipe.models?.first?.parameters["weight"]?.location, SourceLocation(file: "test.yaml", line: 4, column: 26))
    }

    func testRecipeFileIsReadFromDisk() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("recipes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("r.yaml").path
        let text = "merge_method: linear\nmodels:\n  - model: ./a\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let recipe = try RecipeParser.parse(file: path)
        XCTAssertEqual(recipe.file, path)
        XCTAssertEqual(recipe.text, text)
        XCTAssertEqual(recipe.models?.first?.model.location, SourceLocation(file: path, line: 3, column: 12))

        XCTAssertThrowsError(try RecipeParser.parse(file: folder.appendingPathComponent("missing.yaml").path)) { error in
            guard case RecipeError.unreadableFile(let file, let reason)? = error as? RecipeError else { return XCTFail("\(error)") }
            XCTAssertTrue(file.hasSuffix("missing.yaml"))
            XCTAssertEqual(reason, "no such file")
            XCTAssertTrue("\(error)".hasPrefix(file + ": error: cannot read the recipe"), "\(error)")
        }
        XCTAssertThrowsError(try RecipeParser.parse(file: folder.path)) { error in
            XCTAssertTrue("\(error)".contains("it is a folder"), "\(error)")
        }
        try Data([0x6d, 0xff, 0xfe, 0x0a]).write(to: folder.appendingPathComponent("bad.yaml"))
        XCTAssertThrowsError(try RecipeParser.parse(file: folder.appendingPathComponent("bad.yaml").path)) { error in
            XCTAssertTrue("\(error)".contains("not UTF-8"), "\(error)")
        }
    }
}
