import Checkpoints
import Foundation
import MoE
import Planner
import Recipes
import TestSupport
import XCTest

/// Every bad MoE recipe is refused while planning (configs, headers and the tokenizer only), with the recipe line
/// and column where there is one.
final class MoEBadRecipeTests: XCTestCase {
    private func parseError(_ text: String) -> RecipeError? {
        do {
            _ = try MoERecipeParser.parse(text: text, file: "moe.yaml")
            return nil
        } catch let e as RecipeError {
            return e
        } catch {
            XCTFail("expected a RecipeError, got \(error)")
            return nil
        }
    }

    func testTooFewExpertsForExpertsPerToken() throws {
        let e = try XCTUnwrap(parseError("""
        base_model: a
        experts_per_token: 3
        experts:
          - source_model: b
            positive_prompts: ["x"]
          - source_model: c
            positive_prompts: ["y"]
        """))
        XCTAssertEqual(e.location, SourceLocation(file: "moe.yaml", line: 2, column: 20))
        XCTAssertTrue(e.description.contains("only 2 experts"), e.description)
    }

    func testPromptsAreRequiredByPromptModesOnly() throws {
        let text = """
        base_model: a
        gate_mode: MODE
        experts:
          - source_model: b
            positive_prompts: ["x"]
          - source_model: c
        """
        let e = try XCTUnwrap(parseError(text.replacingOccurrences(of: "MODE", with: "hidden")))
        XCTAssertEqual(e.location?.line, 6)
        XCTAssertTrue(e.description.contains("expert 1 (c) has no positive_prompts"), e.description)
        for mode in ["random", "uniform_random"] {
            XCTAssertNil(parseError(text.replacingOccurrences(of: "MODE", with: mode)), "\(mode) needs no prompts")
        }
    }

    func testIdenticalPromptSetsAreRefused() throws {
        let e = try XCTUnwrap(parseError("""
        base_model: a
        experts:
          - source_model: b
            positive_prompts: ["same"]
          - source_model: c
            positive_prompts: ["same"]
        """))
        XCTAssertEqual(e.location, SourceLocation(file: "moe.yaml", line: 2, column: 1))
        XCTAssertTrue(e.description.contains("same positive and negative prompts"), e.description)
    }

    func testUnknownGateModeAndMergeKeysAreReported() throws {
        let e = try XCTUnwrap(parseError("base_model: a\ngate_mode: hiden\nexperts:\n  - source_model: b\n"))
        XCTAssertEqual(e.location, SourceLocation(file: "moe.yaml", line: 2, column: 12))
        XCTAssertTrue(e.description.contains("`hidden`") && e.description.contains("`router_input`"), e.description)
        let m = try XCTUnwrap(parseError("base_model: a\nmerge_method: linear\nexperts:\n  - source_model: b\n"))
        XCTAssertEqual(m.location?.line, 2)
        XCTAssertTrue(m.description.contains("crucible merge"), m.description)
    }

    func testEveryExpertFromOneModelNeedsTheFlag() throws {
        let text = """
        base_model: models/llama-base
        experts:
          - source_model: models/llama-ft1
            positive_prompts: ["a"]
          - source_model: models/llama-ft1
            positive_prompts: ["b"]
        """
        let message = try moePlanError(text)
        XCTAssertTrue(message.contains("recipe.yaml:2:1: error:"), message)
        XCTAssertTrue(message.contains("--i-understand-this-is-not-useful-without-training"), message)
        let dir = Fixtures.temporaryFolder("moe-same")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("recipe.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        var options = MoEOptions(allowIdenticalExperts: true)
        options.workingDirectory = Fixtures.fixture("")
        XCTAssertEqual(try MoEPlanner.plan(try MoERecipeParser.parse(file: path), options: options).recipe.experts.count, 2)
    }

    func testExpertWithOtherLayerCountOrShapesIsRefused() throws {
        // llama-tied has 2 layers and a narrower MLP; llama-base has 4.
        let layers = try moePlanError("""
        base_model: models/llama-base
        experts:
          - source_model: models/llama-ft1
            positive_prompts: ["a"]
          - source_model: models/llama-tied
            positive_prompts: ["b"]
        """)
        XCTAssertTrue(layers.contains("recipe.yaml:5:19: error: expert models/llama-tied has 2 layers"), layers)

        // Same layer count, one MLP weight of another shape.
        let dir = Fixtures.temporaryFolder("moe-shape")
        defer { try? FileManager.default.removeItem(at: dir) }
        let odd = dir.appendingPathComponent("odd").path
        try FileManager.default.createDirectory(atPath: odd, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.fixture("models/llama-ft1/config.json"), toPath: odd + "/config.json")
        let source = try SafetensorsFile(path: Fixtures.fixture("models/llama-ft1/model.safetensors"))
        let entries = source.tensorNames.map { name -> SafetensorsWriter.Entry in
            let info = source.info(name)!
            return SafetensorsWriter.Entry(name: name, dtype: info.dtype,
                                           shape: name == "model.layers.2.mlp.up_proj.weight" ? [80, 32] : info.shape)
        }
        try SafetensorsWriter(path: odd + "/model.safetensors", entries: entries).finish()
        let message = try moePlanError("""
        base_model: models/llama-base
        experts:
          - source_model: models/llama-ft1
            positive_prompts: ["a"]
          - source_model: \(odd)
            positive_prompts: ["b"]
        """)
        XCTAssertTrue(message.contains("recipe.yaml:5:19: error:"), message)
        XCTAssertTrue(message.contains("model.layers.2.mlp.up_proj.weight' has shape [80, 32] but the base's is [96, 32]"), message)
    }

    func testSharedExpertsTheOutputCannotTake() throws {
        let mixtral = try moePlanError("""
        base_model: models/llama-base
        architecture: mixtral
        shared_experts:
          - source_model: models/llama-base
            positive_prompts: ["c"]
        experts:
          - source_model: models/llama-ft1
            positive_prompts: ["a"]
          - source_model: models/llama-ft2
            positive_prompts: ["b"]
        """)
        XCTAssertTrue(mixtral.contains("recipe.yaml:2:1: error:") && mixtral.contains("Mixtral: it has no shared experts"), mixtral)

        let two = try moePlanError("""
        base_model: models/llama-base
        shared_experts:
          - source_model: models/llama-base
            positive_prompts: ["c"]
          - source_model: models/llama-ft3
            positive_prompts: ["d"]
        experts:
          - source_model: models/llama-ft1
            positive_prompts: ["a"]
          - source_model: models/llama-ft2
            positive_prompts: ["b"]
        """)
        XCTAssertTrue(two.contains("Qwen MoE: it needs exactly one shared expert (the recipe lists 2)"), two)

        let deepseek = try moePlanError("""
        base_model: models/llama-base
        architecture: deepseek
        experts:
          - source_model: models/llama-ft1
            positive_prompts: ["a"]
          - source_model: models/llama-ft2
            positive_prompts: ["b"]
        """)
        XCTAssertTrue(deepseek.contains("recipe.yaml:2:1: error: DeepSeek MoE output is not supported") && deepseek.contains("trust_remote_code"), deepseek)
    }

    func testMixedArchitecturesAndMoEBasesAreRefused() throws {
        let mixed = try moePlanError("""
        base_model: models/llama-base
        experts:
          - source_model: models/llama-ft1
            positive_prompts: ["a"]
          - source_model: models/qwen2-base
            positive_prompts: ["b"]
        """)
        XCTAssertTrue(mixed.contains("no output architecture can hold this MoE") && mixed.contains("same model_type"), mixed)
        let moeBase = try moePlanError("""
        base_model: models/mixtral-tiny
        experts:
          - source_model: models/llama-ft1
            positive_prompts: ["a"]
          - source_model: models/llama-ft2
            positive_prompts: ["b"]
        """)
        XCTAssertTrue(moeBase.contains("already a mixture of experts"), moeBase)
    }

    /// A failed build leaves nothing behind, and an existing output survives.
    func testExistingOutputIsRefusedOrReplacedOnlyWhenComplete() throws {
        let dir = Fixtures.fixture("moe/moe-cheap-embed")
        var options = MoEOptions(threads: 2)
        options.workingDirectory = Fixtures.fixture("")
        let plan = try MoEPlanner.plan(try MoERecipeParser.parse(file: dir + "/recipe.yaml"), options: options)
        let parent = Fixtures.temporaryFolder("moe-existing")
        defer { try? FileManager.default.removeItem(at: parent) }
        let out = parent.appendingPathComponent("out").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try "keep".write(toFile: out + "/marker", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try MoEBuilder.build(plan, outputPath: out)) { error in
            XCTAssertTrue("\(error)".contains("--overwrite"), "\(error)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/marker"))
        _ = try MoEBuilder.build(plan, outputPath: out, options: ExecutionOptions(overwrite: true))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/marker"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent.path), ["out"], "no staging folder left behind")
    }
}
