import Checkpoints
import Foundation
import Reports
import TestSupport
import XCTest

final class InspectTests: XCTestCase {
    private func model(_ name: String) -> String { Fixtures.fixture("models/\(name)") }

    private func config(_ folder: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent("config.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    func testLlamaFolder() throws {
        let folder = model("llama-base")
        let report = try ModelInspection.inspect(folder)
        let cfg = try config(folder)
        let header = try CompareReference.safetensorsHeaderCounts(folder + "/model.safetensors")
        XCTAssertEqual(report.format, "safetensors")
        XCTAssertEqual(report.architecture.table, "llama")
        XCTAssertEqual(report.architecture.className, "LlamaForCausalLM")
        XCTAssertEqual(report.dimensions.hiddenSize, cfg["hidden_size"] as? Int)
        XCTAssertEqual(report.dimensions.intermediateSize, cfg["intermediate_size"] as? Int)
        XCTAssertEqual(report.dimensions.layers, cfg["num_hidden_layers"] as? Int)
        XCTAssertEqual(report.dimensions.heads, cfg["num_attention_heads"] as? Int)
        XCTAssertEqual(report.dimensions.kvHeads, cfg["num_key_value_heads"] as? Int)
        XCTAssertEqual(report.dimensions.headDim, (cfg["hidden_size"] as! Int) / (cfg["num_attention_heads"] as! Int))
        XCTAssertEqual(report.dimensions.vocabSize, cfg["vocab_size"] as? Int)
        XCTAssertEqual(report.dimensions.tiedEmbeddings, false)
        XCTAssertNil(report.dimensions.experts)
        XCTAssertEqual(report.parameterCount, header.parameters)
        XCTAssertEqual(report.tensors.count, header.tensors)
        XCTAssertEqual(report.storage.map(\.storage), ["F32"])
        XCTAssertEqual(report.storage.first?.bytes, header.parameters * 4)
        XCTAssertEqual(report.fileBytes, try FileManager.default.attributesOfItem(atPath: folder + "/model.safetensors")[.size] as? Int)
        // Architecture order: embeddings, then layer 0 from its input norm, …, final norm, head.
        XCTAssertEqual(report.tensors.first?.name, "model.embed_tokens.weight")
        XCTAssertEqual(report.tensors[1].name, "model.layers.0.input_layernorm.weight")
        XCTAssertEqual(report.tensors.last?.name, "lm_head.weight")
        let q = try XCTUnwrap(report.patterns.first { $0.pattern == "model.layers.{0-3}.self_attn.q_proj.weight" })
        XCTAssertEqual(q.count, 4)
        XCTAssertEqual(q.shape, [32, 32])
        XCTAssertEqual(report.patterns.reduce(0) { $0 + $1.count }, header.tensors)

        let tokenizer = try report.tokenizer.get()
        XCTAssertEqual(tokenizer.kind, "byte-level BPE")
        XCTAssertEqual(tokenizer.vocabularySize, 512)
        XCTAssertEqual(tokenizer.bos?.id, 1)
        XCTAssertEqual(tokenizer.bos?.text, "<s>")
        XCTAssertEqual(tokenizer.eos?.id, 2)
        XCTAssertEqual(tokenizer.eos?.text, "</s>")
        XCTAssertEqual(tokenizer.pad?.id, 0)
        XCTAssertEqual(tokenizer.pad?.text, "<pad>")
        XCTAssertTrue(tokenizer.addsBOS)
        XCTAssertEqual(tokenizer.preTokenizer, "ByteLevel")
        XCTAssertNil(report.chatTemplate)
        XCTAssertTrue(report.metadata.isEmpty)

        let text = report.text()
        XCTAssertTrue(text.contains("hidden 32, intermediate 96, layers 4, heads 4, kv heads 2, head_dim 8, vocab 512"), text)
        XCTAssertTrue(text.contains("model.layers.{0-3}.mlp.down_proj.weight"), text)
        XCTAssertFalse(text.contains("model.layers.2.mlp.down_proj.weight"), "collapsed by default")
        XCTAssertTrue(report.text(allTensors: true).contains("model.layers.2.mlp.down_proj.weight"))
        let json = try JSONSerialization.jsonObject(with: Data(report.json().serialized().utf8)) as! [String: Any]
        XCTAssertEqual(json["parameters"] as? Int, header.parameters)
        XCTAssertEqual((json["dimensions"] as! [String: Any])["hidden_size"] as? Int, 32)
        XCTAssertNil(json["tensors"], "the full list only with --tensors")
        let all = try JSONSerialization.jsonObject(with: Data(report.json(allTensors: true).serialized().utf8)) as! [String: Any]
        XCTAssertEqual((all["tensors"] as? [Any])?.count, header.tensors)
    }

    func testMixtralFolder() throws {
        let folder = model("mixtral-tiny")
        let report = try ModelInspection.inspect(folder)
        let cfg = try config(folder)
        let header = try CompareReference.safetensorsHeaderCounts(folder + "/model.safetensors")
        XCTAssertEqual(report.architecture.table, "mixtral")
        XCTAssertEqual(report.dimensions.experts, cfg["num_local_experts"] as? Int)
        XCTAssertEqual(report.dimensions.expertsPerToken, cfg["num_experts_per_tok"] as? Int)
        XCTAssertEqual(report.dimensions.ropeTheta, (cfg["rope_parameters"] as! [String: Any])["rope_theta"] as? Double)
        XCTAssertEqual(report.parameterCount, header.parameters)
        let w1 = try XCTUnwrap(report.patterns.first { $0.pattern == "model.layers.{0-1}.block_sparse_moe.experts.{0-3}.w1.weight" })
        XCTAssertEqual(w1.count, 8)
        XCTAssertEqual(w1.indices, [[0, 1], [0, 1, 2, 3]])
        XCTAssertTrue(report.text().contains("experts 4, top-k 2"))
    }

    func testConvertedGGUF() throws {
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let evilName = "evil\u{1B}[2J name"
        let (bytes, source) = try GGUFConversion.convert(
            folder: model("llama-base"), arch: "llama", q8: true,
            extraMetadata: [("general.url", .string(evilName)), ("test.floats", .array([.float32(1.5), .float32(.nan)]))])
        let path = folder.appendingPathComponent("tiny.gguf").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let report = try ModelInspection.inspect(path)
        let gguf = try GGUFFile(path: path)
        XCTAssertEqual(report.format, "gguf")
        XCTAssertEqual(report.ggufVersion, Int(gguf.version))
        XCTAssertEqual(report.parameterCount, gguf.rawTensors.reduce(0) { $0 + $1.elementCount })
        XCTAssertEqual(report.parameterCount, source.tensorNames.reduce(0) { $0 + source.info($1)!.elementCount })
        XCTAssertEqual(report.tensorBytes, gguf.rawTensors.reduce(0) { $0 + $1.byteCount })
        let q8 = try XCTUnwrap(report.storage.first { $0.storage == "Q8_0" })
        XCTAssertEqual(q8.bytes, q8.parameters / 32 * 34)
        XCTAssertEqual(report.dimensions.hiddenSize, gguf.metadata["llama.embedding_length"]?.intValue)
        XCTAssertEqual(report.dimensions.layers, gguf.metadata["llama.block_count"]?.intValue)
        XCTAssertEqual(report.dimensions.kvHeads, 2)
        XCTAssertEqual(report.tensors.first { $0.name == "model.layers.0.self_attn.q_proj.weight" }?.ggufName, "blk.0.attn_q.weight")
        // No tokenizer in this file: reported, not thrown.
        guard case let .failure(problem) = report.tokenizer else { return XCTFail("expected a tokenizer problem") }
        XCTAssertTrue(problem.reason.contains(path), problem.reason)
        // Metadata: hostile text is escaped in the terminal report; NaN is null in JSON.
        let text = report.text()
        XCTAssertFalse(text.contains("\u{1B}"), "control characters must not reach the terminal")
        XCTAssertTrue(text.contains("evil\\u{1B}[2J name"), text)
        let floats = try XCTUnwrap(report.metadata.first { $0.key == "test.floats" })
        XCTAssertEqual(floats.length, 2)
        XCTAssertEqual(floats.value, .array([.double(1.5), .null]))
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(report.json().serialized().utf8)))
    }

    func testRealSmolLM2GGUF() throws {
        guard let path = Fixtures.smolLM2GGUF else {
            throw XCTSkip("SmolLM2-135M-Instruct.Q4_1.gguf not found (set CRUCIBLE_SMOLLM2_GGUF or run scripts/fetch-smollm2.sh)")
        }
        let report = try ModelInspection.inspect(path)
        let gguf = try GGUFFile(path: path)
        func meta(_ key: String) -> Int? { gguf.metadata[key]?.intValue }
        XCTAssertEqual(report.architecture.table, "llama")
        XCTAssertEqual(report.dimensions.hiddenSize, meta("llama.embedding_length"))
        XCTAssertEqual(report.dimensions.intermediateSize, meta("llama.feed_forward_length"))
        XCTAssertEqual(report.dimensions.layers, meta("llama.block_count"))
        XCTAssertEqual(report.dimensions.heads, meta("llama.attention.head_count"))
        XCTAssertEqual(report.dimensions.kvHeads, meta("llama.attention.head_count_kv"))
        XCTAssertEqual(report.dimensions.vocabSize, gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count)
        XCTAssertEqual(report.dimensions.tiedEmbeddings, gguf.rawTensor("output.weight") == nil)
        XCTAssertEqual(report.parameterCount, gguf.rawTensors.reduce(0) { $0 + $1.elementCount })
        XCTAssertEqual(report.tensorBytes, gguf.rawTensors.reduce(0) { $0 + $1.byteCount })
        XCTAssertEqual(report.fileBytes, gguf.mapped.size)
        let tokenizer = try report.tokenizer.get()
        XCTAssertEqual(tokenizer.vocabularySize, report.dimensions.vocabSize)
        XCTAssertEqual(tokenizer.bos?.id, meta("tokenizer.ggml.bos_token_id"))
        XCTAssertEqual(tokenizer.eos?.id, meta("tokenizer.ggml.eos_token_id"))
        XCTAssertEqual(tokenizer.preTokenizer, gguf.metadata["tokenizer.ggml.pre"]?.stringValue)
        XCTAssertEqual(report.chatTemplate, gguf.metadata["tokenizer.chat_template"]?.stringValue)
        let tokens = try XCTUnwrap(report.metadata.first { $0.key == "tokenizer.ggml.tokens" })
        XCTAssertEqual(tokens.length, report.dimensions.vocabSize)
        XCTAssertEqual(tokens.value, .array([]), "the vocabulary is not dumped")
        XCTAssertEqual(report.metadata.map(\.key), gguf.metadataKeys)
        let json = report.json().serialized()
        XCTAssertLessThan(json.utf8.count, 200_000, "tokenizer arrays must not be dumped")
    }

    func testTokenizerProblemsAreReportedNotThrown() throws {
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = model("llama-base")
        try FileManager.default.copyItem(atPath: base + "/config.json", toPath: folder.appendingPathComponent("config.json").path)
        try FileManager.default.copyItem(atPath: base + "/model.safetensors", toPath: folder.appendingPathComponent("model.safetensors").path)
        var report = try ModelInspection.inspect(folder.path)
        guard case let .failure(missing) = report.tokenizer else { return XCTFail("no tokenizer.json should be reported") }
        XCTAssertTrue(missing.reason.contains("no tokenizer.json"), missing.reason)
        XCTAssertTrue(report.text().contains("Tokenizer: not loaded:"))

        try Data("{\"model\": 5".utf8).write(to: folder.appendingPathComponent("tokenizer.json"))
        report = try ModelInspection.inspect(folder.path)
        guard case let .failure(broken) = report.tokenizer else { return XCTFail("a broken tokenizer.json should be reported") }
        XCTAssertTrue(broken.reason.contains("tokenizer.json"), broken.reason)
        let json = try JSONSerialization.jsonObject(with: Data(report.json().serialized().utf8)) as! [String: Any]
        XCTAssertNotNil((json["tokenizer"] as? [String: Any])?["error"] as? String)
        XCTAssertEqual(json["parameters"] as? Int, 82_208)
    }

    /// A hub id is looked up in the Hugging Face cache the way recipe references are.
    func testHubIDResolvesInTheLocalCache() throws {
        let cache = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cache) }
        let snapshot = cache.appendingPathComponent("models--test-org--tiny-llama/snapshots/0123abcd")
        try FileManager.default.createDirectory(at: snapshot.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: snapshot.path, withDestinationPath: model("llama-base"))
        let environment = ["HF_HUB_CACHE": cache.path, "HOME": cache.path]
        let path = try ModelArgument.resolve("test-org/tiny-llama", environment: environment)
        XCTAssertEqual(path, snapshot.path)
        let report = try ModelInspection.inspect(checkpoint: Checkpoint.open(path), reference: "test-org/tiny-llama")
        XCTAssertEqual(report.parameterCount, 82_208)
        XCTAssertThrowsError(try ModelArgument.resolve("test-org/absent", environment: environment)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("test-org/absent") && text.contains(cache.path), text)
        }
    }

    func testTruncatedFilesAreErrorsNamingThem() throws {
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (bytes, _) = try GGUFConversion.convert(folder: model("llama-base"), arch: "llama")
        for cut in [10, 300, bytes.count - 64] {
            let path = folder.appendingPathComponent("cut-\(cut).gguf").path
            try Data(bytes.prefix(cut)).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try ModelInspection.inspect(path), "cut at \(cut)") { error in
                XCTAssertTrue("\(error)".contains(path), "\(error)")
            }
        }
        let st = folder.appendingPathComponent("st")
        try FileManager.default.createDirectory(at: st, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: model("llama-base") + "/config.json", toPath: st.appendingPathComponent("config.json").path)
        let data = try Data(contentsOf: URL(fileURLWithPath: model("llama-base") + "/model.safetensors"))
        let file = st.appendingPathComponent("model.safetensors")
        try data.prefix(data.count / 2).write(to: file)
        XCTAssertThrowsError(try ModelInspection.inspect(st.path)) { error in
            XCTAssertTrue("\(error)".contains(file.path), "\(error)")
        }
        XCTAssertThrowsError(try ModelInspection.inspect("no-such-org/no-such-model")) { error in
            XCTAssertTrue("\(error)".contains("no-such-org/no-such-model"), "\(error)")
        }
    }
}
