import Architectures
import Checkpoints
import Foundation
import Numerics
import Planner
import Recipes
import TestSupport
import XCTest

/// Reproducibility, dtype handling, dry runs and output layout.
final class MergeBehaviourTests: XCTestCase {
    func testOutputIsByteIdenticalWhateverTheThreadCount() throws {
        for name in ["ties", "slerp-gradient-filters", "dare-ties"] {
            let recipe = Fixtures.fixture("merges/\(name)/recipe.yaml")
            let (_, one) = try runRecipe(recipe, seed: 3, threads: 1)
            let (_, four) = try runRecipe(recipe, seed: 3, threads: 4)
            XCTAssertEqual(fileBytes(one + "/model.safetensors"), fileBytes(four + "/model.safetensors"), name)
        }
    }

    func testRandomMethodsAreSeeded() throws {
        let recipe = Fixtures.fixture("merges/dare-linear/recipe.yaml")
        let a = try runRecipe(recipe, seed: 11).output
        let b = try runRecipe(recipe, seed: 11).output
        let c = try runRecipe(recipe, seed: 12).output
        XCTAssertEqual(fileBytes(a + "/model.safetensors"), fileBytes(b + "/model.safetensors"), "same seed, same bytes")
        XCTAssertNotEqual(fileBytes(a + "/model.safetensors"), fileBytes(c + "/model.safetensors"), "another seed, other bytes")
    }

    func testEveryParentDTypeMergesAndTheOutputDTypeFollowsTheRecipe() throws {
        for (out, expected) in [("bfloat16", DType.bf16), ("float16", .f16), ("float32", .f32)] {
            let recipe = writeRecipe("""
                merge_method: linear
                models:
                  - model: \(Fixtures.fixture("models/llama-base-bf16"))
                    parameters: {weight: 1.0}
                  - model: \(Fixtures.fixture("models/llama-base-f16"))
                    parameters: {weight: 1.0}
                  - model: \(Fixtures.fixture("models/llama-base"))
                    parameters: {weight: 1.0}
                out_dtype: \(out)
                """)
            let (_, output) = try runRecipe(recipe)
            let tensors = try loadTensors(output + "/model.safetensors")
            let ref = try loadTensors(Fixtures.fixture("models/llama-base/model.safetensors"))
            XCTAssertTrue(tensors.values.allSatisfy { $0.dtype == expected }, out)
            // The three parents are the same weights in three precisions: their mean is within half-precision rounding.
            for (name, r) in ref {
                XCTAssertLessThan(relativeError(tensors[name]!.values, r.values), 5e-3, "\(out): \(name)")
            }
            let config = try JSONValue.parse(file: output + "/config.json")
            XCTAssertEqual(config["dtype"]?.stringValue ?? config["torch_dtype"]?.stringValue, out)
        }
    }

    func testDryRunPrintsTheResolvedPlanWithoutWriting() throws {
        let recipe = try RecipeParser.parse(file: Fixtures.fixture("merges/slerp-gradient-filters/recipe.yaml"))
        let plan = try MergePlanner.plan(recipe, options: PlannerOptions(workingDirectory: Fixtures.fixture("")))
        let text = plan.describe()
        // Layer 1 of 4: t = 1/3 → attention gradient [0, .5, .3, .7, 1] at s = 4/3 → 0.5 + (1/3)(0.3 − 0.5) = 0.4333.
        XCTAssertTrue(text.contains("model.layers.1.self_attn.q_proj.weight [32, 32] F32 <- slerp (layer 1, position 0.3333) {t: 0.43333"), text)
        XCTAssertTrue(text.contains("model.embed_tokens.weight [512, 32] F32 <- slerp {t: 0.5}"))
        XCTAssertTrue(text.contains("peak memory (estimate)"))
        XCTAssertEqual(plan.tasks.count, 39)
        // The bytes to write are the tensor data of mergekit's output for the same recipe.
        let reference = try SafetensorsFile(path: Fixtures.fixture("merges/slerp-gradient-filters/output/model.safetensors"))
        XCTAssertEqual(plan.estimate.bytesWritten, reference.mapped.size - reference.dataStart)
        XCTAssertGreaterThan(plan.estimate.bytesRead, plan.estimate.bytesWritten)
    }

    func testSlicesRewriteTheLayerCountAndPerLayerConfigArrays() throws {
        // A parent whose config carries a per-layer array.
        let parent = Fixtures.temporaryFolder("parent").path
        let src = Fixtures.fixture("models/llama-base")
        for f in ["model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            try FileManager.default.copyItem(atPath: src + "/" + f, toPath: parent + "/" + f)
        }
        guard case var .object(cfg) = try JSONValue.parse(file: src + "/config.json") else { return XCTFail() }
        cfg["layer_types"] = .array(["a", "b", "c", "d"].map { .string($0) })
        try JSONValue.object(cfg).serialized().write(toFile: parent + "/config.json", atomically: true, encoding: .utf8)
        let recipe = writeRecipe("""
            merge_method: passthrough
            slices:
              - sources: [{model: \(parent), layer_range: [0, 3]}]
              - sources: [{model: \(parent), layer_range: [1, 4]}]
            """)
        let (plan, output) = try runRecipe(recipe)
        let config = try JSONValue.parse(file: output + "/config.json")
        XCTAssertEqual(config["num_hidden_layers"]?.intValue, 6)
        XCTAssertEqual(config["layer_types"]?.arrayValue?.compactMap(\.stringValue), ["a", "b", "c", "b", "c", "d"])
        XCTAssertEqual(plan.tasks.filter { $0.outputName.hasPrefix("model.layers.5.") }.first?.inputs.first?.tensorName.hasPrefix("model.layers.3."), true)
    }

    func testShardsFollowTheSizeLimitWithAnIndexTransformersReads() throws {
        let recipe = try RecipeParser.parse(file: Fixtures.fixture("merges/linear-normalized/recipe.yaml"))
        var options = PlannerOptions(workingDirectory: Fixtures.fixture(""))
        options.shardSize = 100_000
        let plan = try MergePlanner.plan(recipe, options: options)
        XCTAssertGreaterThan(plan.shardFiles.count, 1)
        XCTAssertEqual(plan.shardFiles.first, String(format: "model-00001-of-%05d.safetensors", plan.shardFiles.count))
        let out = Fixtures.temporaryFolder("shards").appendingPathComponent("out").path
        _ = try PlanExecutor.execute(plan, outputPath: out)
        let index = try JSONValue.parse(file: out + "/model.safetensors.index.json")
        let map = try XCTUnwrap(index["weight_map"]?.objectValue)
        XCTAssertEqual(map.count, plan.tasks.count)
        XCTAssertEqual(index["metadata"]?["total_size"]?.intValue, plan.tasks.reduce(0) { $0 + $1.outputBytes })
        // The sharded output reads back as one checkpoint equal to the single-file merge.
        let sharded = try CheckpointFolder(path: out)
        let single = try loadTensors(Fixtures.fixture("merges/linear-normalized/output/model.safetensors"))
        for (name, r) in single {
            XCTAssertLessThanOrEqual(relativeError(try sharded.readAllFloats(name), r.values), 1e-6, name)
        }
        for f in plan.shardFiles {
            let size = (try FileManager.default.attributesOfItem(atPath: out + "/" + f)[.size] as? Int) ?? 0
            XCTAssertGreaterThan(size, 0)
        }
    }

    func testModelCardHoldsTheRecipe() throws {
        let (_, output) = try runRecipe(Fixtures.fixture("merges/ties/recipe.yaml"))
        let card = try String(contentsOfFile: output + "/README.md", encoding: .utf8)
        let recipe = try String(contentsOfFile: Fixtures.fixture("merges/ties/recipe.yaml"), encoding: .utf8)
        XCTAssertTrue(card.hasPrefix("---\n"))
        XCTAssertTrue(card.contains(recipe), "the card quotes the recipe verbatim")
        XCTAssertTrue(card.contains("models/llama-base as the base"))
        XCTAssertEqual(try String(contentsOfFile: output + "/mergekit_config.yml", encoding: .utf8), recipe)
    }

    func testSyntheticParentsAreReproducibleAndMerge() throws {
        let dir = Fixtures.temporaryFolder("synth").path
        try SyntheticCheckpoint.write(arch: "llama", preset: "tiny", seed: 5, dtype: .bf16, to: dir + "/a")
        try SyntheticCheckpoint.write(arch: "llama", preset: "tiny", seed: 5, dtype: .bf16, to: dir + "/b")
        try SyntheticCheckpoint.writeFineTune(of: dir + "/a", delta: 0.02, seed: 6, dtype: nil, to: dir + "/ft")
        XCTAssertEqual(fileBytes(dir + "/a/model.safetensors"), fileBytes(dir + "/b/model.safetensors"))
        let base = try CheckpointFolder(path: dir + "/a"), ft = try CheckpointFolder(path: dir + "/ft")
        let w = try base.readAllFloats("model.layers.0.mlp.up_proj.weight"), v = try ft.readAllFloats("model.layers.0.mlp.up_proj.weight")
        let rms = (w.reduce(0.0) { $0 + Double($1 * $1) } / Double(w.count)).squareRoot()
        let diff = (zip(w, v).reduce(0.0) { $0 + Double(($1.1 - $1.0) * ($1.1 - $1.0)) } / Double(w.count)).squareRoot()
        XCTAssertEqual(diff / rms, 0.02, accuracy: 0.004, "the fine-tune moves each tensor by about delta × rms")
        let recipe = writeRecipe("""
            merge_method: slerp
            base_model: \(dir)/a
            models: [{model: \(dir)/a}, {model: \(dir)/ft}]
            parameters: {t: 0.5}
            """)
        let (_, output) = try runRecipe(recipe)
        let merged = try CheckpointFolder(path: output)
        XCTAssertEqual(merged.tensorNames.count, base.tensorNames.count)
        XCTAssertEqual(merged.info("model.embed_tokens.weight")?.dtype, .bf16)
    }

    func testFineTunesKeepTheirBaseTokenizer() throws {
        let dir = Fixtures.temporaryFolder("ft-tokenizer").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SyntheticCheckpoint.writeFineTune(of: Fixtures.fixture("models/llama-base"), delta: 0.01, seed: 1, dtype: .bf16, to: dir + "/ft")
        XCTAssertEqual(fileBytes(dir + "/ft/tokenizer.json"), fileBytes(Fixtures.fixture("models/llama-base/tokenizer.json")))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/ft/tokenizer_config.json"))
        XCTAssertEqual(try CheckpointFolder(path: dir + "/ft").info("model.norm.weight")?.dtype, .bf16)
    }
}
