import Checkpoints
import Foundation
import Inference
import Numerics
import Planner
import Recipes
import TestSupport
import XCTest

/// `model+adapter` references: mergekit's LoRA fixtures (fixtures/vocab-lora), slices, and hostile adapters.
final class LoRAMergeTests: XCTestCase {
    let set = "vocab-lora/"
    var root: String { Fixtures.fixture(set) }

    /// Runs a fixture recipe of the vocab-lora set and compares every tensor with mergekit's output.
    @discardableResult
    func checkFixture(_ name: String, tolerance: Double) throws -> (output: String, worst: Double) {
        let dir = Fixtures.fixture("\(set)merges/\(name)")
        let (_, output) = try runRecipe(dir + "/recipe.yaml", workingDirectory: root)
        let ours = try loadTensors(output + "/model.safetensors")
        let ref = try loadTensors(dir + "/output/model.safetensors")
        XCTAssertEqual(Set(ours.keys), Set(ref.keys), "\(name): tensor names differ")
        var worst = 0.0
        for (tensor, r) in ref {
            guard let o = ours[tensor] else { continue }
            XCTAssertEqual(o.shape, r.shape, "\(name): \(tensor) shape")
            XCTAssertEqual(o.dtype, r.dtype, "\(name): \(tensor) dtype")
            let e = relativeError(o.values, r.values)
            worst = max(worst, e)
            XCTAssertLessThanOrEqual(e, tolerance, "\(name): \(tensor) differs by \(e) relative to its max")
        }
        let oc = try JSONValue.parse(file: output + "/config.json"), rc = try JSONValue.parse(file: dir + "/output/config.json")
        for key in ["architectures", "num_hidden_layers", "hidden_size", "vocab_size", "tie_word_embeddings"] {
            XCTAssertEqual(oc[key], rc[key], "\(name): config.json '\(key)'")
        }
        // The tokenizer comes from the +lora input's model path.
        XCTAssertEqual(fileBytes(output + "/tokenizer.json"), fileBytes(root + "/models/base/tokenizer.json"))
        return (output, worst)
    }

    /// The output's forward pass against transformers' on mergekit's output (logits where stored, perplexities always).
    func checkForward(_ name: String, output: String) throws {
        let summary = try JSONValue.parse(file: Fixtures.fixture("\(set)forward/merge.\(name).json"))
        let full = Fixtures.fixture("\(set)forward/merge.\(name).safetensors")
        let logits = FileManager.default.fileExists(atPath: full) ? try SafetensorsFile(path: full) : nil
        // The random ids are the same for every model; the text ids are listed in the json.
        let ids = try SafetensorsFile(path: Fixtures.fixture("\(set)forward/base.safetensors"))
        let raw = try XCTUnwrap(try ids.rawBytes("random.input_ids"))
        let random = (0..<(raw.count / 8)).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        let text = try XCTUnwrap(summary["text_ids"]?.arrayValue?.compactMap(\.intValue))
        let model = try LanguageModel(folder: output)
        let v = model.config.vocabSize
        for (kind, tokens) in [("random", random), ("text", text)] {
            let out = try model.forward(tokens)
            var nll = 0.0
            for i in 0..<(tokens.count - 1) {
                let row = out.row(i)
                let m = Double(row.max()!)
                let sum = row.reduce(0.0) { $0 + exp(Double($1) - m) }
                nll += log(sum) + m - Double(row[row.startIndex + tokens[i + 1]])
            }
            let ppl = exp(nll / Double(tokens.count - 1))
            let ref = try XCTUnwrap(summary[kind]?["ppl"]?.doubleValue)
            XCTAssertEqual(ppl / ref, 1, accuracy: 1e-4, "\(name) \(kind) perplexity \(ppl) vs \(ref)")
            XCTAssertEqual(Double(out.values.map(abs).max()!), try XCTUnwrap(summary[kind]?["logits_abs_max"]?.doubleValue),
                           accuracy: 1e-4, "\(name) \(kind) largest logit")
            if let logits {
                let expected = try logits.readAllFloats("\(kind).logits")
                XCTAssertEqual(expected.count, tokens.count * v)
                let diff = zip(out.values, expected).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThanOrEqual(diff, 1e-4, "\(name) \(kind) logits differ by \(diff)")
            }
        }
    }

    func testLoraPassthroughMatchesMergekitAndItsForwardPass() throws {
        let (output, _) = try checkFixture("lora-passthrough", tolerance: 1e-6)
        defer { try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent) }
        try checkForward("lora-passthrough", output: output)
        // Only the adapter's target modules changed; everything else is the base's, bit for bit.
        let base = try loadTensors(root + "/models/base/model.safetensors"), ours = try loadTensors(output + "/model.safetensors")
        for (name, b) in base {
            let targeted = ["q_proj", "v_proj", "down_proj"].contains { name.contains(".\($0).") }
            if targeted { XCTAssertNotEqual(ours[name]!.values, b.values, name) } else { XCTAssertEqual(ours[name]!.values, b.values, name) }
        }
    }

    func testLoraLinearMatchesMergekitAndItsForwardPass() throws {
        let (output, _) = try checkFixture("lora-linear", tolerance: 1e-6)
        defer { try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent) }
        try checkForward("lora-linear", output: output)
    }

    /// mergekit refuses this recipe without `--lora-merge-cache`; Crucible needs no cache. `models/base+loras/lora-qvd`
    /// and `models/base` are two inputs: the output is the base plus half the adapter's update.
    func testLoraWithoutCacheDirRecipeMergesAndKeepsBothIdentities() throws {
        let (plan, output) = try runRecipe(Fixtures.fixture("\(set)errors/lora-without-cache-dir/recipe.yaml"), workingDirectory: root)
        defer { try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent) }
        XCTAssertEqual(plan.models.map(\.reference.raw), ["models/base+loras/lora-qvd", "models/base"])
        XCTAssertNotNil(plan.models[0].adapter)
        XCTAssertNil(plan.models[1].adapter)
        let adapted = try loadTensors(Fixtures.fixture("\(set)merges/lora-passthrough/output/model.safetensors"))
        let base = try loadTensors(root + "/models/base/model.safetensors"), ours = try loadTensors(output + "/model.safetensors")
        for (name, b) in base {
            let expected = zip(adapted[name]!.values, b.values).map { 0.5 * $0 + 0.5 * $1 }
            XCTAssertLessThanOrEqual(relativeError(ours[name]!.values, expected), 1e-6, name)
        }
    }

    /// Slices read adapted layers: layer 1 of `base+lora` placed at output layer 0 is the adapted layer 1, and the
    /// dict form `{model: M, lora: A}` is the same input.
    func testSlicesReadAdaptedLayers() throws {
        let recipe = """
            merge_method: passthrough
            slices:
              - sources: [{model: {model: \(root)/models/base, lora: \(root)/loras/lora-qvd}, layer_range: [1, 2]}]
              - sources: [{model: models/base, layer_range: [0, 1]}]
            dtype: float32
            """
        let (_, output) = try runRecipe(writeRecipe(recipe), workingDirectory: root)
        defer { try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent) }
        let adapted = try loadTensors(Fixtures.fixture("\(set)merges/lora-passthrough/output/model.safetensors"))
        let base = try loadTensors(root + "/models/base/model.safetensors"), ours = try loadTensors(output + "/model.safetensors")
        for name in ["self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj", "self_attn.k_proj"] {
            XCTAssertLessThanOrEqual(relativeError(ours["model.layers.0.\(name).weight"]!.values,
                                                   adapted["model.layers.1.\(name).weight"]!.values), 1e-6, name)
            XCTAssertEqual(ours["model.layers.1.\(name).weight"]!.values, base["model.layers.0.\(name).weight"]!.values, name)
        }
    }

    /// A streaming method (TIES) reads adapted inputs block by block like any other.
    func testStreamingMethodSeesAdaptedWeights() throws {
        let recipe = """
            merge_method: ties
            base_model: models/base
            models:
              - {model: models/base+loras/lora-qvd, parameters: {weight: 1.0, density: 1.0}}
            parameters: {normalize: false}
            dtype: float32
            """
        let (_, output) = try runRecipe(writeRecipe(recipe), workingDirectory: root)
        defer { try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent) }
        let adapted = try loadTensors(Fixtures.fixture("\(set)merges/lora-passthrough/output/model.safetensors"))
        for (name, o) in try loadTensors(output + "/model.safetensors") {
            XCTAssertLessThanOrEqual(relativeError(o.values, adapted[name]!.values), 1e-6, name)
        }
    }

    // MARK: - Hostile adapters

    /// A copy of the fixture adapter with its config edited and tensors replaced or removed.
    func adapter(config edit: (inout JSONObject) -> Void = { _ in },
                 tensors change: (inout [String: (shape: [Int], values: [Float])]) -> Void = { _ in }) throws -> String {
        let source = root + "/loras/lora-qvd"
        let folder = Fixtures.temporaryFolder("adapter").path
        guard case var .object(config) = try JSONValue.parse(file: source + "/adapter_config.json") else { throw XCTSkip("config") }
        edit(&config)
        try JSONValue.object(config).serialized().write(toFile: folder + "/adapter_config.json", atomically: true, encoding: .utf8)
        let file = try SafetensorsFile(path: source + "/adapter_model.safetensors")
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        for name in file.tensorNames { tensors[name] = (file.info(name)!.shape, try file.readAllFloats(name)) }
        change(&tensors)
        let names = tensors.keys.sorted()
        let writer = try SafetensorsWriter(path: folder + "/adapter_model.safetensors",
                                           entries: names.map { .init(name: $0, dtype: .f32, shape: tensors[$0]!.shape) })
        for name in names { try tensors[name]!.values.withUnsafeBytes { try writer.write(name, bytes: $0) } }
        try writer.finish()
        return folder
    }

    func assertRefused(_ adapterFolder: String, mentions: [String], file: StaticString = #filePath, line: UInt = #line) {
        let recipe = "merge_method: passthrough\nmodels:\n  - model: models/base+\(adapterFolder)\ndtype: float32\n"
        XCTAssertThrowsError(try MergePlanner.plan(RecipeParser.parse(text: recipe, file: "r.yaml"),
                                                   options: PlannerOptions(workingDirectory: root)), file: file, line: line) { error in
            for fragment in mentions {
                XCTAssertTrue("\(error)".contains(fragment), "\(error) should mention \(fragment)", file: file, line: line)
            }
        }
        try? FileManager.default.removeItem(atPath: adapterFolder)
    }

    let q0 = "base_model.model.model.layers.0.self_attn.q_proj"

    func testRankDisagreeingWithTheConfigIsRefused() throws {
        assertRefused(try adapter(config: { $0["r"] = .int(8) }), mentions: ["adapter_model.safetensors", "lora_A", "rank 4", "rank 8"])
        assertRefused(try adapter(config: { $0["rank_pattern"] = .object(JSONObject([("layers.0.self_attn.q_proj", .int(2))])) }),
                      mentions: ["\(q0).lora_A.weight", "rank 2"])
    }

    func testMissingFactorIsRefused() throws {
        assertRefused(try adapter(tensors: { $0["\(q0).lora_B.weight"] = nil }),
                      mentions: ["adapter_model.safetensors", "\(q0).lora_A.weight", "no matching lora_B"])
        assertRefused(try adapter(tensors: { t in
            t["\(q0).lora_A.weight"] = nil
            t["\(q0).lora_B.weight"] = nil
        }), mentions: ["\(q0).lora_A.weight", "is missing", "target_modules"])
    }

    func testAdapterForAnotherModelIsRefused() throws {
        // Factors whose input width is not the model's.
        assertRefused(try adapter(tensors: { $0["\(q0).lora_A.weight"] = ([4, 30], [Float](repeating: 0.1, count: 120)) }),
                      mentions: ["\(q0).lora_A.weight", "[24, 30]", "[24, 24]", "another model"])
        // A module the model does not have (another architecture's name, or a deeper model's layer).
        assertRefused(try adapter(tensors: { t in
            t["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"] = ([4, 24], [Float](repeating: 0, count: 96))
            t["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"] = ([24, 4], [Float](repeating: 0, count: 96))
        }), mentions: ["transformer.h.0.attn.c_attn.weight", "does not have", "another architecture"])
        assertRefused(try adapter(tensors: { $0["base_model.model.model.norm.weight"] = ([30], [Float](repeating: 1, count: 30)) }),
                      mentions: ["base_model.model.model.norm.weight", "[30]", "[24]"])
    }

    func testUnsupportedAdapterKindsAreRefused() throws {
        assertRefused(try adapter(config: { $0["use_dora"] = .bool(true) }), mentions: ["adapter_config.json", "DoRA"])
        assertRefused(try adapter(config: { $0["peft_type"] = .string("IA3") }), mentions: ["adapter_config.json", "LORA"])
        assertRefused(try adapter(config: { $0["r"] = .string("four") }), mentions: ["adapter_config.json", "`r`"])
        assertRefused(try adapter(tensors: { $0["\(q0).lora_magnitude_vector"] = ([24], [Float](repeating: 1, count: 24)) }),
                      mentions: ["lora_magnitude_vector", "DoRA"])
        let folder = try adapter()
        try FileManager.default.removeItem(atPath: folder + "/adapter_model.safetensors")
        assertRefused(folder, mentions: ["adapter_model.safetensors", "missing"])
    }

    /// rsLoRA scales by alpha/√r; alpha_pattern overrides alpha for the modules it names (as a suffix).
    func testScalesFollowRSLoRAAndAlphaPattern() throws {
        let folder = try adapter(config: {
            $0["use_rslora"] = .bool(true)
            $0["alpha_pattern"] = .object(JSONObject([("v_proj", .int(4))]))
        })
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let lora = try LoRAAdapter.open(folder)
        for m in lora.modules {
            XCTAssertEqual(m.scale, m.name.hasSuffix("v_proj") ? 2 : 4, accuracy: 1e-6, m.name)   // 4/√4, 8/√4
        }
        // Reading applies the scale: W + scale·B·A against a plain float64 product.
        let model = try CheckpointFolder(path: root + "/models/base")
        let source = try LoRASource(base: model, adapter: lora)
        let name = "model.layers.1.self_attn.v_proj.weight"
        let a = try lora.weights.readAllFloats("base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight")
        let b = try lora.weights.readAllFloats("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight")
        let w = try model.readAllFloats(name)
        let (rows, cols) = (model.info(name)!.shape[0], model.info(name)!.shape[1])
        // Read an odd range: partial first and last rows.
        let range = 5..<(rows * cols - 7)
        var got = [Float](repeating: 0, count: range.count)
        try got.withUnsafeMutableBufferPointer { try source.readFloats(name, range: range, into: $0.baseAddress!) }
        for i in range {
            let (r, c) = (i / cols, i % cols)
            var d = 0.0
            for k in 0..<4 { d += Double(b[r * 4 + k]) * Double(a[k * cols + c]) }
            XCTAssertEqual(Double(got[i - range.lowerBound]), Double(w[i]) + 2 * d, accuracy: 1e-6, "\(name)[\(i)]")
        }
        XCTAssertNil(try source.rawBytes(name))
        XCTAssertNotNil(try source.rawBytes("model.layers.1.self_attn.k_proj.weight"))
    }
}
