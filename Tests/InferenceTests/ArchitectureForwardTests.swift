import Architectures
import Checkpoints
import Foundation
import Inference
import TestSupport
import XCTest

/// The engine against transformers' float32 forward passes for the families of `archs/` (MANIFEST.md: logits and NLL
/// within 1e-4, perplexity within 1e-4 relative, hidden states within 1e-4 of their magnitude).
extension ForwardPassTests {
    /// Every base model, merge output and fine-tune of `family` (`qwen3`, `gemma2`…) against its golden.
    func checkFamily(_ family: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let set = "archs/"
        let models = try ForwardGolden.names(prefix: nil, set: set).filter { $0.hasPrefix(family + "-") }
        let merges = try ForwardGolden.names(prefix: "merge.\(family)-", set: set)
        XCTAssertFalse(models.isEmpty, "no \(family) goldens", file: file, line: line)
        XCTAssertFalse(merges.isEmpty, "no \(family) merge goldens", file: file, line: line)
        var worst: Float = 0
        for name in models + merges {
            worst = max(worst, try checkAgainstGolden(name, set: set, file: file, line: line))
        }
        for name in models { try checkHiddenStates(name, set: set) }
        // The fine-tunes have a perplexity golden only; they read the base's token ids.
        let ids = try ForwardGolden("\(family)-base", set: set)
        for ft in ["\(family)-ft1", "\(family)-ft2"] {
            let summary = try JSONValue.parse(file: Fixtures.fixture("\(set)forward/\(ft).json"))
            let model = try LanguageModel(folder: Fixtures.fixture("\(set)models/\(ft)"))
            for part in ["random", "text"] {
                let tokens = try ids.ids("\(part).input_ids")[0]
                let logits = try model.forward(tokens)
                var sum = 0.0
                for i in 0..<(tokens.count - 1) { sum += negativeLogLikelihood(logits.row(i), target: tokens[i + 1]) }
                let ppl = Foundation.exp(sum / Double(tokens.count - 1))
                let reference = try XCTUnwrap(summary[part]?["ppl"]?.doubleValue)
                XCTAssertEqual(ppl / reference, 1, accuracy: 1e-4, "\(ft) \(part) perplexity \(ppl) vs \(reference)", file: file, line: line)
            }
        }
        print("\(family): largest logit difference from transformers over \(models.count + merges.count) goldens: \(worst)")
    }

    func testQwen3MatchesTransformers() throws { try checkFamily("qwen3") }
    func testGemma2MatchesTransformers() throws { try checkFamily("gemma2") }
    func testGemma3MatchesTransformers() throws { try checkFamily("gemma3") }
    func testPhi3MatchesTransformers() throws { try checkFamily("phi3") }

    /// Phi-3 with LongRoPE and partial rotary (75% of head_dim): the 32-token sequence uses the short factors, the
    /// 39-token text the long ones (longer than original_max_position_embeddings 32), both against transformers.
    func testPhi3LongRopeMatchesTransformers() throws {
        let worst = try checkAgainstGolden("phi3-longrope-base", set: "archs/")
        try checkHiddenStates("phi3-longrope-base", set: "archs/")
        print("phi3-longrope: largest logit difference from transformers: \(worst)")
    }

    /// mergekit-moe's Qwen3-MoE outputs (fused experts, Qwen3 attention with q/k norms) against transformers.
    func testQwen3MoEOutputsMatchTransformers() throws {
        let names = try ForwardGolden.names(prefix: "moe.qwen3moe", set: "archs/")
        XCTAssertEqual(names.count, 2)
        var worst: Float = 0
        for name in names { worst = max(worst, try checkAgainstGolden(name, set: "archs/")) }
        print("qwen3_moe: largest logit difference from transformers: \(worst)")
    }

    /// SmolLM3, whose odd layers apply no RoPE (`no_rope_layers` [1, 0, 1, 0]), against transformers 5.24
    /// (Tests/References/smollm3, made by scripts/make-smollm3-reference.py): logits and every hidden state.
    func testSmolLM3MatchesTransformers() throws {
        let dir = Fixtures.packageRoot.appendingPathComponent("Tests/References/smollm3").path
        let golden = try SafetensorsFile(path: dir + "/forward.safetensors")
        let model = try LanguageModel(folder: dir + "/model", threads: 2)
        XCTAssertEqual(model.config.ropeLayers, [true, false, true, false])
        func ids(_ name: String) throws -> [Int] {
            let raw = try XCTUnwrap(try golden.rawBytes(name))
            return (0..<(raw.count / 8)).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        }
        var worst: Float = 0
        for part in ["random", "text"] {
            let logits = try model.forward(try ids("\(part).input_ids"))
            let diff = maxAbsDiff(logits.values[...], try golden.readAllFloats("\(part).logits")[...])
            XCTAssertLessThanOrEqual(diff, logitTolerance, "smollm3 \(part) logits differ by \(diff)")
            worst = max(worst, diff)
        }
        // The no-RoPE layers matter: with RoPE everywhere transformers' logits are far from these.
        let text = try model.forward(try ids("text.input_ids"))
        XCTAssertGreaterThan(maxAbsDiff(text.values[...], try golden.readAllFloats("text.logits_all_rope")[...]), 1)
        let hidden = try golden.readAllFloats("text.hidden_states")
        let tokens = try ids("text.input_ids"), per = tokens.count * model.config.hiddenSize
        _ = try model.forward(tokens) { point, rows in
            let index: Int
            switch point {
            case let .layerInput(l): index = l
            case .finalNorm: index = model.config.layerCount
            default: return
            }
            let reference = hidden[(index * per)..<((index + 1) * per)]
            let magnitude = reference.map { abs($0) }.max() ?? 1
            var diff: Float = 0
            for (a, b) in zip(rows, reference) { diff = max(diff, abs(a - b)) }
            XCTAssertLessThanOrEqual(diff / magnitude, 1e-4, "smollm3 hidden state \(index)")
        }
        print("smollm3: largest logit difference from transformers: \(worst)")
    }

    /// A family's base checkpoint converted to GGUF the way llama.cpp names it (`arch`) runs in the engine to the
    /// same logits as transformers.
    func checkGGUF(_ family: String, arch: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let golden = try ForwardGolden("\(family)-base", set: "archs/")
        let (bytes, _) = try GGUFConversion.convert(folder: golden.checkpoint, arch: arch)
        let dir = Fixtures.temporaryFolder("gguf-\(family)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try LanguageModel(path: try GGUFBytes.write(bytes, to: dir), threads: 2)
        XCTAssertEqual(model.config.modelType, golden.summary["model_type"]?.stringValue ?? model.config.modelType)
        let ids = try golden.ids("text.input_ids")[0]
        let logits = try model.forward(ids)
        let diff = maxAbsDiff(logits.values[...], ArraySlice(try golden.floats("text.logits")).withIndexShift())
        XCTAssertLessThanOrEqual(diff, logitTolerance, "\(family) as GGUF '\(arch)': logits differ by \(diff)", file: file, line: line)
    }

    func testQwen3GGUFMatchesTransformers() throws { try checkGGUF("qwen3", arch: "qwen3") }

    /// A Gemma checkpoint converted as llama.cpp does (its tensor names, norms stored as 1 + w) is served back under
    /// Hugging Face's names with the original weights; the config takes llama.cpp's conventions (GELU-tanh,
    /// soft-caps from the metadata, query_pre_attn_scalar = head_dim, which llama.cpp uses instead of the config's),
    /// and the engine gives the folder's logits once the folder's config says the same.
    func testGemmaGGUFServesTheWeightsAndRunsAsLlamaCppDefinesIt() throws {
        for (family, arch) in [("gemma2", "gemma2"), ("gemma3", "gemma3")] {
            let folder = Fixtures.fixture("archs/models/\(family)-base")
            let (bytes, source) = try GGUFConversion.convert(folder: folder, arch: arch)
            let dir = Fixtures.temporaryFolder("gguf-\(family)")
            defer { try? FileManager.default.removeItem(at: dir) }
            let path = try GGUFBytes.write(bytes, to: dir)
            let gguf = try GGUFFile(path: path)
            XCTAssertEqual(Set(gguf.tensorNames), Set(source.tensorNames), family)
            for name in source.tensorNames {
                let served = try gguf.readAllFloats(name), original = try source.readAllFloats(name)
                if name.hasSuffix("norm.weight") {
                    // Stored as 1 + w in float32: w comes back within the rounding of that sum (half an ulp of 1).
                    XCTAssertLessThanOrEqual(maxAbsDiff(served[...], original[...]), 0x1p-24, "\(family) \(name)")
                } else {
                    XCTAssertEqual(served, original, "\(family) \(name)")
                }
            }
            let config = try ModelConfig(json: try gguf.hfConfig(), file: path)
            XCTAssertEqual(config.activation, .geluTanh)
            XCTAssertEqual(try XCTUnwrap(config.attentionScale), 1 / Double(config.headDim).squareRoot(), accuracy: 1e-12)
            XCTAssertEqual(config.finalLogitSoftCap, family == "gemma2" ? 3.5 : nil)
            XCTAssertEqual(config.attentionSoftCap, family == "gemma2" ? 2.0 : nil)
            // The folder with llama.cpp's attention scale gives the same logits as the GGUF file.
            let patched = dir.appendingPathComponent("folder").path
            try FileManager.default.copyItem(atPath: folder, toPath: patched)
            var json = try JSONValue.parse(file: patched + "/config.json").objectValue!
            json["query_pre_attn_scalar"] = .int(Int64(config.headDim))
            try JSONValue.object(json).serialized().write(toFile: patched + "/config.json", atomically: true, encoding: .utf8)
            let ids = try ForwardGolden("\(family)-base", set: "archs/").ids("text.input_ids")[0]
            let fromGGUF = try LanguageModel(path: path, threads: 2).forward(ids)
            let fromFolder = try LanguageModel(folder: patched, threads: 2).forward(ids)
            XCTAssertLessThanOrEqual(maxAbsDiff(fromGGUF.values[...], fromFolder.values[...]), 1e-4, family)
        }
    }

    /// A checkpoint whose config names the wrong family is refused by name instead of run without the weights or
    /// features it would ignore: Qwen3 labelled Llama (its q/k norms unused), a family without a definition, Gemma 2
    /// labelled Llama (soft-caps set).
    func testMislabelledCheckpointsAreRefusedByName() throws {
        func relabelled(_ model: String, as modelType: String) throws -> String {
            let dir = Fixtures.temporaryFolder("relabel").appendingPathComponent(model).path
            try FileManager.default.copyItem(atPath: Fixtures.fixture("archs/models/\(model)"), toPath: dir)
            var json = try XCTUnwrap(JSONValue.parse(file: dir + "/config.json").objectValue)
            json["model_type"] = .string(modelType)
            try JSONValue.object(json).serialized().write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
            return dir
        }
        let qwen3 = try relabelled("qwen3-base", as: "llama")
        defer { try? FileManager.default.removeItem(atPath: (qwen3 as NSString).deletingLastPathComponent) }
        XCTAssertThrowsError(try LanguageModel(folder: qwen3, threads: 2)) { error in
            guard case let .unusedWeight(tensor, architecture, _)? = error as? InferenceError else {
                return XCTFail("expected unusedWeight, got \(error)")
            }
            XCTAssertTrue(tensor.hasSuffix("q_norm.weight") || tensor.hasSuffix("k_norm.weight"), tensor)
            XCTAssertEqual(architecture, "llama")
        }
        // A family without a definition is refused, not run as Llama.
        let unknown = try relabelled("qwen3-base", as: "olmo3")
        defer { try? FileManager.default.removeItem(atPath: (unknown as NSString).deletingLastPathComponent) }
        XCTAssertThrowsError(try LanguageModel(folder: unknown, threads: 2)) { error in
            guard case let .unsupportedArchitecture(modelType, supported, _)? = error as? InferenceError else {
                return XCTFail("expected unsupportedArchitecture, got \(error)")
            }
            XCTAssertEqual(modelType, "olmo3")
            XCTAssertTrue(supported.contains("gemma3_text"))
        }
        let gemma = try relabelled("gemma2-base", as: "llama")
        defer { try? FileManager.default.removeItem(atPath: (gemma as NSString).deletingLastPathComponent) }
        XCTAssertThrowsError(try LanguageModel(folder: gemma, threads: 2)) { error in
            XCTAssertTrue("\(error)".contains("softcapping"), "\(error)")
        }
    }

    /// Config values of the new families that the engine cannot honour are refused, naming the key.
    func testBadFamilyConfigValuesAreRefusedNamingTheKey() throws {
        func config(_ model: String, _ edit: (inout JSONObject) -> Void) throws -> JSONObject {
            var json = try XCTUnwrap(JSONValue.parse(file: Fixtures.fixture("archs/models/\(model)/config.json")).objectValue)
            edit(&json)
            return json
        }
        let cases: [(String, String, (inout JSONObject) -> Void)] = [
            ("qwen3-base", "layer_types", { $0["layer_types"] = .array([.string("full_attention")]) }),
            ("qwen3-base", "layer_types", { $0["layer_types"] = .array([.string("full_attention"), .string("chunked_attention")]) }),
            ("gemma2-base", "query_pre_attn_scalar", { $0["query_pre_attn_scalar"] = nil }),
            ("gemma2-base", "attn_logit_softcapping", { $0["attn_logit_softcapping"] = .double(-1) }),
            ("gemma2-base", "hidden_activation", { $0["hidden_activation"] = .string("relu") }),
            ("gemma3-base", "use_bidirectional_attention", { $0["use_bidirectional_attention"] = .bool(true) }),
            ("phi3-longrope-base", "short_factor", { json in
                var rope = json["rope_parameters"]!.objectValue!
                rope["short_factor"] = .array([.double(1)])
                json["rope_parameters"] = .object(rope)
            }),
            ("phi3-base", "partial_rotary_factor", { json in
                var rope = json["rope_parameters"]!.objectValue!
                rope["partial_rotary_factor"] = .double(0.1)
                json["rope_parameters"] = .object(rope)
            }),
            ("qwen3-base", "final_logit_softcapping", { $0["final_logit_softcapping"] = .double(30) }),
        ]
        for (model, key, edit) in cases {
            XCTAssertThrowsError(try ModelConfig(json: try config(model, edit), file: "config.json"), "\(model) \(key)") { error in
                XCTAssertTrue("\(error)".contains(key), "\(model): \(error) should name \(key)")
            }
        }
    }

    /// `crucible synth` writes every family it lists as a checkpoint the engine loads (every weight its definition
    /// names, with the right shapes) and runs to finite logits.
    func testSynthesizedCheckpointOfEveryFamilyRuns() throws {
        XCTAssertTrue(Set(SyntheticCheckpoint.architectures).isSuperset(of: ["qwen3", "gemma2", "gemma3_text", "phi3", "smollm3"]))
        for arch in SyntheticCheckpoint.architectures {
            let dir = Fixtures.temporaryFolder("synth-\(arch)")
            defer { try? FileManager.default.removeItem(at: dir) }
            try SyntheticCheckpoint.write(arch: arch, preset: "tiny", seed: 3, dtype: .f32, to: dir.path)
            let model = try LanguageModel(folder: dir.path, threads: 2)
            XCTAssertEqual(model.config.modelType, arch)
            let logits = try model.forward([1, 7, 30, 2])
            XCTAssertTrue(logits.values.allSatisfy { $0.isFinite }, arch)
        }
    }
}
