import Architectures
import Checkpoints
import Foundation
import Planner
import Recipes
import TestSupport
import XCTest

/// Bad recipes and bad parents fail with a clear error (file, line or tensor) and leave no output behind.
final class BadInputTests: XCTestCase {
    var work: String = ""

    override func setUpWithError() throws {
        work = Fixtures.temporaryFolder("bad").path
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: work)
    }

    var base: String { Fixtures.fixture("models/llama-base") }
    var ft1: String { Fixtures.fixture("models/llama-ft1") }

    /// Runs the recipe through parse → plan → execute; returns the error text. Asserts nothing was left behind.
    func failure(_ recipe: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        let path = work + "/recipe.yml"
        try! recipe.write(toFile: path, atomically: true, encoding: .utf8)
        let out = work + "/out"
        do {
            let parsed = try RecipeParser.parse(file: path)
            let plan = try MergePlanner.plan(parsed, options: PlannerOptions(workingDirectory: work))
            _ = try PlanExecutor.execute(plan, outputPath: out)
            XCTFail("expected an error", file: file, line: line)
            return ""
        } catch {
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "an output folder was left behind", file: file, line: line)
            XCTAssertEqual(leftovers(in: work), [], "a partial folder was left behind", file: file, line: line)
            return "\(error)"
        }
    }

    func testMalformedYAMLNamesTheLine() {
        let e = failure("merge_method: linear\nmodels:\n  - model: [unclosed\n")
        XCTAssertTrue(e.contains("recipe.yml:"), e)
    }

    func testUnknownMethodNamesTheLineAndSuggests() {
        let e = failure("models:\n  - model: \(base)\n    parameters: {weight: 1}\nmerge_method: slerpp\n")
        XCTAssertTrue(e.contains("recipe.yml:4:"), e)
        XCTAssertTrue(e.contains("slerpp") && e.contains("'slerp'"), e)
    }

    func testSlerpWithoutBaseModelIsRefused() {
        let e = failure("merge_method: slerp\nmodels:\n  - model: \(base)\n  - model: \(ft1)\nparameters: {t: 0.5}\n")
        XCTAssertTrue(e.contains("recipe.yml:1:") && e.contains("base_model"), e)
    }

    func testLayerRangeOutOfBoundsNamesTheLine() {
        let e = failure("""
            merge_method: passthrough
            slices:
              - sources:
                  - model: \(base)
                    layer_range: [2, 9]
            """)
        XCTAssertTrue(e.contains("recipe.yml:5:") && e.contains("out of bounds") && e.contains("4 layers"), e)
    }

    func testSlicesOfUnequalLengthAreRefused() {
        let e = failure("""
            merge_method: slerp
            base_model: \(base)
            slices:
              - sources:
                  - model: \(base)
                    layer_range: [0, 2]
                  - model: \(ft1)
                    layer_range: [0, 3]
            parameters: {t: 0.5}
            """)
        XCTAssertTrue(e.contains("recipe.yml:8:") && e.contains("same number of layers"), e)
    }

    func testParentsOfDifferentArchitecturesAreRefused() {
        let e = failure("""
            merge_method: linear
            models:
              - model: \(base)
                parameters: {weight: 1}
              - model: \(Fixtures.fixture("models/qwen2-base"))
                parameters: {weight: 1}
            """)
        XCTAssertTrue(e.contains("qwen2") && e.contains("llama") && e.contains("recipe.yml:5:"), e)
    }

    func testParentsOfDifferentShapesAreRefused() {
        // Same architecture, same layer count, different widths: refused before any data is read.
        let other = work + "/wide"
        try! SyntheticCheckpoint.write(arch: "llama", preset: "tiny", seed: 1, dtype: .f32, to: other)
        let narrow = work + "/narrow"
        try! FileManager.default.copyItem(atPath: base, toPath: narrow)
        let e = failure("""
            merge_method: linear
            models:
              - model: \(narrow)
                parameters: {weight: 1}
              - model: \(other)
                parameters: {weight: 1}
            """)
        // The embedding is the first tensor planned; its hidden width differs, which no tokenizer setting could align.
        XCTAssertTrue(e.contains("parents disagree on its shape") && e.contains("[512, 32]") && e.contains("[512, 64]"), e)
    }

    func testTruncatedSafetensorsNamesTheFile() throws {
        let broken = work + "/truncated"
        try FileManager.default.copyItem(atPath: base, toPath: broken)
        let file = broken + "/model.safetensors"
        let data = fileBytes(file)
        try data.prefix(data.count - 1000).write(to: URL(fileURLWithPath: file))
        let e = failure("merge_method: linear\nmodels:\n  - model: \(broken)\n    parameters: {weight: 1}\n  - model: \(base)\n    parameters: {weight: 1}\n")
        XCTAssertTrue(e.contains(file) && e.contains("truncated"), e)
    }

    /// A header whose spans overlap, or run past the end of the file, is refused naming the tensors.
    func testHeaderWithOverlappingOrOutOfFileSpansIsRefused() throws {
        for (label, spans, expect) in [("overlap", [(0, 64), (32, 96)], "overlap"), ("past-end", [(0, 64), (64, 4096)], "truncated")] {
            let folder = work + "/" + label
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: base + "/config.json", toPath: folder + "/config.json")
            var header = "{"
            for (i, s) in spans.enumerated() {
                header += "\"t\(i)\":{\"dtype\":\"F32\",\"shape\":[\((s.1 - s.0) / 4)],\"data_offsets\":[\(s.0),\(s.1)]}" + (i + 1 < spans.count ? "," : "")
            }
            header += "}"
            var bytes = Data()
            var n = UInt64(header.utf8.count)
            withUnsafeBytes(of: &n) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: Array(header.utf8))
            bytes.append(Data(count: 96))
            try bytes.write(to: URL(fileURLWithPath: folder + "/model.safetensors"))
            let e = failure("merge_method: linear\nmodels:\n  - model: \(folder)\n    parameters: {weight: 1}\n")
            XCTAssertTrue(e.contains(folder + "/model.safetensors") && e.contains(expect), "\(label): \(e)")
            XCTAssertTrue(e.contains("t0") && e.contains("t1") || label == "past-end" && e.contains("t1"), "\(label): \(e)")
        }
    }

    func testMissingTensorIsNamed() throws {
        let folder = work + "/missing"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: base + "/config.json", toPath: folder + "/config.json")
        let src = try SafetensorsFile(path: base + "/model.safetensors")
        let dropped = "model.layers.2.mlp.up_proj.weight"
        let keep = src.tensorNames.filter { $0 != dropped }
        let writer = try SafetensorsWriter(path: folder + "/model.safetensors",
                                           entries: keep.map { .init(name: $0, dtype: .f32, shape: src.info($0)!.shape) })
        for name in keep { try writer.write(name, bytes: try src.rawBytes(name)!) }
        try writer.finish()
        let e = failure("merge_method: linear\nmodels:\n  - model: \(base)\n    parameters: {weight: 1}\n  - model: \(folder)\n    parameters: {weight: 1}\n")
        XCTAssertTrue(e.contains(dropped) && e.contains(folder), e)
    }

    func testOutputFolderThatCannotBeWrittenIsReported() throws {
        let recipe = try RecipeParser.parse(file: Fixtures.fixture("merges/linear-normalized/recipe.yaml"))
        let plan = try MergePlanner.plan(recipe, options: PlannerOptions(workingDirectory: Fixtures.fixture("")))
        // Parent is a regular file.
        let file = work + "/a-file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try PlanExecutor.execute(plan, outputPath: file + "/out")) { e in
            XCTAssertTrue("\(e)".contains(file), "\(e)")
        }
        // Output path is an existing file.
        XCTAssertThrowsError(try PlanExecutor.execute(plan, outputPath: file)) { e in
            XCTAssertTrue("\(e)".contains("not a folder"), "\(e)")
        }
        // Existing non-empty folder without --overwrite: refused, and left untouched.
        let existing = work + "/existing"
        try FileManager.default.createDirectory(atPath: existing, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: existing + "/note.txt"))
        XCTAssertThrowsError(try PlanExecutor.execute(plan, outputPath: existing)) { e in
            XCTAssertTrue("\(e)".contains("--overwrite"), "\(e)")
        }
        XCTAssertEqual(fileBytes(existing + "/note.txt"), Data("keep".utf8))
        XCTAssertEqual(leftovers(in: work), [])
        // With overwrite, it is replaced only by a complete merge.
        _ = try PlanExecutor.execute(plan, outputPath: existing, options: ExecutionOptions(overwrite: true))
        XCTAssertFalse(FileManager.default.fileExists(atPath: existing + "/note.txt"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: existing + "/model.safetensors"))
        XCTAssertEqual(leftovers(in: work), [])
    }

    func testMissingRequiredParameterNamesTheModel() {
        let e = failure("merge_method: linear\nmodels:\n  - model: \(base)\n    parameters: {weight: 1}\n  - model: \(ft1)\n")
        XCTAssertTrue(e.contains("weight") && e.contains("recipe.yml:5:"), e)
    }
}
