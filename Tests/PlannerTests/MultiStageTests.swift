import Checkpoints
import Foundation
import Planner
import Recipes
import TestSupport
import XCTest

/// Multi-stage recipes (mergekit-multi): ordering, intermediates and their reuse, errors at their recipe lines.
final class MultiStageTests: XCTestCase {
    var root: String { Fixtures.fixture("vocab-lora") }

    func run(_ text: String, out: String? = nil, intermediates: String? = nil) throws -> (stages: [MultiStageMerge.Stage], out: String) {
        let file = writeRecipe(text)
        let recipe = try MultiStageRecipe.parse(file: file)
        let output = out ?? Fixtures.temporaryFolder("multi").appendingPathComponent("out").path
        let options = PlannerOptions(threads: 2, workingDirectory: root)
        let stages = try MultiStageMerge.plan(recipe, output: output, intermediates: intermediates, options: options)
        try MultiStageMerge.execute(recipe, stages: stages, options: options, execution: ExecutionOptions(writeModelCard: false))
        return (stages, output)
    }

    /// The fixture chain's `stage-lora` (a `+lora` input in task arithmetic) as an intermediate, read by a final stage.
    func testStageLoraIntermediateMatchesMergekit() throws {
        let chain = """
            merge_method: passthrough
            models:
            - {model: stage-lora}
            dtype: float32
            ---
            name: stage-lora
            merge_method: task_arithmetic
            base_model: models/base
            models:
            - model: models/base+loras/lora-qvd
              parameters: {weight: 1.0}
            - model: models/ft
              parameters: {weight: 0.5}
            dtype: float32
            """
        let (stages, out) = try run(chain)
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        XCTAssertEqual(stages.map(\.name), ["stage-lora", nil], "the intermediate runs first")
        let reference = try loadTensors(root + "/multi/chain/intermediate/stage-lora/model.safetensors")
        let intermediate = try loadTensors(stages[0].output + "/model.safetensors"), final = try loadTensors(out + "/model.safetensors")
        var worst = 0.0
        for (name, r) in reference {
            let e = relativeError(try XCTUnwrap(intermediate[name]).values, r.values)
            worst = max(worst, e)
            XCTAssertLessThanOrEqual(e, 1e-6, name)
            XCTAssertEqual(final[name]?.values, intermediate[name]?.values, name)
        }
        print("multi stage-lora: worst relative difference \(worst)")
        XCTAssertEqual(stages[0].output, MultiStageMerge.defaultIntermediates(for: out) + "/stage-lora")
    }

    /// A three-stage chain (written out of order, with a `name+adapter` reference) equals the same merges run one by one.
    func testChainEqualsTheStagesRunByHand() throws {
        let stageA = """
            name: a
            merge_method: linear
            models:
            - {model: models/base, parameters: {weight: 0.3}}
            - {model: models/ft, parameters: {weight: 0.7}}
            dtype: float32
            """
        func stageB(_ a: String) -> String {
            "name: b\nmerge_method: slerp\nbase_model: \(a)\nmodels:\n- {model: \(a)}\n- {model: models/sparse-a}\nparameters: {t: 0.4}\n"
                + "dtype: float32\n"
        }
        func final(_ a: String, _ b: String) -> String {
            "merge_method: task_arithmetic\nbase_model: models/base\nmodels:\n- {model: \(a)+loras/lora-qvd, parameters: {weight: 0.5}}\n"
                + "- {model: \(b), parameters: {weight: 0.8}}\ndtype: float32\n"
        }
        let (stages, out) = try run(final("a", "b") + "---\n" + stageB("a") + "---\n" + stageA + "\n")
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        XCTAssertEqual(stages.map(\.name), ["a", "b", nil])

        let scratch = Fixtures.temporaryFolder("by-hand").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let a = try runRecipe(writeRecipe(stageA), out: scratch + "/a", workingDirectory: root).output
        let b = try runRecipe(writeRecipe(stageB(a)), out: scratch + "/b", workingDirectory: root).output
        let f = try runRecipe(writeRecipe(final(a, b)), out: scratch + "/f", workingDirectory: root).output
        let expected = try loadTensors(f + "/model.safetensors"), ours = try loadTensors(out + "/model.safetensors")
        XCTAssertEqual(Set(expected.keys), Set(ours.keys))
        for (name, e) in expected { XCTAssertEqual(ours[name]?.values, e.values, name) }
    }

    /// A complete intermediate built from the same text is reused; one from other text, or without its weights, is rebuilt.
    func testIntermediatesAreReusedOnlyWhenCompleteAndCurrent() throws {
        let recipe = { (w: Double) in
            "name: a\nmerge_method: linear\nmodels:\n- {model: models/base, parameters: {weight: \(w)}}\n"
                + "- {model: models/ft, parameters: {weight: 0.5}}\ndtype: float32\n---\nmerge_method: passthrough\nmodels: [{model: a}]\n"
        }
        let folder = Fixtures.temporaryFolder("multi").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let stagesFolder = folder + "/stages"
        let first = try run(recipe(0.5), out: folder + "/out", intermediates: stagesFolder)
        XCTAssertFalse(first.stages[0].reused)
        let weights = first.stages[0].output + "/model.safetensors"
        let built = try FileManager.default.attributesOfItem(atPath: weights)[.modificationDate] as? Date
        let again = try run(recipe(0.5), out: folder + "/out2", intermediates: stagesFolder)
        XCTAssertTrue(again.stages[0].reused)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: weights)[.modificationDate] as? Date, built)
        // Other text: rebuilt.
        let changed = try run(recipe(0.25), out: folder + "/out3", intermediates: stagesFolder)
        XCTAssertFalse(changed.stages[0].reused)
        let w = try loadTensors(weights)["model.norm.weight"]!.values
        let base = try loadTensors(root + "/models/base/model.safetensors")["model.norm.weight"]!.values
        let ft = try loadTensors(root + "/models/ft/model.safetensors")["model.norm.weight"]!.values
        XCTAssertEqual(w[0], (0.25 * base[0] + 0.5 * ft[0]) / 0.75, accuracy: 1e-6)   // linear normalizes the weights
        // Weights missing (an incomplete copy): never reused.
        try FileManager.default.removeItem(atPath: weights)
        let repaired = try run(recipe(0.25), out: folder + "/out4", intermediates: stagesFolder)
        XCTAssertFalse(repaired.stages[0].reused)
        XCTAssertTrue(FileManager.default.fileExists(atPath: weights))
        // A folder there that is not a merge output is never replaced.
        let mine = folder + "/mine"
        try FileManager.default.createDirectory(atPath: mine + "/a", withIntermediateDirectories: true)
        try "keep".write(toFile: mine + "/a/notes.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try run(recipe(0.5), out: folder + "/out5", intermediates: mine)) { error in
            XCTAssertTrue("\(error)".contains("not a merge output"), "\(error)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: mine + "/a/notes.txt"))
    }

    /// Every stage is planned before anything runs: a later stage is planned against the earlier one's planned output.
    func testDryRunPlansEveryStageWithoutWriting() throws {
        let text = "name: a\nmerge_method: linear\nmodels:\n- {model: models/base, parameters: {weight: 0.5}}\n"
            + "- {model: models/ft, parameters: {weight: 0.5}}\ndtype: float32\n---\n"
            + "merge_method: passthrough\nslices:\n- sources: [{model: a+loras/lora-qvd, layer_range: [0, 1]}]\n"
            + "- sources: [{model: models/base, layer_range: [1, 2]}]\n"
        let out = Fixtures.temporaryFolder("multi").appendingPathComponent("out").path
        let stages = try MultiStageMerge.plan(MultiStageRecipe.parse(text: text, file: "multi.yaml"), output: out,
                                              options: PlannerOptions(workingDirectory: root))
        XCTAssertEqual(stages.count, 2)
        XCTAssertEqual(stages[1].plan.models[0].path, stages[0].output)
        XCTAssertNotNil(stages[1].plan.models[0].adapter)
        XCTAssertTrue(stages[1].plan.describe().contains("+LoRA"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: stages[0].output))
        // A stage that does not fit the planned output of the one it reads fails now, not after the first merge.
        let bad = text.replacingOccurrences(of: "layer_range: [0, 1]", with: "layer_range: [0, 3]")
        XCTAssertThrowsError(try MultiStageMerge.plan(MultiStageRecipe.parse(text: bad, file: "multi.yaml"), output: out,
                                                      options: PlannerOptions(workingDirectory: root))) { error in
            XCTAssertTrue("\(error)".contains("layer_range"), "\(error)")
        }
    }

    func assertError(_ text: String, line: Int, column: Int, mentions: [String], file: StaticString = #filePath, l: UInt = #line) {
        XCTAssertThrowsError(try MultiStageRecipe.parse(text: text, file: "multi.yaml"), file: file, line: l) { error in
            XCTAssertTrue("\(error)".hasPrefix("multi.yaml:\(line):\(column): error:"), "\(error)", file: file, line: l)
            for m in mentions { XCTAssertTrue("\(error)".contains(m), "\(error) should mention \(m)", file: file, line: l) }
        }
    }

    func testStageErrorsPointAtTheirLines() {
        let stage = { (name: String?, reads: String) in
            (name.map { "name: \($0)\n" } ?? "") + "merge_method: passthrough\nmodels:\n- model: \(reads)\n"
        }
        // A cycle: reported at the reference that closes it.
        assertError(stage("a", "b") + "---\n" + stage("b", "a") + "---\n" + stage(nil, "a"), line: 9, column: 10,
                    mentions: ["cycle", "a → b → a"])
        // A name used twice.
        assertError(stage("a", "models/base") + "---\n" + stage("a", "models/ft") + "---\n" + stage(nil, "a"), line: 6, column: 7,
                    mentions: ["`a`", "already used at line 1"])
        // Two documents without a name.
        assertError(stage(nil, "models/base") + "---\n" + stage(nil, "models/ft"), line: 5, column: 1,
                    mentions: ["no `name:`", "line 1"])
        // Every document named: no final stage.
        assertError(stage("a", "models/base") + "---\n" + stage("b", "a"), line: 6, column: 7, mentions: ["final stage"])
        // A name that cannot be a folder.
        assertError(stage("x/y", "models/base") + "---\n" + stage(nil, "x/y"), line: 1, column: 7, mentions: ["`x/y`", "folder"])
        // An error inside a later document keeps its line in the file.
        assertError(stage("a", "models/base") + "---\nmerge_method: linear\nmodels: 3\n", line: 7, column: 9, mentions: ["models"])
    }

    /// A misspelt stage name is a missing model whose message suggests the stage.
    func testUnknownStageNameSuggestsTheClosest() throws {
        let text = "name: stage-one\nmerge_method: passthrough\nmodels: [{model: models/base}]\n---\n"
            + "merge_method: passthrough\nmodels:\n- model: stage-on\n"
        XCTAssertThrowsError(try MultiStageMerge.plan(MultiStageRecipe.parse(text: text, file: "multi.yaml"), output: "/tmp/x",
                                                      options: PlannerOptions(workingDirectory: root))) { error in
            XCTAssertTrue("\(error)".hasPrefix("multi.yaml:7:10: error:"), "\(error)")
            XCTAssertTrue("\(error)".contains("did you mean stage `stage-one`"), "\(error)")
        }
    }
}
