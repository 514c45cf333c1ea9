import XCTest
import Checkpoints
import TestSupport

/// Real GGUF files: llama.cpp's vocab-only files and (when cached) SmolLM2-135M-Instruct Q4_1.
final class GGUFRealFileTests: XCTestCase {
    static let vocabFiles = ["ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-bpe.gguf", "ggml-vocab-qwen2.gguf"]

    func testVocabOnlyFilesParseWithTokenizerMetadata() throws {
        let paths = try Self.vocabFiles.map { try Fixtures.requireSharedFile("tokenizer-vectors/" + $0) }
        for (name, path) in zip(Self.vocabFiles, paths) {
            let g = try GGUFFile(path: path)
            XCTAssertTrue(g.version == 2 || g.version == 3, name)
            XCTAssertEqual(g.rawTensors.count, 0, name)
            XCTAssertTrue(g.tensorNames.isEmpty, name)
            let tokens = try XCTUnwrap(g.metadata["tokenizer.ggml.tokens"]?.stringArray, name)
            XCTAssertGreaterThan(tokens.count, 1000, name)
            XCTAssertNotNil(g.metadata["tokenizer.ggml.model"]?.stringValue, name)
            XCTAssertEqual(g.metadataKeys.count, g.metadata.count, name)
            XCTAssertEqual(Set(g.metadataKeys), Set(g.metadata.keys), name)
            if let types = g.metadata["tokenizer.ggml.token_type"]?.intArray {
                XCTAssertEqual(types.count, tokens.count, name)
            }
            XCTAssertNotNil(g.architecture, name)
        }
        let spm = try GGUFFile(path: Fixtures.path("tokenizer-vectors/ggml-vocab-llama-spm.gguf"))
        XCTAssertEqual(spm.metadata["tokenizer.ggml.model"]?.stringValue, "llama")
        XCTAssertEqual(spm.metadata["tokenizer.ggml.scores"]?.floatArray?.count,
                       spm.metadata["tokenizer.ggml.tokens"]?.stringArray?.count)
        let bpe = try GGUFFile(path: Fixtures.path("tokenizer-vectors/ggml-vocab-llama-bpe.gguf"))
        XCTAssertEqual(bpe.metadata["tokenizer.ggml.model"]?.stringValue, "gpt2")
        XCTAssertGreaterThan(bpe.metadata["tokenizer.ggml.merges"]?.stringArray?.count ?? 0, 1000)
    }

    private func smolLM2() throws -> GGUFFile {
        try GGUFFile(path: Fixtures.requireSmolLM2GGUF())
    }

    func testSmolLM2OpensWithHuggingFaceNamesAndShapes() throws {
        let g = try smolLM2()
        XCTAssertEqual(g.architecture, "llama")
        XCTAssertEqual(g.rawTensors.count, 272)
        XCTAssertEqual(g.tensorNames.count, 272)
        XCTAssertEqual(g.info("model.embed_tokens.weight")?.shape, [49152, 576])
        XCTAssertNil(g.info("lm_head.weight"), "SmolLM2 ties lm_head to the embedding")
        XCTAssertEqual(g.info("model.layers.0.self_attn.q_proj.weight")?.shape, [576, 576])
        XCTAssertEqual(g.info("model.layers.0.self_attn.k_proj.weight")?.shape, [192, 576])
        XCTAssertEqual(g.info("model.layers.29.mlp.down_proj.weight")?.shape, [576, 1536])
        XCTAssertEqual(g.info("model.layers.29.mlp.gate_proj.weight")?.shape, [1536, 576])
        XCTAssertEqual(g.info("model.norm.weight")?.shape, [576])
        XCTAssertEqual(g.info("model.layers.3.input_layernorm.weight")?.storage, "F32")
        let q = try XCTUnwrap(g.info("model.layers.0.self_attn.q_proj.weight"))
        XCTAssertEqual(q.dtype, .f32)
        XCTAssertEqual(q.storage, "Q4_1")
        XCTAssertEqual(g.ggufName(of: "model.layers.0.self_attn.q_proj.weight"), "blk.0.attn_q.weight")
    }

    func testSmolLM2ConfigFromMetadata() throws {
        let g = try smolLM2()
        let c = try g.hfConfig()
        XCTAssertEqual(c["architectures"], .array([.string("LlamaForCausalLM")]))
        XCTAssertEqual(c["model_type"], .string("llama"))
        XCTAssertEqual(c["hidden_size"], .int(576))
        XCTAssertEqual(c["num_hidden_layers"], .int(30))
        XCTAssertEqual(c["num_attention_heads"], .int(9))
        XCTAssertEqual(c["num_key_value_heads"], .int(3))
        XCTAssertEqual(c["intermediate_size"], .int(1536))
        XCTAssertEqual(c["vocab_size"], .int(49152))
        XCTAssertEqual(c["head_dim"], .int(64))
        XCTAssertEqual(c["tie_word_embeddings"], .bool(true))
        XCTAssertEqual(c["rms_norm_eps"]?.doubleValue, 1e-5)
        XCTAssertEqual(c["rope_theta"]?.doubleValue, 100_000)
        XCTAssertEqual(c["max_position_embeddings"], .int(8192))
        XCTAssertNotNil(c["bos_token_id"]?.intValue)
        XCTAssertNotNil(c["eos_token_id"]?.intValue)
        XCTAssertNil(c["num_local_experts"])
        XCTAssertEqual(g.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count, 49152)
    }

    func testSmolLM2WeightsDequantizeToPlausibleValues() throws {
        let g = try smolLM2()
        // F32 norm weights read back exactly as stored.
        let norm = try g.readAllFloats("model.norm.weight")
        let raw = try XCTUnwrap(g.rawBytes("model.norm.weight"))
        XCTAssertEqual(raw.count, 576 * 4)
        XCTAssertEqual(norm, Array(raw.bindMemory(to: Float.self)))
        XCTAssertTrue(norm.allSatisfy { $0.isFinite && $0 != 0 })
        // Q4_1 attention and MLP rows: finite, centred near zero, with the spread of trained weights.
        for name in ["model.layers.0.self_attn.q_proj.weight", "model.layers.17.mlp.down_proj.weight", "model.embed_tokens.weight"] {
            let info = try XCTUnwrap(g.info(name))
            let rows = 8
            var buf = [Float](repeating: .nan, count: rows * info.rowLength)
            try buf.withUnsafeMutableBufferPointer { try g.readFloats(name, range: 0..<(rows * info.rowLength), into: $0.baseAddress!) }
            XCTAssertTrue(buf.allSatisfy(\.isFinite), name)
            let mean = buf.reduce(0, +) / Float(buf.count)
            let rms = (buf.map { $0 * $0 }.reduce(0, +) / Float(buf.count)).squareRoot()
            XCTAssertLessThan(abs(mean), rms, name)
            XCTAssertGreaterThan(rms, 0.005, name)
            XCTAssertLessThan(rms, 2, name)
            XCTAssertLessThan(buf.map(abs).max()!, 50, name)
        }
        // The un-permuted Q projection is a row permutation of the stored one (same multiset of rows).
        let q = try g.readAllFloats("model.layers.0.self_attn.q_proj.weight")
        let t = try XCTUnwrap(g.rawTensor("blk.0.attn_q.weight"))
        var stored = [Float](repeating: 0, count: t.elementCount)
        try stored.withUnsafeMutableBufferPointer { try g.readRawFloats("blk.0.attn_q.weight", range: 0..<t.elementCount, into: $0.baseAddress!) }
        XCTAssertNotEqual(q, stored)
        let rowsOf = { (v: [Float]) in Set(stride(from: 0, to: v.count, by: 576).map { Array(v[$0..<($0 + 576)]).map(\.bitPattern) }) }
        XCTAssertEqual(rowsOf(q), rowsOf(stored))
        // Row 1 of head 0 (i = 0, j = 1) is stored at row 2; row 32 (i = 1, j = 0) at row 1.
        XCTAssertEqual(Array(q[576..<1152]), Array(stored[1152..<1728]))
        XCTAssertEqual(Array(q[(32 * 576)..<(33 * 576)]), Array(stored[576..<1152]))
    }
}
