import Architectures
import Checkpoints
import Export
import Inference
import TestSupport
import Tokenization
import XCTest

/// GGUF export of the fixture models, read back through Crucible's GGUF reader and engine.
final class GGUFExportTests: XCTestCase {
    private func export(_ model: String, _ type: String, pure: Bool = false) throws -> (Checkpoint, GGUFExportReport, String) {
        let folder = Fixtures.temporaryFolder("export")
        let out = folder.appendingPathComponent("\(model)-\(type).gguf").path
        let source = try Checkpoint.open(Fixtures.fixture("models/\(model)"))
        let report = try GGUFExport.export(source, to: out, options: GGUFExportOptions(fileType: GGUFFileType(name: type, pure: pure)!, threads: 2))
        return (source, report, out)
    }

    /// F32 export is lossless: every tensor reads back bit-identical (the reader undoes the Q/K permutation the
    /// export applied), the derived config matches, and the logits through the engine are the same.
    func testF32ExportRoundTripsEveryTensorAndTheLogits() throws {
        for model in ["llama-base", "qwen2-base", "mistral-base", "llama-tied", "mixtral-tiny", "llama-rope-llama3"] {
            let (source, report, out) = try export(model, "F32")
            let gguf = try Checkpoint.open(out)
            XCTAssertTrue(gguf.isGGUF)
            XCTAssertEqual(Set(gguf.source.tensorNames), Set(source.source.tensorNames), model)
            for name in source.source.tensorNames {
                XCTAssertEqual(try gguf.source.readAllFloats(name), try source.source.readAllFloats(name), "\(model): \(name)")
            }
            let a = try ModelConfig(json: source.config, file: source.configPath)
            let b = try ModelConfig(json: gguf.config, file: gguf.configPath)
            XCTAssertEqual(a.layerCount, b.layerCount)
            XCTAssertEqual(a.headDim, b.headDim)
            XCTAssertEqual(a.kvHeadCount, b.kvHeadCount)
            XCTAssertEqual(a.ropeTheta, b.ropeTheta)
            if case let .llama3(factor, low, high, original) = a.ropeScaling {
                // llama.cpp's rope_freqs, as its converter computes them (reference values from torch, float32).
                var divisors = [Float](repeating: .nan, count: a.headDim / 2)
                try divisors.withUnsafeMutableBufferPointer {
                    try (gguf.source as! GGUFFile).readRawFloats("rope_freqs.weight", range: 0..<(a.headDim / 2), into: $0.baseAddress!)
                }
                XCTAssertEqual(divisors, [1, 3.9269907474517822, 4, 4], "\(model): rope_freqs for factor \(factor), \(low)…\(high), \(original)")
            }
            XCTAssertEqual(a.experts?.count, b.experts?.count)
            XCTAssertEqual(a.tieWordEmbeddings, b.tieWordEmbeddings, model)
            let ids = [1, 17, 42, 99, 3, 250, 7, 8]
            let expected = try LanguageModel(path: Fixtures.fixture("models/\(model)"), threads: 1).forward(ids).values
            let got = try LanguageModel(path: out, threads: 1).forward(ids).values
            XCTAssertEqual(got, expected, "\(model): logits through the exported F32 GGUF")
            XCTAssertTrue(report.tensors.allSatisfy { $0.type == .f32 })
            XCTAssertEqual(report.bytes, try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int, "\(model): reported size")
            XCTAssertEqual(report.tensors.contains { $0.name == "rope_freqs.weight" }, model == "llama-rope-llama3")
        }
    }

    /// Qwen3 (archs fixture: q/k norms, head_dim 12 ≠ hidden / heads) exports as llama.cpp's `qwen3` and reads back
    /// with every tensor and the engine's logits unchanged, which match transformers' golden.
    func testQwen3F32ExportRoundTrips() throws {
        let folder = Fixtures.temporaryFolder("export-qwen3")
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("qwen3-base.gguf").path
        let source = try Checkpoint.open(Fixtures.fixture("archs/models/qwen3-base"))
        let report = try GGUFExport.export(source, to: out, options: GGUFExportOptions(fileType: GGUFFileType(name: "F32")!, threads: 2))
        XCTAssertEqual(report.architecture, "qwen3")
        XCTAssertTrue(report.tensors.contains { $0.name == "blk.0.attn_q_norm.weight" })
        let gguf = try Checkpoint.open(out)
        XCTAssertEqual(Set(gguf.source.tensorNames), Set(source.source.tensorNames))
        for name in source.source.tensorNames {
            XCTAssertEqual(try gguf.source.readAllFloats(name), try source.source.readAllFloats(name), name)
        }
        XCTAssertEqual(try ModelConfig(json: gguf.config, file: gguf.configPath).headDim, 12)
        let ids = [1, 17, 42, 99, 3, 250, 7, 8]
        let expected = try LanguageModel(path: Fixtures.fixture("archs/models/qwen3-base"), threads: 1).forward(ids).values
        XCTAssertEqual(try LanguageModel(path: out, threads: 1).forward(ids).values, expected)
    }

    /// Quantized exports read back as Crucible's own quantize-then-dequantize of the same rows.
    func testQuantizedTensorsReadBackAsQuantizeThenDequantize() throws {
        for type in ["Q8_0", "Q4_0", "Q5_1", "F16", "BF16"] {
            let (source, report, out) = try export("qwen2-base", type, pure: true)
            let gguf = try Checkpoint.open(out)
            let file = try XCTUnwrap(gguf.source as? GGUFFile)
            for hf in file.tensorNames {
                guard let g = file.ggufName(of: hf), let spec = report.tensors.first(where: { $0.name == g }), spec.shape.count == 2 else { continue }
                let original = try source.source.readAllFloats(hf)
                let n = original.count
                var bytes = [UInt8](repeating: 0, count: spec.type.byteCount(elements: n)!)
                var back = [Float](repeating: .nan, count: n)
                try original.withUnsafeBufferPointer { x in
                    try bytes.withUnsafeMutableBytes { try quantize(spec.type, x.baseAddress!, count: n, into: $0.baseAddress!) }
                }
                try bytes.withUnsafeBytes { b in try back.withUnsafeMutableBufferPointer { try dequantize(spec.type, b.baseAddress!, count: n, into: $0.baseAddress!) } }
                XCTAssertEqual(try gguf.source.readAllFloats(hf), back, "\(type): \(spec.name)")
            }
        }
    }

    func testQuantizedExportStaysCloseToTheModel() throws {
        let ids = [1, 17, 42, 99, 3, 250, 7, 8, 11, 300]
        let reference = try LanguageModel(path: Fixtures.fixture("models/llama-base"), threads: 1).forward(ids).values
        let scale = reference.map { abs($0) }.max()!
        var previous: Float = 0
        for (type, bound) in [("Q8_0", Float(0.02)), ("Q4_K_M", 0.2)] {
            let (_, _, out) = try export("llama-base", type)
            let got = try LanguageModel(path: out, threads: 1).forward(ids).values
            let worst = zip(got, reference).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst / scale, bound, "\(type)")
            XCTAssertGreaterThan(worst, previous, "\(type) should lose more than the type before it")
            previous = worst
        }
    }

    /// Llama 3.1's own settings (θ 500000, head 128, factor 8, 1…4, 8192): the divisors torch computes in
    /// llama.cpp's converter, as float32 bit patterns.
    func testLlama3RopeDivisorsMatchTheConverter() {
        let expected: [UInt32] = [0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f800000,0x3f9a8ed5,0x3fc6d64a,0x4001af1d,0x402c732e,0x406bcace,0x40a83c06,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000,0x41000000]
        let got = GGUFExport.llama3RopeDivisors(theta: 500_000, headDim: 128, factor: 8, lowFrequencyFactor: 1,
                                                highFrequencyFactor: 4, originalContext: 8192)
        XCTAssertEqual(got.map(\.bitPattern), expected)
    }

    func testTokenizerKeysFromTokenizerJSON() throws {
        let (_, _, out) = try export("llama-base", "F16")
        let gguf = try GGUFFile(path: out)
        XCTAssertEqual(gguf.metadata["tokenizer.ggml.model"]?.stringValue, "gpt2")
        XCTAssertEqual(gguf.metadata["tokenizer.ggml.pre"]?.stringValue, "gpt-2")
        XCTAssertEqual(gguf.metadata["general.architecture"]?.stringValue, "llama")
        XCTAssertEqual(gguf.metadata["general.file_type"]?.intValue, 1)
        // The tokenizer read from the GGUF encodes as the one read from the folder.
        let fromFolder = try TokenizerLoader.load(path: Fixtures.fixture("models/llama-base"))
        let fromGGUF = try TokenizerLoader.load(ggufMetadata: gguf.metadata, file: out)
        for text in ["Hello world", "The 2024 merges, at 3.5x speed!", "  spaces\tand\nnewlines"] {
            XCTAssertEqual(fromGGUF.encode(text, addSpecial: false, parseSpecial: false),
                           fromFolder.encode(text, addSpecial: false, parseSpecial: false), text)
        }
    }

    func testFileTypeRulesFollowLlamaQuantize() {
        // 32 layers, no experts: Q4_K_M gives attn_v and ffn_down Q6_K where use_more_bits holds.
        var chooser = QuantizationTypeChooser(fileType: GGUFFileType(name: "Q4_K_M")!,
            facts: QuantizationModelFacts(architecture: "llama", layerCount: 32, gqa: 4, expertCount: 0, tiedEmbeddings: false, attentionVCount: 32))
        var v: [GGMLType] = []
        for i in 0..<32 { v.append(chooser.type(for: "blk.\(i).attn_v.weight", shape: [1024, 4096], unquantized: .f32)) }
        let more = Set([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31])
        XCTAssertEqual(v, (0..<32).map { more.contains($0) ? .q6_K : .q4_K })
        XCTAssertEqual(chooser.type(for: "output.weight", shape: [32000, 4096], unquantized: .f32), .q6_K)
        XCTAssertEqual(chooser.type(for: "token_embd.weight", shape: [32000, 4096], unquantized: .f32), .q4_K)
        XCTAssertEqual(chooser.type(for: "blk.0.attn_norm.weight", shape: [4096], unquantized: .f32), .f32)
        // Rows of 576 are not whole 256-blocks: Q4_K falls back to Q5_0 and Q6_K to Q8_0.
        XCTAssertEqual(chooser.type(for: "blk.5.attn_q.weight", shape: [576, 576], unquantized: .f32), .q5_0)
        XCTAssertEqual(chooser.type(for: "blk.0.ffn_down.weight", shape: [576, 1536], unquantized: .f32), .q6_K)
        XCTAssertEqual(chooser.fallbacks.map(\.0), ["blk.5.attn_q.weight"])
        // Tied embeddings take the output rule; --pure takes the base type everywhere.
        var tied = QuantizationTypeChooser(fileType: GGUFFileType(name: "Q4_K_M")!,
            facts: QuantizationModelFacts(architecture: "llama", layerCount: 30, gqa: 3, expertCount: 0, tiedEmbeddings: true, attentionVCount: 30))
        XCTAssertEqual(tied.type(for: "token_embd.weight", shape: [49152, 576], unquantized: .f32), .q8_0)
        var pure = QuantizationTypeChooser(fileType: GGUFFileType(name: "Q4_K_M", pure: true)!,
            facts: QuantizationModelFacts(architecture: "llama", layerCount: 30, gqa: 3, expertCount: 0, tiedEmbeddings: false, attentionVCount: 30))
        XCTAssertEqual(pure.type(for: "blk.0.attn_v.weight", shape: [192, 512], unquantized: .f32), .q4_K)
        XCTAssertEqual(pure.type(for: "output.weight", shape: [49152, 512], unquantized: .f32), .q4_K)
    }

    /// llama-quantize's own choices for SmolLM2-135M (30 layers, 576-wide rows, tied head), every file type,
    /// tensor by tensor in its file order (Tests/References/quant/smollm2-135m-file-types.txt).
    func testFileTypeRulesMatchLlamaQuantizeOnSmolLM2() throws {
        let path = Fixtures.packageRoot.appendingPathComponent("Tests/References/quant/smollm2-135m-file-types.txt").path
        var byType: [String: [(name: String, shape: [Int], type: String)]] = [:]
        var order: [String] = []
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: " ").map(String.init)
            XCTAssertEqual(f.count, 4, String(line))
            if byType[f[0]] == nil { order.append(f[0]) }
            byType[f[0], default: []].append((f[1], f[2].split(separator: "x").map { Int($0)! }, f[3]))
        }
        XCTAssertGreaterThanOrEqual(order.count, 10)
        for fileType in order {
            let tensors = byType[fileType]!
            var chooser = QuantizationTypeChooser(fileType: try XCTUnwrap(GGUFFileType(name: fileType)),
                facts: QuantizationModelFacts(architecture: "llama", layerCount: 30, gqa: 3, expertCount: 0, tiedEmbeddings: true,
                                              attentionVCount: QuantizationTypeChooser.attentionVCount(tensors.map(\.name))))
            var wrong: [String] = []
            for t in tensors {
                let got = chooser.type(for: t.name, shape: t.shape, unquantized: .f32)
                if got.name != t.type { wrong.append("\(t.name): \(got.name) instead of \(t.type)") }
            }
            XCTAssertEqual(wrong, [], fileType)
        }
    }

    func testRefusesWhatItCannotWriteExactly() throws {
        let folder = Fixtures.temporaryFolder("export-refuse")
        let out = folder.appendingPathComponent("x.gguf").path
        // An architecture without GGUF conventions is refused by name; nothing is left behind.
        let otherFolder = Fixtures.temporaryFolder("export-other")
        try FileManager.default.copyItem(atPath: Fixtures.fixture("models/llama-base"), toPath: otherFolder.appendingPathComponent("m").path)
        var config = try JSONValue.parse(file: otherFolder.appendingPathComponent("m/config.json").path).objectValue!
        config["architectures"] = .array([.string("GemmaForCausalLM")])
        try JSONValue.object(config).serialized().write(toFile: otherFolder.appendingPathComponent("m/config.json").path, atomically: true, encoding: .utf8)
        let unknown = try Checkpoint.open(otherFolder.appendingPathComponent("m").path)
        XCTAssertThrowsError(try GGUFExport.export(unknown, to: out, options: GGUFExportOptions(fileType: GGUFFileType(name: "F16")!))) {
            XCTAssertTrue("\($0)".contains("GemmaForCausalLM"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no partial file")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        XCTAssertEqual(leftovers, [], "no staging file left behind")
        // An existing file is not replaced without overwrite.
        FileManager.default.createFile(atPath: out, contents: Data("keep".utf8))
        let base = try Checkpoint.open(Fixtures.fixture("models/llama-base"))
        XCTAssertThrowsError(try GGUFExport.export(base, to: out, options: GGUFExportOptions(fileType: GGUFFileType(name: "Q8_0")!)))
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "keep")
        _ = try GGUFExport.export(base, to: out, options: GGUFExportOptions(fileType: GGUFFileType(name: "Q8_0")!, overwrite: true))
        XCTAssertEqual(try GGUFFile(path: out).metadata["general.file_type"]?.intValue, 7)
        // The model being read is never the output, even with overwrite.
        let gguf = try Checkpoint.open(out)
        XCTAssertThrowsError(try GGUFExport.export(gguf, to: out, options: GGUFExportOptions(fileType: GGUFFileType(name: "Q4_0")!, overwrite: true))) {
            XCTAssertTrue("\($0)".contains("being exported"), "\($0)")
        }
        XCTAssertEqual(try GGUFFile(path: out).metadata["general.file_type"]?.intValue, 7)
    }
}
