import Architectures
import Checkpoints
import Foundation
import Inference
import Planner
import TestSupport
import XCTest

/// The merges of `archs/merges` (Qwen3, Gemma 2, Gemma 3) against mergekit 0.1.5, within MANIFEST.md's tolerances, and
/// the depth-growing frankenmerges mergekit fails on: their `layer_types` must follow the new depth.
extension FixtureMergeTests {
    func testQwen3MergesMatchMergekit() throws {
        try check("qwen3-linear", .relative(1e-6), set: "archs/")
        try check("qwen3-ties", .relative(1e-6), set: "archs/")
        try check("qwen3-passthrough", .bitExact, set: "archs/")
    }

    func testQwen3GrowingFrankenmergeWritesALoadableConfig() throws {
        try checkGrowingMerge("qwen3-passthrough-grow", layerTypes: ["full_attention", "full_attention", "full_attention"])
    }

    /// A passthrough that grows the model (mergekit 0.1.5 leaves `layer_types` at the old length, which transformers
    /// rejects): the output's `layer_types` has one entry per output layer, continuing the parents' pattern by position
    /// (the expectation checked once with transformers 5.24's config classes), and the engine runs the result.
    func checkGrowingMerge(_ name: String, layerTypes: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = Fixtures.fixture("archs/merges/\(name)")
        let (plan, output) = try runRecipe(dir + "/recipe.yaml", workingDirectory: Fixtures.fixture("archs/"))
        defer { try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent) }
        let config = try JSONValue.parse(file: output + "/config.json")
        XCTAssertEqual(config["num_hidden_layers"]?.intValue, layerTypes.count, file: file, line: line)
        XCTAssertEqual(config["layer_types"], .array(layerTypes.map { .string($0) }), "\(name): layer_types", file: file, line: line)
        let family = String(name.prefix { $0 != "-" })
        XCTAssertEqual(plan.models.map(\.architecture.name), [family, family], "\(name): the definition's table, not inference",
                       file: file, line: line)
        let model = try LanguageModel(folder: output, threads: 2)
        XCTAssertEqual(model.config.layerCount, layerTypes.count, file: file, line: line)
        let logits = try model.forward([1, 5, 9, 14])
        XCTAssertTrue(logits.values.allSatisfy { $0.isFinite }, file: file, line: line)
    }
}
