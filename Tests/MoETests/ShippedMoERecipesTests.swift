import Architectures
import Checkpoints
import Foundation
import Inference
import MoE
import Recipes
import TestSupport
import Tokenization
import XCTest

/// Every MoE recipe in recipes/moe/ plans (the `--dry-run` output) and builds on parents made by `crucible synth`,
/// and the engine runs what it builds.
final class ShippedMoERecipesTests: XCTestCase {
    func testEveryShippedMoERecipePlansBuildsAndRuns() throws {
        let dir = Fixtures.temporaryFolder("shipped-moe").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SyntheticCheckpoint.write(arch: "llama", preset: "tiny", seed: 1, dtype: .bf16, to: dir + "/parents/base")
        try SyntheticTokenizer.write(vocabularySize: SyntheticCheckpoint.presets["tiny"]!.vocab, into: dir + "/parents/base")
        for (i, ft) in ["ft1", "ft2", "ft3"].enumerated() {
            try SyntheticCheckpoint.writeFineTune(of: dir + "/parents/base", delta: 0.02, seed: UInt64(10 + i), dtype: nil, to: dir + "/parents/" + ft)
        }
        // Qwen3 parents for the Qwen3-MoE recipe.
        try SyntheticCheckpoint.write(arch: "qwen3", preset: "tiny", seed: 2, dtype: .bf16, to: dir + "/parents/qwen3-base")
        try SyntheticTokenizer.write(vocabularySize: SyntheticCheckpoint.presets["tiny"]!.vocab, into: dir + "/parents/qwen3-base")
        for (i, ft) in ["qwen3-ft1", "qwen3-ft2"].enumerated() {
            try SyntheticCheckpoint.writeFineTune(of: dir + "/parents/qwen3-base", delta: 0.02, seed: UInt64(20 + i), dtype: nil,
                                                  to: dir + "/parents/" + ft)
        }
        let recipesDir = Fixtures.packageRoot.appendingPathComponent("recipes/moe").path
        let files = try FileManager.default.contentsOfDirectory(atPath: recipesDir).filter { $0.hasSuffix(".yml") }.sorted()
        var modes = Set<String>(), outputs = Set<String>()
        for f in files {
            let recipe = try MoERecipeParser.parse(file: recipesDir + "/" + f)
            XCTAssertTrue(recipe.warnings.isEmpty, "\(f): \(recipe.warnings)")
            var options = MoEOptions(threads: 2)
            options.workingDirectory = dir
            let plan = try MoEPlanner.plan(recipe, options: options)
            let description = plan.describe()
            XCTAssertTrue(description.contains("peak memory (estimate):"), f)
            XCTAssertTrue(description.contains("gate_mode \(recipe.gateMode.rawValue)"), f)
            let out = dir + "/out-" + f
            _ = try MoEBuilder.build(plan, outputPath: out)
            let model = try LanguageModel(path: out, threads: 2)
            XCTAssertEqual(model.config.experts?.count, recipe.experts.count, f)
            let logits = try model.forward([1, 40, 41, 42, 43])
            XCTAssertTrue(logits.values.allSatisfy(\.isFinite), f)
            modes.insert(recipe.gateMode.rawValue)
            outputs.insert(plan.output.name)
        }
        XCTAssertEqual(modes, Set(MoEGateMode.allCases.map(\.rawValue)), "one recipe per gate mode")
        XCTAssertEqual(outputs, Set(MoEOutputs.all.map(\.name)), "one recipe per output architecture")
    }
}
