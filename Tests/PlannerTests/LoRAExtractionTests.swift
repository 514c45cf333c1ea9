import Checkpoints
import Foundation
import Numerics
import Planner
import Recipes
import TestSupport
import XCTest

/// `crucible extract-lora` against mergekit-extract-lora's adapters (fixtures/vocab-lora/extract) and round trips
/// through `+adapter` references.
final class LoRAExtractionTests: XCTestCase {
    var root: String { Fixtures.fixture("vocab-lora") }

    func extract(model: String, maxRank: Int, distribute: Bool = true, embed: Bool = false) throws -> (String, LoRAExtraction.Report) {
        var options = LoRAExtraction.Options()
        options.maxRank = maxRank
        options.distributeScale = distribute
        options.embedLoRA = embed
        let out = Fixtures.temporaryFolder("extract").appendingPathComponent("adapter").path
        let report = try LoRAExtraction.extract(model: model, base: "./models/base", out: out, options: options, workingDirectory: root)
        return (out, report)
    }

    /// scale·B·A of every module, row-major, in double.
    func products(_ folder: String) throws -> [String: [Double]] {
        let lora = try LoRAAdapter.open(folder)
        var out: [String: [Double]] = [:]
        for m in lora.modules {
            let a = try lora.weights.readAllFloats(m.a), b = try lora.weights.readAllFloats(m.b)
            let sa = lora.weights.info(m.a)!.shape, sb = lora.weights.info(m.b)!.shape
            let (rows, cols, r) = (sb[0], sa[1], sa[0])
            var p = [Double](repeating: 0, count: rows * cols)
            for i in 0..<rows { for j in 0..<cols { for k in 0..<r { p[i * cols + j] += Double(b[i * r + k]) * Double(a[k * cols + j]) } } }
            out[m.name] = p.map { $0 * Double(m.scale) }
        }
        return out
    }

    func check(_ name: String, model: String, maxRank: Int, distribute: Bool = true) throws {
        let reference = root + "/extract/" + name
        let (ours, report) = try extract(model: model, maxRank: maxRank, distribute: distribute)
        defer { try? FileManager.default.removeItem(atPath: (ours as NSString).deletingLastPathComponent) }
        let expected = try JSONValue.parse(file: reference + "/reconstruction.json")
        // Products B·A (signs of singular pairs are free), relative to the delta's Frobenius norm.
        let mine = try products(ours), theirs = try products(reference)
        XCTAssertEqual(Set(mine.keys), Set(theirs.keys), name)
        var worst = 0.0
        for (module, p) in theirs {
            guard let q = mine[module] else { continue }
            let diff = zip(p, q).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
            // Modules the fine-tune left unchanged (listed without a delta): both products are zero.
            guard let delta = expected["lora_modules"]?[module]?["delta_fro"]?.doubleValue, delta > 0 else {
                XCTAssertEqual(diff, 0, "\(name) \(module): an unchanged module's product is not zero")
                continue
            }
            worst = max(worst, diff / delta)
            XCTAssertLessThanOrEqual(diff / delta, 1e-5, "\(name) \(module): B·A differs by \(diff / delta) of ‖Δ‖")
        }
        print("extract \(name): worst ‖B·A − mergekit's B·A‖/‖Δ‖ = \(worst)")
        // Reconstruction errors as mergekit's fit gives them.
        for m in report.modules {
            guard let rel = expected["lora_modules"]?[m.module]?["rel_err_fro"]?.doubleValue else {
                XCTAssertEqual(m.deltaNorm, 0, "\(name) \(m.module) changed but mergekit's report has no delta for it")
                XCTAssertEqual(m.errorNorm, 0, "\(name) \(m.module)")
                continue
            }
            XCTAssertEqual(m.relativeError, rel, accuracy: 1e-5, "\(name) \(m.module) reconstruction error")
            XCTAssertEqual(m.relativeError, m.optimalRelativeError, accuracy: 1e-5, "\(name) \(m.module) is not the optimal fit")
            XCTAssertEqual(m.rank, maxRank)
        }
        // adapter_config.json: ranks, alphas, patterns and the modules saved whole.
        let a = try JSONValue.parse(file: ours + "/adapter_config.json"), b = try JSONValue.parse(file: reference + "/adapter_config.json")
        for key in ["r", "lora_alpha", "rank_pattern", "alpha_pattern", "peft_type", "use_rslora", "base_model_name_or_path",
                    "task_type", "fan_in_fan_out"] {
            XCTAssertEqual(a[key], b[key], "\(name): adapter_config.json \(key)")
        }
        for key in ["target_modules", "modules_to_save"] {
            XCTAssertEqual(Set(a[key]?.arrayValue?.compactMap(\.stringValue) ?? []), Set(b[key]?.arrayValue?.compactMap(\.stringValue) ?? []),
                           "\(name): adapter_config.json \(key)")
        }
        // Tensors saved whole are the fine-tune's values, bit for bit; the file holds the same names.
        let mineFile = try SafetensorsFile(path: ours + "/adapter_model.safetensors")
        let theirFile = try SafetensorsFile(path: reference + "/adapter_model.safetensors")
        XCTAssertEqual(Set(mineFile.tensorNames), Set(theirFile.tensorNames), name)
        for t in theirFile.tensorNames where !t.contains(".lora_") {
            XCTAssertEqual(try mineFile.readAllFloats(t), try theirFile.readAllFloats(t), "\(name): \(t)")
        }
        // The JSON report holds every module.
        let json = try JSONValue.parse(file: ours + "/" + LoRAExtraction.reportFile)
        XCTAssertEqual(json["modules"]?.objectValue?.count, report.modules.count)
    }

    func testDenseFineTuneAtRank8MatchesMergekit() throws { try check("ft-dense-r8", model: "./models/ft", maxRank: 8) }
    func testMergedLoraAtRank4MatchesMergekit() throws { try check("lora-merged-r4", model: "merges/lora-passthrough/output", maxRank: 4) }
    func testMergedLoraAtRank2WithoutDistributedScaleMatchesMergekit() throws {
        try check("lora-merged-r2-no-distribute", model: "merges/lora-passthrough/output", maxRank: 2, distribute: false)
    }

    /// Without --distribute-scale, A's rows carry the singular values and B's columns are unit vectors.
    func testScaleDistribution() throws {
        let (out, _) = try extract(model: "./models/ft", maxRank: 3, distribute: false)
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        let lora = try LoRAAdapter.open(out)
        let m = try XCTUnwrap(lora.modules.first)
        let b = try lora.weights.readAllFloats(m.b), rows = lora.weights.info(m.b)!.shape[0]
        for j in 0..<3 {
            let norm = (0..<rows).reduce(0.0) { $0 + Double(b[$1 * 3 + j]) * Double(b[$1 * 3 + j]) }.squareRoot()
            XCTAssertEqual(norm, 1, accuracy: 1e-5)
        }
    }

    /// An adapter extracted at full rank, applied back to the base through `base+adapter`, gives the fine-tune (every
    /// matrix to float precision, embeddings and norms exactly); a truncated one gives it to its reconstruction error.
    func testExtractedAdapterAppliedBackReproducesTheFineTune() throws {
        for (rank, embed) in [(64, false), (64, true), (3, false)] {
            let (adapter, report) = try extract(model: "./models/ft", maxRank: rank, embed: embed)
            defer { try? FileManager.default.removeItem(atPath: (adapter as NSString).deletingLastPathComponent) }
            let recipe = "merge_method: passthrough\nmodels:\n  - model: \(root)/models/base+\(adapter)\ndtype: float32\n"
            let (_, output) = try runRecipe(writeRecipe(recipe), workingDirectory: root)
            defer { try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent) }
            let ours = try loadTensors(output + "/model.safetensors"), ft = try loadTensors(root + "/models/ft/model.safetensors")
            let base = try loadTensors(root + "/models/base/model.safetensors")
            for (name, f) in ft {
                let o = try XCTUnwrap(ours[name]).values
                let module = String(name.dropLast(".weight".count))
                if let m = report.modules.first(where: { $0.module == module }) {
                    // ‖out − ft‖ / ‖ft − base‖ is the module's reconstruction error.
                    let err = zip(o, f.values).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
                    let delta = zip(f.values, base[name]!.values).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
                        .squareRoot()
                    if rank >= 24 {
                        XCTAssertLessThanOrEqual(err / delta, 1e-5, "rank \(rank) embed \(embed): \(name)")
                    } else {
                        XCTAssertEqual(err / delta, m.relativeError, accuracy: 1e-5, "rank \(rank): \(name)")
                        XCTAssertGreaterThan(m.relativeError, 0.1, name)
                    }
                } else {
                    XCTAssertEqual(o, f.values, "rank \(rank) embed \(embed): \(name) saved whole")
                }
            }
            XCTAssertEqual(report.modules.contains { $0.module == "model.embed_tokens" }, embed)
        }
    }

    func testHostileInputsAreRefused() throws {
        // A base of another shape.
        XCTAssertThrowsError(try LoRAExtraction.extract(model: "./models/ft", base: Fixtures.fixture("models/llama-base"),
                                                        out: Fixtures.temporaryFolder("x").path + "/a", options: .init(),
                                                        workingDirectory: root)) { error in
            XCTAssertTrue("\(error)".contains("shape") || "\(error)".contains("missing"), "\(error)")
        }
        var options = LoRAExtraction.Options()
        options.maxRank = 0
        XCTAssertThrowsError(try LoRAExtraction.extract(model: "./models/ft", base: "./models/base", out: "/tmp/never", options: options,
                                                        workingDirectory: root)) { error in
            XCTAssertTrue("\(error)".contains("--max-rank"), "\(error)")
        }
    }
}
