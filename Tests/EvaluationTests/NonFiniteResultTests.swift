import Checkpoints
import Evaluation
import Foundation
import Inference
import TestSupport
import XCTest

/// Issue 9, defect 7: a config (or GGUF) with `rms_norm_eps: NaN` made `ppl` print `nan` and exit 0. Config numbers
/// are validated, and a non-finite perplexity is an error with its reason, never a result. Also: `--ctx` above the
/// model's `max_position_embeddings` warns (defect 11).
final class NonFiniteResultTests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws { work = Fixtures.temporaryFolder("non-finite") }
    override func tearDown() { try? FileManager.default.removeItem(at: work) }

    func testNaNEpsilonInConfigIsRefused() throws {
        for value in [JSONValue.double(.nan), .double(.infinity), .double(0), .double(-1e-5)] {
            let model = try HostileModels.copy("llama-base", to: work, as: "eps")
            try HostileModels.setConfig(model, "rms_norm_eps", value)
            XCTAssertThrowsError(try LanguageModel(folder: model), "\(value)") { error in
                XCTAssertTrue("\(error)".contains("rms_norm_eps") && "\(error)".contains(model), "\(error)")
            }
        }
    }

    func testNaNEpsilonInGGUFMetadataIsRefused() throws {
        let model = try HostileModels.copy("llama-base", to: work, as: "eps-gguf")
        try HostileModels.setConfig(model, "rms_norm_eps", .double(.nan))
        let (bytes, _) = try GGUFConversion.convert(folder: model, arch: "llama")
        let path = try GGUFBytes.write(bytes, to: work, name: "eps.gguf")
        XCTAssertThrowsError(try LanguageModel(path: path)) { error in
            XCTAssertTrue("\(error)".contains("rms_norm_eps") && "\(error)".contains(path), "\(error)")
        }
    }

    func testNonFinitePerplexityIsAnErrorWithItsReason() {
        let evaluator = PerplexityEvaluator(options: PerplexityOptions(contextLength: 8, batchSize: 8, bosToken: nil))
        let tokens = Array(0..<16).map { $0 % 4 }
        // NaN logits.
        XCTAssertThrowsError(try evaluator.evaluate(tokens: tokens, logits: { window, first in
            Logits(rows: window.count - first, vocabSize: 4, values: [Float](repeating: .nan, count: (window.count - first) * 4))
        })) { error in
            guard case EvaluationError.nonFinite? = error as? EvaluationError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("NaN or infinite") && "\(error)".contains("window 1"), "\(error)")
        }
        // A target whose logit is -inf (probability zero): an infinite NLL is refused too.
        XCTAssertThrowsError(try evaluator.evaluate(tokens: tokens, logits: { window, first in
            var v = [Float](repeating: 0, count: (window.count - first) * 4)
            for r in 0..<(window.count - first) { v[r * 4] = 1; v[r * 4 + 1] = -.infinity; v[r * 4 + 2] = -.infinity; v[r * 4 + 3] = -.infinity }
            return Logits(rows: window.count - first, vocabSize: 4, values: v)
        })) { error in
            guard case EvaluationError.nonFinite? = error as? EvaluationError else { return XCTFail("\(error)") }
        }
    }

    func testContextAboveMaxPositionEmbeddingsWarns() throws {
        let text = work.appendingPathComponent("text.txt").path
        let words = (0..<3000).map { ["the", "cat", "sat", "on", "a", "mat", "and", "dog"][$0 % 8] + String($0 % 13) }
        try words.joined(separator: " ").write(toFile: text, atomically: true, encoding: .utf8)
        var run = PerplexityRun(modelPath: Fixtures.fixture("models/llama-base"), dataPath: text)
        run.contextLength = 300   // the fixture's max_position_embeddings is 256
        run.maxChunks = 1
        run.threads = 2
        nonisolated(unsafe) var warnings: [String] = []
        run.onWarning = { warnings.append($0) }
        _ = try run.run()
        XCTAssertTrue(warnings.contains { $0.contains("--ctx 300") && $0.contains("max_position_embeddings (256)") }, "\(warnings)")
        run.contextLength = 128
        warnings = []
        _ = try run.run()
        XCTAssertEqual(warnings, [])
    }
}
