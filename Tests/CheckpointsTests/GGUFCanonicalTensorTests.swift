import Checkpoints
import Numerics
import TestSupport
import XCTest

/// The strongest check of the name map and the Q/K un-permutation: fixture Hugging Face checkpoints are
/// converted here into GGUF files the way llama.cpp's converter lays them out (GGUF names, reversed dims,
/// Q/K rows permuted for the llama architecture, Mixtral experts stacked), and `GGUFFile` must serve back
/// tensors identical to the original safetensors (F32) or within rounding (Q8_0).
final class GGUFCanonicalTensorTests: XCTestCase {
    private func convert(_ model: String, arch: String, q8: Bool = false) throws -> (bytes: [UInt8], source: CheckpointFolder) {
        try GGUFConversion.convert(folder: Fixtures.fixture("models/" + model), arch: arch, q8: q8)
    }

    private func open(_ bytes: [UInt8]) throws -> (GGUFFile, URL) {
        let dir = Fixtures.temporaryFolder("gguf-canonical")
        let path = try GGUFBytes.write(bytes, to: dir)
        return (try GGUFFile(path: path), dir)
    }

    private func assertServesIdenticalTensors(_ model: String, arch: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (bytes, source) = try convert(model, arch: arch)
        let (g, dir) = try open(bytes)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertEqual(Set(g.tensorNames), Set(source.tensorNames), file: file, line: line)
        for name in source.tensorNames {
            XCTAssertEqual(g.info(name)?.shape, source.info(name)?.shape, name, file: file, line: line)
            XCTAssertEqual(try g.readAllFloats(name), try source.readAllFloats(name), name, file: file, line: line)
        }
    }

    // MARK: Tests

    func testLlamaGGUFServesTheOriginalTensorsWithQKUnpermuted() throws {
        try assertServesIdenticalTensors("llama-base", arch: "llama")
    }

    func testMixtralStackedExpertsAreSplitIntoPerExpertTensors() throws {
        try assertServesIdenticalTensors("mixtral-tiny", arch: "llama")
    }

    func testQwen2GGUFIsNotUnpermutedAndKeepsBiases() throws {
        try assertServesIdenticalTensors("qwen2-base", arch: "qwen2")
    }

    func testLlamaArchitectureAlsoUnpermutesQKBiases() throws {
        // qwen2-base carries q/k/v biases; written as a llama-architecture file its Q/K biases are permuted too.
        try assertServesIdenticalTensors("qwen2-base", arch: "llama")
    }

    func testTiedModelHasNoLmHeadAndConfigSaysTied() throws {
        try assertServesIdenticalTensors("llama-tied", arch: "llama")
        let (bytes, _) = try convert("llama-tied", arch: "llama")
        let (g, dir) = try open(bytes)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertEqual(try g.hfConfig()["tie_word_embeddings"], .bool(true))
    }

    func testStoredQRowsDifferFromHFSoTheUnpermuteIsReallyExercised() throws {
        let (bytes, source) = try convert("llama-base", arch: "llama")
        let (g, dir) = try open(bytes)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (gguf, hf) in [("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"),
                           ("blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight")] {
            XCTAssertNotEqual(try readRaw(g, gguf), try source.readAllFloats(hf), gguf)
            XCTAssertEqual(try g.readAllFloats(hf), try source.readAllFloats(hf), hf)
        }
    }

    private func readRaw(_ g: GGUFFile, _ name: String) throws -> [Float] {
        let t = try XCTUnwrap(g.rawTensor(name))
        var out = [Float](repeating: 0, count: t.elementCount)
        try out.withUnsafeMutableBufferPointer { try g.readRawFloats(name, range: 0..<t.elementCount, into: $0.baseAddress!) }
        return out
    }

    func testHFConfigFromMetadataMatchesTheFixtureConfig() throws {
        for (model, arch, className) in [("llama-base", "llama", "LlamaForCausalLM"), ("mixtral-tiny", "llama", "MixtralForCausalLM"),
                                         ("qwen2-base", "qwen2", "Qwen2ForCausalLM")] {
            let (bytes, source) = try convert(model, arch: arch)
            let (g, dir) = try open(bytes)
            defer { try? FileManager.default.removeItem(at: dir) }
            let c = try g.hfConfig()
            let want = source.config
            XCTAssertEqual(c["architectures"], .array([.string(className)]), model)
            XCTAssertEqual(c["model_type"], want["model_type"], model)
            for key in ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                        "max_position_embeddings", "vocab_size", "tie_word_embeddings", "bos_token_id", "eos_token_id"] {
                XCTAssertEqual(c[key], want[key], "\(model) \(key)")
            }
            XCTAssertEqual(c["rms_norm_eps"]?.doubleValue, want["rms_norm_eps"]?.doubleValue, model)
            XCTAssertEqual(c["rope_theta"]?.doubleValue, want["rope_parameters"]?["rope_theta"]?.doubleValue, model)
            XCTAssertEqual(c["head_dim"]?.intValue, want["hidden_size"]!.intValue! / want["num_attention_heads"]!.intValue!, model)
            XCTAssertEqual(c["num_local_experts"], want["num_local_experts"], model)
            XCTAssertEqual(c["num_experts_per_tok"], want["num_experts_per_tok"], model)
            XCTAssertEqual(c["torch_dtype"], .string("float32"))
        }
    }

    func testQuantizedPermutedTensorsServeAnyElementRange() throws {
        let (bytes, source) = try convert("llama-base", arch: "llama", q8: true)
        let (g, dir) = try open(bytes)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertEqual(g.rawTensor("blk.0.attn_q.weight")?.type, .q8_0)
        for name in ["model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
                     "model.layers.2.mlp.down_proj.weight", "model.embed_tokens.weight"] {
            let info = try XCTUnwrap(g.info(name))
            XCTAssertEqual(info.dtype, .f32, name)
            XCTAssertEqual(info.storage, "Q8_0", name)
            XCTAssertNil(try g.rawBytes(name), "quantized storage has no plain bytes")
            let want = try source.readAllFloats(name)
            let got = try g.readAllFloats(name)
            // Q8_0 rounding: at most half a step of the block scale, itself at most the row's max / 127.
            let rowLength = info.rowLength
            for r in 0..<info.rowCount {
                let row = want[(r * rowLength)..<((r + 1) * rowLength)]
                let bound = row.map(abs).max()! / 127 * 0.5 * 1.01 + 1e-6
                for i in row.indices { XCTAssertLessThanOrEqual(abs(got[i] - want[i]), bound, "\(name)[\(i)]") }
            }
            // Any sub-range equals the same slice of the whole read (blocks cut at both ends, rows crossed).
            var rng = SplitMix64(seed: 42)
            for _ in 0..<40 {
                let a = Int(rng.next() % UInt64(want.count)), b = Int(rng.next() % UInt64(want.count + 1))
                let range = min(a, b)..<max(a, b)
                var part = [Float](repeating: .nan, count: range.count)
                try part.withUnsafeMutableBufferPointer { try g.readFloats(name, range: range, into: $0.baseAddress!) }
                XCTAssertEqual(part, Array(got[range]), "\(name) \(range)")
            }
        }
    }

    func testPlainF32TensorsExposeRawBytesOnlyWhenServedAsStored() throws {
        let (bytes, _) = try convert("llama-base", arch: "llama")
        let (g, dir) = try open(bytes)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertEqual(try g.rawBytes("model.layers.0.mlp.up_proj.weight")?.count, 96 * 32 * 4)
        XCTAssertNil(try g.rawBytes("model.layers.0.self_attn.q_proj.weight"), "un-permuted tensors differ from their bytes")
        XCTAssertEqual(g.info("model.layers.0.self_attn.q_proj.weight")?.dtype, .f32)
    }

    func testCheckpointOpenServesGGUFFileAndFolderHoldingOneGGUF() throws {
        let (bytes, source) = try convert("llama-base", arch: "llama")
        let dir = Fixtures.temporaryFolder("gguf-checkpoint")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try GGUFBytes.write(bytes, to: dir, name: "tiny.gguf")
        for p in [path, dir.path] {
            let ckpt = try Checkpoint.open(p)
            XCTAssertTrue(ckpt.isGGUF)
            XCTAssertEqual(ckpt.configPath, path)
            XCTAssertEqual(ckpt.config["hidden_size"], .int(32))
            XCTAssertEqual(try ckpt.source.readAllFloats("model.layers.3.self_attn.k_proj.weight"),
                           try source.readAllFloats("model.layers.3.self_attn.k_proj.weight"))
        }
        let folder = try Checkpoint.open(Fixtures.fixture("models/llama-base"))
        XCTAssertFalse(folder.isGGUF)
        XCTAssertTrue(folder.configPath.hasSuffix("llama-base/config.json"))
        XCTAssertEqual(folder.config["num_hidden_layers"], .int(4))
        // Two GGUF files and no safetensors: ambiguous.
        try GGUFBytes.write(bytes, to: dir, name: "second.gguf")
        XCTAssertThrowsError(try Checkpoint.open(dir.path)) { XCTAssertTrue("\($0)".contains("2 .gguf files"), "\($0)") }
        XCTAssertThrowsError(try Checkpoint.open(dir.path + "/missing")) { XCTAssertTrue("\($0)".contains("no such file"), "\($0)") }
        let empty = Fixtures.temporaryFolder("gguf-empty")
        defer { try? FileManager.default.removeItem(at: empty) }
        XCTAssertThrowsError(try Checkpoint.open(empty.path)) { XCTAssertTrue("\($0)".contains("config.json is missing"), "\($0)") }
    }
}
