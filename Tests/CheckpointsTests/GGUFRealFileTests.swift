import XCTest
import Checkpoints
import TestSupport

/// Real GGUF files: llama.cpp's vocab-only files and (when cached) SmolLM2-135M-Instruct Q4_1.
final class GGUFRealFileTests: XCTestCase {
    static let vocabFiles = ["ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-bpe.gguf", "ggml-vocab-qwen2.gguf"]

    func testVocabOnlyFilesParseWithTokenizerMetadata() throws {
        try Fixtures.requireShared()
        for name in Self.vocabFiles {
            let g = try GGUFFile(path: Fixtures.path("tokenizer-vectors/" + name))
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
        guard let path = Fixtures.smolLM2GGUF else {
            throw XCTSkip("SmolLM2-135M-Instruct.Q4_1.gguf is not cached (set CRUCIBLE_SMOLLM2_GGUF or place it in ~/.cache/crucible/)")
        }
        return try GGUFFile(path: path)
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
}
