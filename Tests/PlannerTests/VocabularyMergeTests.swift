import Checkpoints
import Foundation
import Inference
import Planner
import Recipes
import TestSupport
import Tokenization
import XCTest

/// Vocabulary merging (`tokenizer_source`, the `tokenizer:` block) reproduces mergekit 0.1.5's outputs in
/// fixtures/vocab-lora: tensors (row by token string), config, tokenizer and forward pass.
final class VocabularyMergeTests: XCTestCase {
    static let set = "vocab-lora/"

    /// The token → id map of a tokenizer.json, and its added tokens with their flags.
    private func vocabulary(_ folder: String) throws -> (ids: [String: Int], added: [String: JSONValue]) {
        let file = try TokenizerVocabularyFile(text: String(decoding: fileBytes(folder + "/tokenizer.json"), as: UTF8.self),
                                               file: folder)
        var ids: [String: Int] = [:]
        for (id, token) in file.tokens.enumerated() { ids[token] = id }
        let root = try JSONValue.parse(file: folder + "/tokenizer.json")
        var added: [String: JSONValue] = [:]
        for entry in root["added_tokens"]?.arrayValue ?? [] { added[entry["content"]!.stringValue!] = entry }
        return (ids, added)
    }

    /// Runs `merges/NAME`, compares with mergekit's output and returns the worst relative difference of any tensor.
    @discardableResult
    func check(_ name: String, tolerance: Double, file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        let dir = Fixtures.fixture("\(Self.set)merges/\(name)")
        let (plan, output) = try runRecipe(dir + "/recipe.yaml", workingDirectory: Fixtures.fixture(Self.set))
        defer { try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent) }
        return try compare(name, output: output, plan: plan, reference: dir + "/output", golden: dir + "/tokenizer_golden.json",
                           forward: "merge.\(name)", tolerance: tolerance, file: file, line: line)
    }

    /// Compares the merge in `output` (planned as `plan`) with mergekit's `reference`: tokenizer, encodings of the texts in
    /// `golden`, config, tensors (vocabulary rows by token) and, when `forward/FORWARD.safetensors` exists, the logits.
    func compare(_ name: String, output: String, plan: MergePlan, reference: String, golden goldenFile: String, forward forwardName: String,
                 tolerance: Double, file: StaticString = #filePath, line: UInt = #line) throws -> Double {

        // Tokenizer: the same token → id map and added-token flags; the fixture texts encode as mergekit's tokenizer does.
        let (ours, oursAdded) = try vocabulary(output)
        let (theirs, theirsAdded) = try vocabulary(reference)
        XCTAssertEqual(ours, theirs, "\(name): token → id map", file: file, line: line)
        XCTAssertEqual(oursAdded, theirsAdded, "\(name): added tokens and their flags", file: file, line: line)
        let tokenizer = try TokenizerLoader.load(path: output)
        let golden = try JSONValue.parse(file: goldenFile).arrayValue ?? []
        XCTAssertGreaterThan(golden.count, 3, file: file, line: line)
        for item in golden {
            let text = item["text"]!.stringValue!
            let ids = item["ids"]!.arrayValue!.map { $0.intValue! }
            let withSpecial = item["ids_with_special"]!.arrayValue!.map { $0.intValue! }
            XCTAssertEqual(tokenizer.encode(text, addSpecial: false, parseSpecial: true), ids, "\(name): encoding of \(text)",
                           file: file, line: line)
            XCTAssertEqual(tokenizer.encode(text, addSpecial: true, parseSpecial: true), withSpecial, "\(name): \(text) with BOS",
                           file: file, line: line)
        }

        // Config: vocab_size (padded) and the tie flag.
        let oc = try JSONValue.parse(file: output + "/config.json"), rc = try JSONValue.parse(file: reference + "/config.json")
        for key in ["vocab_size", "tie_word_embeddings", "num_hidden_layers", "hidden_size"] {
            XCTAssertEqual(oc[key], rc[key], "\(name): config.json '\(key)'", file: file, line: line)
        }

        // Tensors: the same names; vocabulary-indexed rows matched by token string (padding rows by position).
        let o = try loadTensors(output + "/model.safetensors"), r = try loadTensors(reference + "/model.safetensors")
        XCTAssertEqual(Set(o.keys), Set(r.keys), "\(name): tensor names", file: file, line: line)
        var worst = 0.0
        for (tensor, ref) in r {
            guard let mine = o[tensor] else { continue }
            XCTAssertEqual(mine.shape, ref.shape, "\(name): \(tensor) shape", file: file, line: line)
            guard mine.shape == ref.shape else { continue }
            var values = mine.values
            if plan.tasks.first(where: { $0.outputName == tensor })?.vocabulary != nil {
                let width = ref.shape.dropFirst().reduce(1, *)
                for (token, refID) in theirs {
                    guard let id = ours[token] else { continue }
                    for c in 0..<width { values[refID * width + c] = mine.values[id * width + c] }
                }
            }
            let e = relativeError(values, ref.values)
            XCTAssertLessThanOrEqual(e, tolerance, "\(name): \(tensor) differs by \(e) relative to its max", file: file, line: line)
            worst = max(worst, e)
        }

        // Forward pass: the output runs to mergekit's output's logits (transformers) on the golden's ids.
        let forward = Fixtures.fixture("\(Self.set)forward/\(forwardName).safetensors")
        if FileManager.default.fileExists(atPath: forward) {
            let goldens = try SafetensorsFile(path: forward)
            let model = try LanguageModel(folder: output, threads: 2)
            for input in ["text", "random"] {
                let raw = try XCTUnwrap(try goldens.rawBytes("\(input).input_ids"))
                let ids = (0..<(raw.count / 8)).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
                let logits = try model.forward(ids).values
                let expected = try goldens.readAllFloats("\(input).logits")
                XCTAssertEqual(logits.count, expected.count, "\(name): \(input) logits count", file: file, line: line)
                var diff: Float = 0
                for (a, b) in zip(logits, expected) { diff = max(diff, abs(a - b)) }
                XCTAssertLessThanOrEqual(diff, 1e-4, "\(name): \(input) logits differ from the golden by \(diff)", file: file, line: line)
            }
        }
        return worst
    }

    func testUnionLinear() throws { try check("union-linear", tolerance: 1e-6) }
    func testUnionTiesWithPermutedParent() throws { try check("union-ties", tolerance: 1e-6) }
    func testUnionSlerpOnPermutedBase() throws { try check("union-slerp-permuted-base", tolerance: 1e-5) }
    func testBaseSourceDropsOtherTokens() throws { try check("base-linear", tolerance: 1e-6) }
    func testModelSourceUsesThatTokenizer() throws { try check("model-source-linear", tolerance: 1e-6) }
    func testTokenOverridesSourceAndForce() throws { try check("tokens-overrides-linear", tolerance: 1e-6) }
    func testPadToMultipleOfWithTies() throws { try check("union-pad64-ties", tolerance: 1e-6) }
    func testBaseSourceWithPaddingAndTokenSource() throws { try check("base-pad32-tokens-linear", tolerance: 1e-6) }
    func testTiedParentsStayTied() throws { try check("union-linear-tied", tolerance: 1e-6) }
    func testSlerpOfTiedParents() throws { try check("union-slerp-tied", tolerance: 1e-5) }
    func testTiedParentBesideUntiedBase() throws { try check("union-linear-mixed-untied-base", tolerance: 1e-6) }
    func testUntiedParentBesideTiedBase() throws { try check("union-linear-mixed-tied-base", tolerance: 1e-6) }
    /// `+lora` inputs (one on another parent than the adapter was trained on) in a union task-arithmetic merge.
    func testLoraInputsInUnionTaskArithmetic() throws { try check("lora-task-arithmetic-union", tolerance: 1e-6) }

    /// mergekit-multi's chain: a union stage, a `+lora` stage and a SLERP of both with a union tokenizer, every stage
    /// compared with mergekit's, the final one also by its forward pass.
    func testMultiStageChainMatchesMergekit() throws {
        let chain = Fixtures.fixture("\(Self.set)multi/chain")
        let output = Fixtures.temporaryFolder("chain").appendingPathComponent("out").path
        defer { try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent) }
        let recipe = try MultiStageRecipe.parse(file: chain + "/recipe.yaml")
        let options = PlannerOptions(threads: 2, workingDirectory: Fixtures.fixture(Self.set))
        let stages = try MultiStageMerge.plan(recipe, output: output, intermediates: nil, options: options)
        try MultiStageMerge.execute(recipe, stages: stages, options: options, execution: ExecutionOptions(writeModelCard: false))
        XCTAssertEqual(stages.map(\.name), ["stage-chat-tool", "stage-lora", nil])
        for stage in stages {
            let label = stage.name ?? "final"
            let reference = stage.name.map { chain + "/intermediate/" + $0 } ?? chain + "/output"
            let tolerance = stage.name == nil ? 1e-5 : 1e-6
            _ = try compare("multi.chain.\(label)", output: stage.output, plan: stage.plan, reference: reference,
                        golden: chain + "/tokenizer_golden.\(label).json", forward: "multi.chain.\(label)", tolerance: tolerance)
        }
    }

    /// Each rejected recipe of fixtures/vocab-lora/errors about vocabularies fails at plan time, naming its recipe line.
    func testVocabularyErrorsAreClearAndLocated() throws {
        let cases: [(String, Int, [String])] = [
            ("token-source-not-in-merge", 11, ["`barometer`", "models/chat", "not one of the merged models"]),
            ("token-source-lacks-token", 13, ["`barometer`", "models/chat", "does not have that token", "model_token"]),
            ("token-entry-without-source", 11, ["`lighthouse`", "no `source`", "models/base"]),
            ("tokenizer-and-tokenizer-source", 9, ["`tokenizer` and `tokenizer_source` cannot both be given"]),
            ("vocab-mismatch-without-tokenizer", 2, ["vocabularies differ in size", "[320, 24]", "[323, 24]", "tokenizer_source"]),
            ("linear-base-not-in-models", 2, ["missing required parameter 'weight'", "models/base"]),
        ]
        for (name, line, mentions) in cases {
            let recipe = Fixtures.fixture("\(Self.set)errors/\(name)/recipe.yaml")
            do {
                let parsed = try RecipeParser.parse(file: recipe)
                _ = try MergePlanner.plan(parsed, options: PlannerOptions(threads: 1, workingDirectory: Fixtures.fixture(Self.set)))
                XCTFail("\(name): planned without error")
            } catch {
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("\(recipe):\(line):"), "\(name): \(text)")
                for m in mentions { XCTAssertTrue(text.contains(m), "\(name): '\(m)' missing from: \(text)") }
            }
        }
    }

    /// mergekit 0.1.5 crashes on `source: base` with a new `tokens:` key; Crucible appends the token (docs/tokenizer-merging.md).
    func testBaseSourceWithNewTokenAppendsIt() throws {
        let recipe = try RecipeParser.parse(file: Fixtures.fixture("\(Self.set)errors/base-source-new-token/recipe.yaml"))
        let plan = try MergePlanner.plan(recipe, options: PlannerOptions(threads: 1, workingDirectory: Fixtures.fixture(Self.set)))
        let vocabulary = try XCTUnwrap(plan.vocabulary)
        XCTAssertEqual(vocabulary.tokenCount, 324)
        XCTAssertEqual(vocabulary.tokenizer.tokens.last, "<|sep|>")
        XCTAssertEqual(plan.outputConfig["vocab_size"]?.intValue, 324)
        let embed = try XCTUnwrap(plan.tasks.first { $0.outputName == "model.embed_tokens.weight" }?.vocabulary)
        XCTAssertEqual(embed.defaults.last?.id, 323)
        XCTAssertEqual(embed.defaults.last?.fill, .zero)
    }

    /// `--dry-run` names the tokens each parent added, the forced tokens, and every default row with its rule.
    func testDryRunReportsTheVocabularyPlan() throws {
        let recipe = try RecipeParser.parse(file: Fixtures.fixture("\(Self.set)merges/tokens-overrides-linear/recipe.yaml"))
        let plan = try MergePlanner.plan(recipe, options: PlannerOptions(threads: 1, workingDirectory: Fixtures.fixture(Self.set)))
        let text = plan.describe()
        for expected in [
            "Vocabulary (tokenizer source: union): 328 tokens, 328 embedding rows",
            "tokens added from models/chat: `<|im_start|>` (321), `<|im_end|>` (322), `lighthouse` (323)",
            "tokens added from models/tool: `s.` (320), `<tool_call>` (324), `barometer` (325)",
            "tokens added by `tokens:`: `<|endoftext|>` (326), `<|pad_new|>` (327)",
            "forced: `<s>` (1), `</s>` (2), `lighthouse` (323)",
            "row 1 `<s>`: tokens: {kind: zero} (forced); used by models/base, models/chat, models/tool",
            "row 320 `s.`: only models/tool has it; used by models/base, models/chat",
            "row 321 `<|im_start|>`: tokens: models/tool's row; used by models/base",
            "row 323 `lighthouse`: tokens: row 40 of models/base (forced)",
            "row 326 `<|endoftext|>`: tokens: the row of `<|im_end|>` in models/chat",
        ] {
            XCTAssertTrue(text.contains(expected), "missing from the dry-run: \(expected)\n\(text)")
        }
        let union = try MergePlanner.plan(try RecipeParser.parse(file: Fixtures.fixture("\(Self.set)merges/union-linear/recipe.yaml")),
                                          options: PlannerOptions(threads: 1, workingDirectory: Fixtures.fixture(Self.set)))
        XCTAssertTrue(union.describe().contains("row 321 `<|im_start|>`: mean of models/chat, models/tool; used by models/base"))
        let pad = try MergePlanner.plan(try RecipeParser.parse(file: Fixtures.fixture("\(Self.set)merges/union-pad64-ties/recipe.yaml")),
                                        options: PlannerOptions(threads: 1, workingDirectory: Fixtures.fixture(Self.set)))
        XCTAssertTrue(pad.describe().contains("326 tokens, 384 embedding rows (config vocab_size 384); rows 326..<384 are padding"))
    }

    /// A tokenizer source outside the merge may bring tokens no parent has (zero rows, warned), and a base whose
    /// embedding is larger than its tokenizer shrinks without `pad_to_multiple_of` (warned).
    func testSurprisingRulesAreWarned() throws {
        let zeros = try MergePlanner.plan(try RecipeParser.parse(file: writeRecipe("""
            merge_method: linear
            base_model: \(Fixtures.fixture(Self.set + "models/base"))
            models:
              - {model: \(Fixtures.fixture(Self.set + "models/base")), parameters: {weight: 0.5}}
              - {model: \(Fixtures.fixture(Self.set + "models/ft")), parameters: {weight: 0.5}}
            tokenizer_source: \(Fixtures.fixture(Self.set + "models/chat"))
            """)), options: PlannerOptions(threads: 1))
        XCTAssertEqual(zeros.vocabulary?.tokenCount, 323)
        XCTAssertTrue(zeros.warnings.contains { $0.contains("token `lighthouse` (id 322) is in no parent") && $0.contains("zeros") },
                      "\(zeros.warnings)")
        let shrink = try MergePlanner.plan(try RecipeParser.parse(file: writeRecipe("""
            merge_method: linear
            base_model: \(Fixtures.fixture(Self.set + "models/tool"))
            models:
              - {model: \(Fixtures.fixture(Self.set + "models/tool")), parameters: {weight: 0.5}}
              - {model: \(Fixtures.fixture(Self.set + "models/base")), parameters: {weight: 0.5}}
            tokenizer_source: base
            """)), options: PlannerOptions(threads: 1))
        XCTAssertEqual(shrink.outputConfig["vocab_size"]?.intValue, 324)
        XCTAssertTrue(shrink.warnings.contains {
            $0.contains("shrink from") && $0.contains("336 rows to 324") && $0.contains("pad_to_multiple_of")
        }, "\(shrink.warnings)")
    }
}
