import Evaluation
import Foundation
import Inference
import TestSupport
import XCTest

/// Perplexity and KL mode on the tiny fixture models.
final class ModelPerplexityTests: XCTestCase {
    private let tokens: [Int] = {
        var rng = SystemRandomNumberGeneratorSeeded(seed: 11)
        return [1] + (1..<100).map { _ in 3 + Int(rng.next() % 509) }
    }()

    func testModelPerplexityEqualsDirectWindowScoring() throws {
        let model = try LanguageModel(folder: Fixtures.fixture("models/mistral-base"))
        let options = PerplexityOptions(contextLength: 32, batchSize: 32, bosToken: 1)
        let evaluator = PerplexityEvaluator(options: options)
        let result = try evaluator.evaluate(tokens: tokens, logits: evaluator.modelLogits(model))
        XCTAssertEqual(result.chunks, 3)
        XCTAssertEqual(result.tokensScored, 3 * 15)
        // Independent computation: full forward of each BOS-overwritten window, double log-softmax.
        var sum = 0.0
        for c in 0..<3 {
            var window = Array(tokens[(c * 32)..<((c + 1) * 32)])
            window[0] = 1
            let logits = try model.forward(window)
            for pos in 16...30 {
                let row = logits.row(pos).map(Double.init)
                let m = row.max()!
                sum += log(row.map { exp($0 - m) }.reduce(0, +)) + m - row[tokens[c * 32 + pos + 1]]
            }
        }
        XCTAssertEqual(result.perplexity, exp(sum / 45), accuracy: exp(sum / 45) * 1e-6)
    }

    func testSmallBatchesThroughTheKVCacheGiveTheSamePerplexity() throws {
        let model = try LanguageModel(folder: Fixtures.fixture("models/mixtral-tiny"))
        let whole = PerplexityEvaluator(options: PerplexityOptions(contextLength: 48, batchSize: 512, bosToken: 1))
        let pieces = PerplexityEvaluator(options: PerplexityOptions(contextLength: 48, batchSize: 10, bosToken: 1))
        let a = try whole.evaluate(tokens: tokens, logits: whole.modelLogits(model))
        let b = try pieces.evaluate(tokens: tokens, logits: pieces.modelLogits(model))
        XCTAssertEqual(a.tokensScored, b.tokensScored)
        XCTAssertEqual(a.perplexity, b.perplexity, accuracy: a.perplexity * 1e-6)
    }

    func testSavedLogitsFileFollowsTheLlamaCppLayout() throws {
        let dir = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("base.kld").path
        let model = try LanguageModel(folder: Fixtures.fixture("models/llama-base"))
        let evaluator = PerplexityEvaluator(options: PerplexityOptions(contextLength: 32, bosToken: 1))
        let writer = try LogitsFileWriter(path: path, contextLength: 32, vocabSize: 512, chunks: 3, tokens: tokens)
        _ = try evaluator.evaluate(tokens: tokens, logits: evaluator.modelLogits(model), saveLogits: writer)
        try writer.close()
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        XCTAssertEqual(size, 20 + 3 * 32 * 4 + 3 * 15 * (512 + 4) * 2)
        let file = try LogitsFile(path: path)
        XCTAssertEqual(file.contextLength, 32)
        XCTAssertEqual(file.vocabSize, 512)
        XCTAssertEqual(file.chunkCount, 3)
        XCTAssertEqual(file.tokens, Array(tokens.prefix(96)), "tokens are stored before the BOS overwrite")
        // Decoded log-probs of the second chunk's 5th scored position agree with the model within the step.
        var window = Array(tokens[32..<64])
        window[0] = 1
        let row = try model.forward(window).row(16 + 4).map(Double.init)
        let m = row.max()!
        let lse = log(row.map { exp($0 - m) }.reduce(0, +)) + m
        let record = file.record(chunk: 1, position: 4)
        for j in 0..<512 where row[j] - lse > -15.9 + (m - lse) {
            XCTAssertEqual(Double(record.logProbability(j)), row[j] - lse, accuracy: Double(record.scale) + 1e-5)
        }
    }

    func testKLDivergenceAgainstItselfIsNearZeroAndAgainstAFineTuneIsNot() throws {
        let dir = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("base.kld").path
        let base = try LanguageModel(folder: Fixtures.fixture("models/llama-base"))
        let evaluator = PerplexityEvaluator(options: PerplexityOptions(contextLength: 32, bosToken: 1))
        let writer = try LogitsFileWriter(path: path, contextLength: 32, vocabSize: 512, chunks: 3, tokens: tokens)
        let baseRun = try evaluator.evaluate(tokens: tokens, logits: evaluator.modelLogits(base), saveLogits: writer)
        try writer.close()
        let file = try LogitsFile(path: path)

        let same = try evaluator.evaluate(tokens: file.tokens, logits: evaluator.modelLogits(base), reference: file)
        let selfReport = try XCTUnwrap(same.klDivergence)
        XCTAssertEqual(selfReport.positions, 45)
        XCTAssertLessThan(selfReport.meanKLD.mean, 1e-6, "only the 16-bit quantization separates a model from itself")
        XCTAssertEqual(selfReport.sameTop.mean, 1)
        XCTAssertEqual(selfReport.logPerplexityRatio.mean, 0, accuracy: 1e-4)
        XCTAssertEqual(selfReport.basePerplexity, baseRun.perplexity, accuracy: baseRun.perplexity * 1e-4)

        let tuned = try LanguageModel(folder: Fixtures.fixture("models/llama-ft2"))
        let other = try XCTUnwrap(try evaluator.evaluate(tokens: file.tokens, logits: evaluator.modelLogits(tuned), reference: file).klDivergence)
        XCTAssertGreaterThan(other.meanKLD.mean, 1e-3)
        XCTAssertGreaterThan(other.meanKLD.error, 0)
        XCTAssertLessThanOrEqual(other.kldPercentiles.last!, other.kldPercentiles[6])
        XCTAssertLessThanOrEqual(other.kldPercentiles[6], other.kldPercentiles.first!)
        XCTAssertTrue(other.table.contains("Same top p"))
    }

    func testCorruptLogitsFileIsRejectedWithItsPath() throws {
        let dir = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bad.kld").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("_logits_".utf8) + Data(repeating: 1, count: 40)))
        XCTAssertThrowsError(try LogitsFile(path: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }
}

/// A tiny deterministic generator for test token streams.
struct SystemRandomNumberGeneratorSeeded: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 17
    }
}
