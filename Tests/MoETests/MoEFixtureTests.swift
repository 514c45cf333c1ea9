import Checkpoints
import Foundation
import Inference
import MoE
import Planner
import Recipes
import TestSupport
import XCTest

/// Crucible's MoE outputs against mergekit-moe 0.1.5's, from the same recipes (fixtures `moe/` and `archs/moe/`).
final class MoEFixtureTests: XCTestCase {
    /// Mixtral outputs: every tensor but the routers bit-identical (mergekit's fused experts split per expert), the
    /// routers within the manifest's tolerance of the float32 reference, and the same config.
    func testMixtralOutputsReproduceMergekitMoE() throws {
        for (recipe, routerTolerance) in [("moe-cheap-embed", Float(1e-6)), ("moe-hidden", 1e-5), ("moe-hidden-negative", 1e-5)] {
            let dir = Fixtures.fixture("moe/\(recipe)")
            let (_, report, out) = try buildMoE(recipe: dir + "/recipe.yaml", workingDirectory: Fixtures.fixture(""))
            defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
            let ours = try CheckpointFolder(path: out.path)
            let theirs = try SafetensorsFile(path: dir + "/output/model.safetensors")
            let f32Routers = FileManager.default.fileExists(atPath: dir + "/router_f32_reference.safetensors")
                ? try SafetensorsFile(path: dir + "/router_f32_reference.safetensors") : nil
            var routers = 0, experts = 0, copied = 0
            for name in theirs.tensorNames {
                let info = try XCTUnwrap(theirs.info(name))
                let values = try theirs.readAllFloats(name)
                if name.hasSuffix("mlp.experts.gate_up_proj") || name.hasSuffix("mlp.experts.down_proj") {
                    let layer = name.split(separator: ".")[2]
                    let e = info.shape[0], per = info.elementCount / e
                    for x in 0..<e {
                        let slice = Array(values[(x * per)..<((x + 1) * per)])
                        let prefix = "model.layers.\(layer).block_sparse_moe.experts.\(x)."
                        if name.hasSuffix("down_proj") {
                            XCTAssertEqual(try ours.readAllFloats(prefix + "w2.weight"), slice, "\(recipe): \(prefix)w2")
                        } else {
                            XCTAssertEqual(try ours.readAllFloats(prefix + "w1.weight"), Array(slice[0..<(per / 2)]), "\(recipe): \(prefix)w1")
                            XCTAssertEqual(try ours.readAllFloats(prefix + "w3.weight"), Array(slice[(per / 2)...]), "\(recipe): \(prefix)w3")
                        }
                        experts += 1
                    }
                } else if name.hasSuffix("mlp.gate.weight") {
                    let reference = try f32Routers?.readAllFloats(name) ?? values
                    let mine = try ours.readAllFloats(name.replacingOccurrences(of: "mlp.gate", with: "block_sparse_moe.gate"))
                    XCTAssertLessThanOrEqual(maxAbsDifference(mine, reference), routerTolerance, "\(recipe): \(name)")
                    routers += 1
                } else {
                    XCTAssertEqual(try ours.readAllFloats(name), values, "\(recipe): \(name) must be copied bit-exactly from the base")
                    copied += 1
                }
            }
            XCTAssertEqual(routers, 4, recipe)
            XCTAssertGreaterThan(experts, 0, recipe)
            XCTAssertEqual(copied, 3 + 6 * 4, "\(recipe): embeddings, norm, head and six attention/norm tensors per layer")
            XCTAssertEqual(report.tensors, ours.tensorNames.count)
            XCTAssertEqual(try JSONValue.parse(file: out.path + "/config.json"), try JSONValue.parse(file: dir + "/output/config.json"), recipe)
            let card = try String(contentsOfFile: out.path + "/README.md", encoding: .utf8)
            XCTAssertTrue(card.contains(try String(contentsOfFile: dir + "/recipe.yaml", encoding: .utf8)), "the model card holds the recipe")
            XCTAssertEqual(try String(contentsOfFile: out.path + "/mergekit_moe_config.yml", encoding: .utf8),
                           try String(contentsOfFile: dir + "/recipe.yaml", encoding: .utf8))
        }
    }

    /// `fusedExperts` writes exactly mergekit 0.1.5's names and shapes, and the same bytes outside the routers.
    func testFusedLayoutMatchesMergekitNamesShapesAndBytes() throws {
        let dir = Fixtures.fixture("moe/moe-cheap-embed")
        let (_, _, out) = try buildMoE(recipe: dir + "/recipe.yaml", workingDirectory: Fixtures.fixture(""),
                                       options: MoEOptions(threads: 2, fusedExperts: true))
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        let ours = try CheckpointFolder(path: out.path)
        let theirs = try SafetensorsFile(path: dir + "/output/model.safetensors")
        XCTAssertEqual(Set(ours.tensorNames), Set(theirs.tensorNames))
        for name in theirs.tensorNames {
            XCTAssertEqual(ours.info(name)?.shape, theirs.info(name)?.shape, name)
            let a = try ours.readAllFloats(name), b = try theirs.readAllFloats(name)
            if name.hasSuffix("mlp.gate.weight") {
                XCTAssertLessThanOrEqual(maxAbsDifference(a, b), 1e-6, name)
            } else {
                XCTAssertEqual(a, b, name)
            }
        }
    }

    /// Qwen2-MoE with a shared expert (archs fixture): names, shapes, bytes, routers and config as mergekit writes them.
    func testQwen2MoEOutputReproducesMergekit() throws {
        let dir = Fixtures.fixture("archs/moe/qwen2moe-shared")
        let (plan, _, out) = try buildMoE(recipe: dir + "/recipe.yaml", workingDirectory: Fixtures.fixture("archs"))
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        XCTAssertEqual(plan.output.name, "Qwen MoE")
        let ours = try CheckpointFolder(path: out.path)
        let theirs = try SafetensorsFile(path: dir + "/output/model.safetensors")
        let f32 = try SafetensorsFile(path: dir + "/router_f32_reference.safetensors")
        XCTAssertEqual(Set(ours.tensorNames), Set(theirs.tensorNames))
        for name in theirs.tensorNames {
            let mine = try ours.readAllFloats(name)
            if f32.info(name) != nil {
                XCTAssertLessThanOrEqual(maxAbsDifference(mine, try f32.readAllFloats(name)), 1e-5, name)
            } else {
                XCTAssertEqual(mine, try theirs.readAllFloats(name), name)
            }
        }
        XCTAssertEqual(try JSONValue.parse(file: out.path + "/config.json"), try JSONValue.parse(file: dir + "/output/config.json"))
    }

    /// Qwen3-MoE from Qwen3 parents (archs fixtures, `hidden` and `cheap_embed` gates): mergekit's fused layout and
    /// config, every non-router tensor (q/k norms included) bit-identical, routers within the manifest's tolerance
    /// (hidden: 1e-5 of the float32 reference; cheap_embed: 1e-6), and the engine runs the output to its golden.
    func testQwen3MoEOutputsReproduceMergekit() throws {
        for (recipe, tolerance) in [("qwen3moe-hidden", Float(1e-5)), ("qwen3moe-cheap-embed", 1e-6)] {
            let dir = Fixtures.fixture("archs/moe/\(recipe)")
            let (plan, _, out) = try buildMoE(recipe: dir + "/recipe.yaml", workingDirectory: Fixtures.fixture("archs"))
            defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
            XCTAssertEqual(plan.output.name, "Qwen3 MoE")
            let ours = try CheckpointFolder(path: out.path)
            let theirs = try SafetensorsFile(path: dir + "/output/model.safetensors")
            let reference = FileManager.default.fileExists(atPath: dir + "/router_f32_reference.safetensors")
                ? try SafetensorsFile(path: dir + "/router_f32_reference.safetensors") : theirs
            XCTAssertEqual(Set(ours.tensorNames), Set(theirs.tensorNames), recipe)
            for name in theirs.tensorNames {
                XCTAssertEqual(ours.info(name)?.shape, theirs.info(name)?.shape, "\(recipe) \(name)")
                let mine = try ours.readAllFloats(name)
                if name.hasSuffix("mlp.gate.weight") {
                    XCTAssertLessThanOrEqual(maxAbsDifference(mine, try reference.readAllFloats(name)), tolerance, "\(recipe) \(name)")
                } else {
                    XCTAssertEqual(mine, try theirs.readAllFloats(name), "\(recipe) \(name)")
                }
            }
            XCTAssertEqual(try JSONValue.parse(file: out.path + "/config.json"), try JSONValue.parse(file: dir + "/output/config.json"),
                           recipe)
        }
    }

    /// Every prompt-based gate mode against references made by mergekit's own gate code (float32 model) and, for
    /// `router_input`, by transformers hooks: prompts of different lengths, negative prompts.
    func testEveryPromptGateModeMatchesItsReference() throws {
        let references = try SafetensorsFile(path: crucibleFixture("moe-gates/router-references.safetensors"))
        let base = try String(contentsOfFile: crucibleFixture("moe-gates/recipe.yaml"), encoding: .utf8)
        for mode in ["hidden", "hidden_avg", "cheap_embed", "router_input"] {
            let dir = Fixtures.temporaryFolder("moe-gate-\(mode)")
            defer { try? FileManager.default.removeItem(at: dir) }
            let path = dir.appendingPathComponent("recipe.yaml").path
            try base.replacingOccurrences(of: "gate_mode: hidden_avg", with: "gate_mode: \(mode)").write(toFile: path, atomically: true, encoding: .utf8)
            var options = MoEOptions(threads: 2)
            options.workingDirectory = Fixtures.fixture("")
            let plan = try MoEPlanner.plan(try MoERecipeParser.parse(file: path), options: options)
            XCTAssertEqual(plan.recipe.gateMode.rawValue, mode)
            let model = plan.recipe.gateMode.runsModel ? try LanguageModel(path: plan.context.base.path, threads: 2) : nil
            let gates = try GateRows.compute(plan, model: model)
            for l in 0..<plan.context.layerCount {
                let reference = try references.readAllFloats("\(mode).layers.\(l)")
                XCTAssertLessThanOrEqual(maxAbsDifference(gates.routed[l], reference), 1e-6, "\(mode) layer \(l)")
                for e in 0..<3 {
                    let row = gates.routed[l][(e * 32)..<((e + 1) * 32)]
                    XCTAssertEqual(row.reduce(0) { $0 + Double($1) * Double($1) }, 1, accuracy: 1e-5, "rows are unit vectors")
                }
            }
        }
    }

    /// `random`: standard normal rows, reproducible for a seed and different for another; `uniform_random` stays
    /// within ±1/√hidden. Experts are copied exactly either way.
    func testRandomGatesAreSeededAndDistributedAsSpecified() throws {
        let recipe = Fixtures.fixture("moe/moe-random/recipe.yaml")
        func gates(_ seed: UInt64, mode: String = "random") throws -> GateRows {
            let dir = Fixtures.temporaryFolder("moe-random")
            defer { try? FileManager.default.removeItem(at: dir) }
            let path = dir.appendingPathComponent("recipe.yaml").path
            try String(contentsOfFile: recipe, encoding: .utf8).replacingOccurrences(of: "gate_mode: random", with: "gate_mode: \(mode)")
                .write(toFile: path, atomically: true, encoding: .utf8)
            var options = MoEOptions(seed: seed, threads: 2)
            options.workingDirectory = Fixtures.fixture("")
            return try GateRows.compute(try MoEPlanner.plan(try MoERecipeParser.parse(file: path), options: options), model: nil)
        }
        let a = try gates(7), b = try gates(7), c = try gates(8)
        XCTAssertEqual(a.routed, b.routed)
        XCTAssertNotEqual(a.routed, c.routed)
        let values = a.routed.flatMap { $0 }
        XCTAssertEqual(values.count, 4 * 2 * 32)
        let mean = values.reduce(0) { $0 + Double($1) } / Double(values.count)
        let variance = values.reduce(0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(values.count)
        XCTAssertEqual(mean, 0, accuracy: 0.2)
        XCTAssertEqual(variance.squareRoot(), 1, accuracy: 0.15)
        let uniform = try gates(7, mode: "uniform_random").routed.flatMap { $0 }
        let bound = Float(1 / Double(32).squareRoot())
        XCTAssertTrue(uniform.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(uniform.map(abs).max()!, bound * 0.8, "spans the range")
    }

    /// `residual_scale` multiplies the expert's down_proj exactly; `noise_scale` adds seeded noise of that size.
    func testNoiseAndResidualScale() throws {
        let text = """
        base_model: models/llama-base
        gate_mode: cheap_embed
        experts:
          - source_model: models/llama-ft1
            positive_prompts: ["bread and flour"]
            residual_scale: 0.5
          - source_model: models/llama-ft2
            positive_prompts: ["print(total)"]
            noise_scale: 0.01
        """
        let dir = Fixtures.temporaryFolder("moe-noise")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("recipe.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let (_, _, out) = try buildMoE(recipe: path, workingDirectory: Fixtures.fixture(""), options: MoEOptions(seed: 3, threads: 2))
        let (_, _, again) = try buildMoE(recipe: path, workingDirectory: Fixtures.fixture(""), options: MoEOptions(seed: 3, threads: 1))
        let ours = try CheckpointFolder(path: out.path), repeated = try CheckpointFolder(path: again.path)
        let ft1 = try CheckpointFolder(path: Fixtures.fixture("models/llama-ft1"))
        let ft2 = try CheckpointFolder(path: Fixtures.fixture("models/llama-ft2"))
        for l in 0..<4 {
            let p = "model.layers.\(l).block_sparse_moe.experts."
            XCTAssertEqual(try ours.readAllFloats(p + "0.w2.weight"), try ft1.readAllFloats("model.layers.\(l).mlp.down_proj.weight").map { $0 * 0.5 })
            XCTAssertEqual(try ours.readAllFloats(p + "0.w1.weight"), try ft1.readAllFloats("model.layers.\(l).mlp.gate_proj.weight"))
            let noisy = try ours.readAllFloats(p + "1.w1.weight"), clean = try ft2.readAllFloats("model.layers.\(l).mlp.gate_proj.weight")
            let diffs = zip(noisy, clean).map { Double($0 - $1) }
            let rms = (diffs.reduce(0) { $0 + $1 * $1 } / Double(diffs.count)).squareRoot()
            XCTAssertEqual(rms, 0.01, accuracy: 0.001, "layer \(l): noise of the requested size")
            XCTAssertEqual(noisy, try repeated.readAllFloats(p + "1.w1.weight"), "same seed, any thread count: same noise")
        }
    }

    /// The engine runs a MoE Crucible built and reproduces transformers on it (cheap_embed rows agree with mergekit's
    /// to 1e-7, so routing is the same as in the golden).
    func testBuiltMoEMatchesTheTransformersGolden() throws {
        let dir = Fixtures.fixture("moe/moe-cheap-embed")
        for fused in [false, true] {
            let (_, _, out) = try buildMoE(recipe: dir + "/recipe.yaml", workingDirectory: Fixtures.fixture(""),
                                           options: MoEOptions(threads: 2, fusedExperts: fused))
            defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
            let golden = try SafetensorsFile(path: Fixtures.fixture("forward/moe.moe-cheap-embed.safetensors"))
            let idsInfo = try XCTUnwrap(golden.info("text.input_ids"))
            let raw = try XCTUnwrap(try golden.rawBytes("text.input_ids"))
            let ids = (0..<idsInfo.elementCount).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            let model = try LanguageModel(path: out.path, threads: 2)
            let logits = try model.forward(ids)
            XCTAssertLessThanOrEqual(maxAbsDifference(logits.values, try golden.readAllFloats("text.logits")), 1e-4, "fused: \(fused)")
        }
    }

    /// The engine runs Qwen2-MoE (routed experts, norm_topk_prob, sigmoid-gated shared expert) as transformers does:
    /// mergekit-moe's output against its forward golden.
    func testQwen2MoEForwardMatchesTheTransformersGolden() throws {
        let golden = try SafetensorsFile(path: Fixtures.fixture("archs/forward/moe.qwen2moe-shared.safetensors"))
        let model = try LanguageModel(path: Fixtures.fixture("archs/moe/qwen2moe-shared/output"), threads: 2)
        XCTAssertEqual(model.config.experts?.sharedIntermediateSize, 64)
        XCTAssertEqual(model.config.experts?.normalizeTopK, true)
        for input in ["text", "random"] {
            let info = try XCTUnwrap(golden.info("\(input).input_ids"))
            let raw = try XCTUnwrap(try golden.rawBytes("\(input).input_ids"))
            let ids = (0..<info.elementCount).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            let logits = try model.forward(ids)
            XCTAssertLessThanOrEqual(maxAbsDifference(logits.values, try golden.readAllFloats("\(input).logits")), 1e-4, input)
        }
    }
}
