import Checkpoints
import Foundation
import MergeMethods
import Planner
import Recipes
import TestSupport
import XCTest

/// Issue 9 regressions at the planner and executor: one parameter validation for `--dry-run` and the merge
/// (defect 6), configs checked against tensors (defect 8), one non-finite policy for every method (defect 9),
/// and the smaller issues (defect 11).
final class ReliabilityTests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws { work = Fixtures.temporaryFolder("reliability") }
    override func tearDown() { try? FileManager.default.removeItem(at: work) }

    var base: String { Fixtures.fixture("models/llama-base") }
    var ft1: String { Fixtures.fixture("models/llama-ft1") }
    var ft2: String { Fixtures.fixture("models/llama-ft2") }

    private func plan(_ text: String) throws -> MergePlan {
        let path = work.appendingPathComponent("recipe.yml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try MergePlanner.plan(try RecipeParser.parse(file: path), options: PlannerOptions(threads: 2, workingDirectory: work.path))
    }

    private func planError(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try plan(text)
            XCTFail("the plan (what --dry-run prints) accepted it", file: file, line: line)
            return ""
        } catch { return "\(error)" }
    }

    // MARK: Defect 6: --dry-run and the merge validate parameters the same way

    func testPlanRefusesParameterValuesTheMergeWouldRefuse() {
        var e = planError("merge_method: linear\nmodels:\n  - model: \(ft1)\n    parameters: {weight: heavy}\n  - model: \(ft2)\n    parameters: {weight: 0.5}\n")
        XCTAssertTrue(e.contains("recipe.yml:4:") && e.contains("'weight'") && e.contains("finite number") && e.contains("heavy"), e)
        e = planError("merge_method: slerp\nbase_model: \(base)\nmodels:\n  - model: \(base)\n  - model: \(ft1)\nparameters: {t: halfway}\n")
        XCTAssertTrue(e.contains("recipe.yml:6:") && e.contains("'t'") && e.contains("halfway"), e)
        e = planError("merge_method: ties\nbase_model: \(base)\nmodels:\n  - model: \(ft1)\n    parameters: {weight: 1, density: -0.5}\n")
        XCTAssertTrue(e.contains("recipe.yml:5:") && e.contains("'density'") && e.contains(">= 0"), e)
        e = planError("merge_method: ties\nbase_model: \(base)\nmodels:\n  - model: \(ft1)\n    parameters: {weight: 1}\nparameters: {normalize: maybe}\n")
        XCTAssertTrue(e.contains("'normalize'") && e.contains("true or false"), e)
        e = planError("merge_method: nearswap\nbase_model: \(base)\nmodels:\n  - model: \(base)\n  - model: \(ft1)\nparameters: {t: 0}\n")
        XCTAssertTrue(e.contains("'t'") && e.contains("> 0"), e)
        // Values the methods accept still pass: numeric strings, gradients.
        XCTAssertNoThrow(try plan("merge_method: ties\nbase_model: \(base)\nmodels:\n  - model: \(ft1)\n    parameters: {weight: '0.5', density: [0.2, 0.9]}\n"))
    }

    func testEveryParameterDeclarationJudgesItsValues() {
        for method in MergeMethodRegistry.all {
            for def in method.globalParameters + method.perModelParameters {
                XCTAssertNotNil(def.problem(with: .string("not-a-value")), "\(method.name).\(def.name)")
                if let d = def.defaultValue { XCTAssertNil(def.problem(with: d), "\(method.name).\(def.name): its own default is refused") }
            }
        }
    }

    // MARK: Defect 8: a parent's config must agree with its tensors

    func testConfigContradictingTensorsIsRefusedAtPlanTime() throws {
        let cases: [(String, JSONValue, String)] = [
            ("hidden_size", .int(64), "hidden_size"),
            ("vocab_size", .int(1000), "vocab_size"),
            ("num_attention_heads", .int(0), "'num_attention_heads' must be positive"),
            ("num_key_value_heads", .int(4), "num_key_value_heads"),
            ("intermediate_size", .int(128), "intermediate_size"),
            ("rms_norm_eps", .double(.nan), "rms_norm_eps"),
        ]
        for (key, value, fragment) in cases {
            let model = try HostileModels.copy("llama-ft1", to: work, as: "bad-\(key)")
            try HostileModels.setConfig(model, key, value)
            let e = planError("merge_method: linear\nmodels:\n  - model: \(model)\n    parameters: {weight: 0.5}\n  - model: \(ft2)\n    parameters: {weight: 0.5}\n")
            XCTAssertTrue(e.contains(model + "/config.json") && e.contains(fragment), "\(key): \(e)")
        }
    }

    // MARK: Defect 9: one non-finite policy for every method

    /// A recipe for `method` in which `bad` is one parent.
    private func recipe(_ method: String, bad: String) -> String {
        switch method {
        case "passthrough":
            return "merge_method: passthrough\nslices:\n  - sources:\n      - model: \(bad)\n        layer_range: [0, 4]\n"
        case "slerp", "nearswap":
            return "merge_method: \(method)\nbase_model: \(base)\nmodels:\n  - model: \(base)\n  - model: \(bad)\nparameters: {t: 0.5}\n"
        case "arcee_fusion":
            return "merge_method: \(method)\nbase_model: \(base)\nmodels:\n  - model: \(base)\n  - model: \(bad)\n"
        case "linear", "nuslerp", "multislerp", "karcher":
            return "merge_method: \(method)\nmodels:\n  - model: \(bad)\n    parameters: {weight: 0.5}\n  - model: \(ft2)\n    parameters: {weight: 0.5}\n"
        case "model_stock":
            return "merge_method: \(method)\nbase_model: \(base)\nmodels:\n  - model: \(base)\n  - model: \(bad)\n  - model: \(ft2)\n"
        default:
            return "merge_method: \(method)\nbase_model: \(base)\nmodels:\n  - model: \(base)\n  - model: \(bad)\n    parameters: {weight: 0.5, density: 0.5}\n  - model: \(ft2)\n    parameters: {weight: 0.5, density: 0.5}\n"
        }
    }

    func testNonFiniteInputsFailEveryMethodUnlessAcceptedAndAreThenReported() throws {
        let bad = try HostileModels.copy("llama-ft1", to: work, as: "nan-parent")
        // Row 5, column 7 of a [96, 32] tensor; plus an infinity further on.
        try HostileModels.setElement(bad, "model.layers.1.mlp.up_proj.weight", 5 * 32 + 7, .nan)
        try HostileModels.setElement(bad, "model.layers.1.mlp.up_proj.weight", 90 * 32, .infinity)
        for method in MergeMethodRegistry.names {
            let p = try plan(recipe(method, bad: bad))
            let out = work.appendingPathComponent("out-\(method)").path
            XCTAssertThrowsError(try PlanExecutor.execute(p, outputPath: out), method) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("model.layers.1.mlp.up_proj.weight") && text.contains("holds 2 NaN/infinite values")
                              && text.contains("first at [5, 7]") && text.contains("--allow-non-finite"), "\(method): \(text)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(method): an output was written")
            let report = try PlanExecutor.execute(p, outputPath: out, options: ExecutionOptions(allowNonFinite: true))
            let warning = report.warnings.first { $0.contains("model.layers.1.mlp.up_proj.weight") && $0.contains("--allow-non-finite") }
            XCTAssertNotNil(warning, "\(method): \(report.warnings)")
            XCTAssertTrue(warning?.contains("first at [5, 7]") == true && warning?.contains("the output holds") == true, "\(method): \(warning ?? "")")
        }
    }

    func testFiniteInputsMergeWithoutNonFiniteWarnings() throws {
        let report = try PlanExecutor.execute(try plan(recipe("ties", bad: ft1)), outputPath: work.appendingPathComponent("ok").path)
        XCTAssertFalse(report.warnings.contains { $0.contains("NaN") }, "\(report.warnings)")
    }

    // MARK: Defect 11: smaller issues

    func testUnknownPerModelParameterWarnsWithASuggestion() throws {
        let p = try plan("merge_method: linear\nmodels:\n  - model: \(ft1)\n    parameters: {weight: 0.5, wieght: 0.2}\n  - model: \(ft2)\n    parameters: {weight: 0.5}\n")
        let w = p.warnings.first { $0.contains("wieght") }
        XCTAssertNotNil(w, "\(p.warnings)")
        XCTAssertTrue(w?.contains("recipe.yml:4:") == true && w?.contains("did you mean `weight`?") == true, w ?? "")
    }

    func testUntiedParentWithoutHeadWarns() throws {
        let headless = try HostileModels.copy("llama-ft1", to: work, as: "headless")
        try HostileModels.renameTensor(headless, "lm_head.weight", "lm_head.unused")
        let p = try plan("merge_method: linear\nmodels:\n  - model: \(ft2)\n    parameters: {weight: 0.5}\n  - model: \(headless)\n    parameters: {weight: 0.5}\n")
        XCTAssertTrue(p.warnings.contains { $0.contains("no 'lm_head.weight'") && $0.contains("tie_word_embeddings") }, "\(p.warnings)")
    }

    func testWriteFailureIsNotDoubledIntoErrorError() {
        let e = PlanError.failure(CheckpointError.writeFailed(path: "/out/model.safetensors", reason: "No space left on device"))
        XCTAssertEqual(e.description, "/out/model.safetensors: error: cannot write: No space left on device")
        XCTAssertFalse(PlanError.execution("boom").description.hasPrefix("error:"))
    }

    func testOutputNamingAnInputIsRefusedEvenWithOverwrite() throws {
        let parent = try HostileModels.copy("llama-ft1", to: work, as: "parent")
        let before = fileBytes(parent + "/model.safetensors")
        let p = try plan("merge_method: linear\nmodels:\n  - model: \(parent)\n    parameters: {weight: 0.5}\n  - model: \(ft2)\n    parameters: {weight: 0.5}\n")
        XCTAssertThrowsError(try PlanExecutor.execute(p, outputPath: parent, options: ExecutionOptions(overwrite: true))) { error in
            XCTAssertTrue("\(error)".contains("would destroy it"), "\(error)")
        }
        XCTAssertEqual(fileBytes(parent + "/model.safetensors"), before)
    }
}
