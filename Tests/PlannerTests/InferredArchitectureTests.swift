import Architectures
import Checkpoints
import Foundation
import Planner
import Recipes
import TestSupport
import XCTest

/// Architectures without a table are inferred from tensor names, so they still merge (mergekit's universal support).
final class InferredArchitectureTests: XCTestCase {
    /// A copy of a fixture checkpoint that claims an architecture Crucible has no table for.
    func unknownArchitectureCopy(of model: String, in dir: URL) throws -> String {
        let folder = dir.appendingPathComponent(model + "-unknown").path
        try FileManager.default.copyItem(atPath: Fixtures.fixture("models/" + model), toPath: folder)
        var config = try XCTUnwrap(JSONValue.parse(file: folder + "/config.json").objectValue, "\(model)'s config.json is not a JSON object")
        config["architectures"] = .array([.string("NovelForCausalLM")])
        config["model_type"] = .string("novel")
        try JSONValue.object(config).serialized().write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
        return folder
    }

    func testUnknownArchitectureIsInferredFromTensorNames() throws {
        let dir = Fixtures.temporaryFolder("inferred")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try CheckpointFolder(path: Fixtures.fixture("models/llama-base"))
        let def = try XCTUnwrap(ArchitectureRegistry.inferred(config: source.config, tensorNames: Set(source.tensorNames)))
        XCTAssertEqual(def.layerCount(in: JSONObject()), 4)
        XCTAssertEqual(def.layerWeights.count, 9)
        XCTAssertEqual(def.preWeights.map(\.name), ["model.embed_tokens.weight"])
        XCTAssertEqual(def.postWeights.map(\.name), ["model.norm.weight", "lm_head.weight"])
        XCTAssertEqual(Set(def.allWeightNames(layers: 4)), Set(source.tensorNames))

        // A frankenmerge of the renamed model equals mergekit's output for the real one, bit for bit.
        let renamed = try unknownArchitectureCopy(of: "llama-base", in: dir)
        let recipe = writeRecipe("""
            merge_method: passthrough
            slices:
              - sources: [{model: \(renamed), layer_range: [0, 3]}]
              - sources: [{model: \(renamed), layer_range: [1, 4]}]
            dtype: float32
            """)
        let (plan, output) = try runRecipe(recipe)
        XCTAssertTrue(plan.warnings.contains { $0.contains("inferred from tensor names") }, "\(plan.warnings)")
        let ours = try loadTensors(output + "/model.safetensors")
        let reference = try loadTensors(Fixtures.fixture("merges/passthrough-frankenmerge/output/model.safetensors"))
        XCTAssertEqual(Set(ours.keys), Set(reference.keys))
        for (name, r) in reference { XCTAssertEqual(ours[name]!.values, r.values, name) }
        XCTAssertEqual(try JSONValue.parse(file: output + "/config.json")["num_hidden_layers"]?.intValue, 6)
    }

    func testInferredTiedModelTakesItsHeadFromTheEmbedding() throws {
        let source = try CheckpointFolder(path: Fixtures.fixture("models/llama-tied"))
        let def = try XCTUnwrap(ArchitectureRegistry.inferred(config: source.config, tensorNames: Set(source.tensorNames)))
        let head = try XCTUnwrap(def.postWeights.first { $0.name == "lm_head.weight" })
        XCTAssertTrue(head.optional)
        XCTAssertEqual(head.tiedTo, "model.embed_tokens.weight")
    }
}
