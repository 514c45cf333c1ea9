import Evaluation
import Foundation
import Inference
import TestSupport
import XCTest

/// The two ways a position is measured against a base, a saved llama.cpp record (`ppl --kl-ref`) and the base
/// model's float logits (`crucible score`), agree within what the record's 16-bit quantization loses.
final class ExactKLTests: XCTestCase {
    func testExactAndRecordBasedMeasurementsAgreeWithinTheQuantizationStep() throws {
        let dir = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SystemRandomNumberGeneratorSeeded(seed: 5)
        let tokens = [1] + (1..<96).map { _ in 3 + Int(rng.next() % 509) }
        let evaluator = PerplexityEvaluator(options: PerplexityOptions(contextLength: 32, bosToken: 1))
        let base = try LanguageModel(folder: Fixtures.fixture("models/llama-base"))
        let candidate = try LanguageModel(folder: Fixtures.fixture("models/llama-ft2"))
        let path = dir.appendingPathComponent("base.kld").path
        let writer = try LogitsFileWriter(path: path, contextLength: 32, vocabSize: 512, chunks: 3, tokens: tokens)
        _ = try evaluator.evaluate(tokens: tokens, logits: evaluator.modelLogits(base), saveLogits: writer)
        try writer.close()
        let file = try LogitsFile(path: path)
        let saved = try XCTUnwrap(try evaluator.evaluate(tokens: tokens, logits: evaluator.modelLogits(candidate), reference: file).klDivergence)

        var exact = KLDivergenceAccumulator()
        var largestStep: Float = 0
        for c in 0..<3 {
            let window = evaluator.window(c, of: tokens)
            let b = try evaluator.modelLogits(base)(window.input, window.firstLogit)
            let q = try evaluator.modelLogits(candidate)(window.input, window.firstLogit)
            let bs = try evaluator.score(b, window: window), qs = try evaluator.score(q, window: window)
            for i in 0..<window.targets.count {
                largestStep = max(largestStep, file.record(chunk: c, position: i).scale)
                b.values.withUnsafeBufferPointer { bv in
                    q.values.withUnsafeBufferPointer { qv in
                        let row = { (all: UnsafeBufferPointer<Float>) in UnsafeBufferPointer(rebasing: all[(i * 512)..<((i + 1) * 512)]) }
                        exact.add(KLPosition.measure(candidate: row(qv), candidateSummary: qs.summaries[i],
                                                     base: row(bv), baseSummary: bs.summaries[i], target: window.targets[i]))
                    }
                }
            }
        }
        let report = exact.report
        XCTAssertEqual(report.positions, saved.positions)
        // A stored log-probability is off by at most half a step; the KL, a p-weighted mean of log-probability
        // differences, and the mean NLL move by about that much.
        let step = Double(largestStep)
        XCTAssertLessThan(step, 3e-4)
        XCTAssertGreaterThan(report.meanKLD.mean, 1e-3, "the fine-tune differs from its base")
        XCTAssertEqual(report.meanKLD.mean, saved.meanKLD.mean, accuracy: 2 * step)
        XCTAssertEqual(report.logPerplexityRatio.mean, saved.logPerplexityRatio.mean, accuracy: 2 * step)
        XCTAssertEqual(report.basePerplexity, saved.basePerplexity, accuracy: saved.basePerplexity * 2 * step)
        XCTAssertEqual(report.sameTop.mean, saved.sameTop.mean, accuracy: 1.0 / Double(report.positions) + 1e-12)
        XCTAssertEqual(report.probabilityDeltaRMS.mean, saved.probabilityDeltaRMS.mean, accuracy: 2 * step)
    }
}
