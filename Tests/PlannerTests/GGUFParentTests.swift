import Checkpoints
import Foundation
import Planner
import Recipes
import TestSupport
import XCTest

/// A GGUF file is a merge parent like any checkpoint folder (mergekit cannot read GGUF).
final class GGUFParentTests: XCTestCase {
    func testLinearMergeOfAGGUFParentEqualsTheSafetensorsMerge() throws {
        let dir = Fixtures.temporaryFolder("gguf-parent")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (bytes, _) = try GGUFConversion.convert(folder: Fixtures.fixture("models/llama-base"), arch: "llama")
        let gguf = try GGUFBytes.write(bytes, to: dir, name: "llama-base.gguf")
        let recipe = { (first: String) in writeRecipe("""
            merge_method: linear
            models:
              - model: \(first)
                parameters: {weight: 0.3}
              - model: \(Fixtures.fixture("models/llama-ft1"))
                parameters: {weight: 0.7}
            dtype: float32
            """) }
        let (plan, fromGGUF) = try runRecipe(recipe(gguf))
        let (_, fromFolder) = try runRecipe(recipe(Fixtures.fixture("models/llama-base")))
        XCTAssertEqual(plan.models[0].architecture.name, "llama")
        XCTAssertTrue(plan.warnings.contains { $0.contains("no tokenizer files are copied") }, "\(plan.warnings)")
        let a = try loadTensors(fromGGUF + "/model.safetensors"), b = try loadTensors(fromFolder + "/model.safetensors")
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        for (name, t) in b {
            XCTAssertEqual(a[name]!.values, t.values, "\(name): the GGUF parent (Q/K un-permuted) gives the same merge")
        }
    }

    /// A GGUF tokenizer donor's vocabulary is exported into the output as Hugging Face files (with the recipe's
    /// chat template applied), and the plan no longer warns.
    func testGGUFTokenizerDonorGetsExportedTokenizerFiles() throws {
        let dir = Fixtures.temporaryFolder("gguf-tokenizer-donor")
        defer { try? FileManager.default.removeItem(at: dir) }
        // A byte-level vocabulary: the 256 byte symbols, two merges and an end-of-text control token.
        var next: UInt32 = 256
        var tokens = (0..<256).map { (b: UInt32) -> String in
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) { return String(Unicode.Scalar(b)!) }
            defer { next += 1 }
            return String(Unicode.Scalar(next)!)
        }
        tokens += ["ab", "Ġab", "<|endoftext|>"]
        let tokenizer: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .array(tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(tokens.indices.map { .int32($0 == tokens.count - 1 ? 3 : 1) })),
            ("tokenizer.ggml.merges", .array([.string("a b"), .string("Ġ ab")])),
            ("tokenizer.chat_template", .string("{{ messages }}")),
        ]
        let (bytes, _) = try GGUFConversion.convert(folder: Fixtures.fixture("models/llama-base"), arch: "llama", extraMetadata: tokenizer)
        let gguf = try GGUFBytes.write(bytes, to: dir, name: "llama-base.gguf")
        let (plan, output) = try runRecipe(writeRecipe("""
            merge_method: linear
            models:
              - model: \(Fixtures.fixture("models/llama-ft1"))
                parameters: {weight: 0.5}
              - model: \(gguf)
                parameters: {weight: 0.5}
            tokenizer_source: \(gguf)
            chat_template: chatml
            dtype: float32
            """))
        XCTAssertEqual(plan.tokenizerDonor, 1)
        // The GGUF's 259 tokens become the output vocabulary (rows matched by token); the 512-row embedding shrinks to it.
        XCTAssertFalse(plan.warnings.contains { $0.contains("cannot be exported") }, "\(plan.warnings)")
        XCTAssertEqual(plan.outputConfig["vocab_size"]?.intValue, tokens.count)
        let tokenizerJSON = try JSONValue.parse(file: output + "/tokenizer.json")
        XCTAssertEqual(tokenizerJSON["model"]?["type"]?.stringValue, "BPE")
        XCTAssertEqual(tokenizerJSON["model"]?["vocab"]?.objectValue?.count, tokens.count)
        XCTAssertEqual(tokenizerJSON["model"]?["merges"]?.arrayValue?.count, 2)
        XCTAssertEqual(tokenizerJSON["added_tokens"]?.arrayValue?.first?["content"]?.stringValue, "<|endoftext|>")
        let config = try JSONValue.parse(file: output + "/tokenizer_config.json")
        XCTAssertEqual(config["chat_template"]?.stringValue, ChatTemplates.builtIn["chatml"], "the recipe's template wins over the GGUF one")
        XCTAssertEqual(config["eos_token"]?.stringValue, tokens[2], "the spelling of the GGUF's eos_token_id (2)")
        XCTAssertEqual(config["model_max_length"]?.intValue, try CheckpointFolder(path: Fixtures.fixture("models/llama-base")).config["max_position_embeddings"]?.intValue)
        let generation = try JSONValue.parse(file: output + "/generation_config.json")
        XCTAssertEqual(generation["eos_token_id"]?.intValue, 2, "the GGUF's eos_token_id")
        XCTAssertEqual(config["tokenizer_class"]?.stringValue, "TokenizersBackend", "a built vocabulary's tokenizer")
    }

    /// A GGUF donor whose vocabulary the export cannot convert keeps the warning, with the reason, at plan time.
    func testUnconvertibleGGUFTokenizerIsReportedAtPlanTime() throws {
        let dir = Fixtures.temporaryFolder("gguf-tokenizer-spm")
        defer { try? FileManager.default.removeItem(at: dir) }
        let tokenizer: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("no-such-pre")),
            ("tokenizer.ggml.tokens", .array([.string("a"), .string("b"), .string("ab")])),
            ("tokenizer.ggml.merges", .array([.string("a b")])),
        ]
        let (bytes, _) = try GGUFConversion.convert(folder: Fixtures.fixture("models/llama-base"), arch: "llama", extraMetadata: tokenizer)
        let gguf = try GGUFBytes.write(bytes, to: dir, name: "odd.gguf")
        let recipe = try RecipeParser.parse(file: writeRecipe("""
            merge_method: linear
            models:
              - model: \(gguf)
                parameters: {weight: 0.5}
              - model: \(Fixtures.fixture("models/llama-ft1"))
                parameters: {weight: 0.5}
            dtype: float32
            """))
        let plan = try MergePlanner.plan(recipe, options: PlannerOptions(seed: nil, threads: 1, workingDirectory: Fixtures.fixture("")))
        let warning = plan.warnings.first { $0.contains("no tokenizer files are copied") }
        XCTAssertNotNil(warning, "\(plan.warnings)")
        XCTAssertTrue(warning?.contains("no-such-pre") == true, "\(plan.warnings)")
    }
}
