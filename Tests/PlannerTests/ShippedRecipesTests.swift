import Architectures
import Checkpoints
import Foundation
import Inference
import Planner
import Recipes
import TestSupport
import Tokenization
import XCTest

/// Every recipe shipped in recipes/ runs on parents made by `crucible synth` (tiny preset), as docs/methods.md promises.
final class ShippedRecipesTests: XCTestCase {
    func testEveryShippedRecipeMergesSyntheticParents() throws {
        let dir = Fixtures.temporaryFolder("shipped").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SyntheticCheckpoint.write(arch: "llama", preset: "tiny", seed: 1, dtype: .bf16, to: dir + "/parents/base")
        // With its byte-level tokenizer, as `crucible synth` writes it (tokenizer-union.yml merges vocabularies).
        try SyntheticTokenizer.write(vocabularySize: SyntheticCheckpoint.presets["tiny"]!.vocab, into: dir + "/parents/base")
        for (i, ft) in ["ft1", "ft2", "ft3"].enumerated() {
            try SyntheticCheckpoint.writeFineTune(of: dir + "/parents/base", delta: 0.02, seed: UInt64(10 + i), dtype: nil, to: dir + "/parents/" + ft)
        }
        let recipesDir = Fixtures.packageRoot.appendingPathComponent("recipes").path
        let files = try FileManager.default.contentsOfDirectory(atPath: recipesDir).filter { $0.hasSuffix(".yml") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 15)
        var methods = Set<String>()
        var digests: [String: String] = [:]
        for f in files {
            let recipe = try RecipeParser.parse(file: recipesDir + "/" + f)
            let plan = try MergePlanner.plan(recipe, options: PlannerOptions(threads: 2, workingDirectory: dir))
            let out = dir + "/out-" + f
            _ = try PlanExecutor.execute(plan, outputPath: out)
            let merged = try CheckpointFolder(path: out)
            XCTAssertFalse(merged.tensorNames.isEmpty, f)
            digests[f] = try SHA256.hex(fileAt: out + "/model.safetensors")
            for name in merged.tensorNames {
                let values = try merged.readAllFloats(name)
                XCTAssertTrue(values.allSatisfy(\.isFinite), "\(f): \(name) has non-finite values")
            }
            methods.insert(plan.method.name)
        }
        XCTAssertTrue(methods.isSuperset(of: ["linear", "slerp", "passthrough", "ties", "dare_ties"]), "\(methods)")

        // Every output is byte-identical to the one recorded when the recipes were added or last changed on purpose
        // (Tests/References/recipe-outputs.sha256): refactoring a method or the executor must not move a single bit.
        let recorded = try String(contentsOfFile: Fixtures.packageRoot.appendingPathComponent("Tests/References/recipe-outputs.sha256").path,
                                  encoding: .utf8)
        var expected: [String: String] = [:]
        for line in recorded.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count == 2 { expected[String(parts[1])] = String(parts[0]) }
        }
        XCTAssertEqual(Set(expected.keys), Set(files), "every shipped recipe has a recorded digest")
        for f in files {
            XCTAssertEqual(digests[f], expected[f], "\(f): the merged model.safetensors changed; if on purpose, record the new sha256")
        }
        if ProcessInfo.processInfo.environment["CRUCIBLE_PRINT_RECIPE_DIGESTS"] != nil {
            print(files.map { "\(digests[$0]!) \($0)" }.joined(separator: "\n"))
        }
    }

    /// Every recipe in recipes/families/ merges parents of its family made by `crucible synth`, through the family's
    /// own definition (not inferred), and the engine runs the output.
    func testEveryFamilyRecipeMergesSyntheticParentsAndRuns() throws {
        let dir = Fixtures.temporaryFolder("shipped-families").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let families = ["qwen3": "qwen3", "gemma2": "gemma2", "gemma3": "gemma3_text", "phi3": "phi3", "smollm3": "smollm3"]
        for (prefix, arch) in families {
            try SyntheticCheckpoint.write(arch: arch, preset: "tiny", seed: 4, dtype: .bf16, to: dir + "/parents/\(prefix)-base")
            for (i, ft) in ["ft1", "ft2"].enumerated() {
                try SyntheticCheckpoint.writeFineTune(of: dir + "/parents/\(prefix)-base", delta: 0.02, seed: UInt64(30 + i), dtype: nil,
                                                      to: dir + "/parents/\(prefix)-\(ft)")
            }
        }
        let recipesDir = Fixtures.packageRoot.appendingPathComponent("recipes/families").path
        let files = try FileManager.default.contentsOfDirectory(atPath: recipesDir).filter { $0.hasSuffix(".yml") }.sorted()
        var covered = Set<String>()
        for f in files {
            let prefix = String(f.prefix { $0 != "-" })
            let arch = try XCTUnwrap(families[prefix], "\(f): name a recipe after its family")
            let plan = try MergePlanner.plan(try RecipeParser.parse(file: recipesDir + "/" + f),
                                             options: PlannerOptions(threads: 2, workingDirectory: dir))
            XCTAssertTrue(plan.models.allSatisfy { $0.architecture.name == arch && !$0.architecture.isInferred }, f)
            let out = dir + "/out-" + f
            _ = try PlanExecutor.execute(plan, outputPath: out)
            let model = try LanguageModel(folder: out, threads: 2)
            XCTAssertEqual(model.config.modelType, arch, f)
            let logits = try model.forward([1, 40, 41, 42, 43])
            XCTAssertTrue(logits.values.allSatisfy(\.isFinite), f)
            covered.insert(prefix)
        }
        XCTAssertEqual(covered, Set(families.keys), "one recipe per family")
    }
}
