import Architectures
import Evaluation
import Foundation
import Inference
import TestSupport
import XCTest

final class RoutingStatisticsTests: XCTestCase {
    private func config(experts: Int, topK: Int) -> ModelConfig {
        ModelConfig(modelType: "mixtral", vocabSize: 8, hiddenSize: 4, intermediateSize: 4, layerCount: 1, headCount: 1, kvHeadCount: 1,
                    experts: ModelConfig.ExpertConfig(count: experts, perToken: topK, intermediateSize: 4))
    }

    /// Known router logits give known shares, entropies and change rates.
    func testSharesEntropyAndChangeRatesOfKnownLogits() throws {
        let stats = RoutingStatistics()
        try stats.attach(to: config(experts: 3, topK: 1))
        stats.beginSequence()
        // Tokens choose experts 0, 0, 2, 1 (one-hot-ish), then a uniform row (ties: lowest index, 0).
        let rows: [Float] = [9, 0, 0,  9, 0, 0,  0, 0, 9,  0, 9, 0,  1, 1, 1]
        rows.withUnsafeBufferPointer { stats.observe(.routerLogits(0), $0) }
        // A new sequence: its first token is not compared with the last one of the previous sequence.
        stats.beginSequence()
        let more: [Float] = [0, 0, 9]
        more.withUnsafeBufferPointer { stats.observe(.routerLogits(0), $0) }
        // Other tap points are ignored.
        more.withUnsafeBufferPointer { stats.observe(.layerInput(0), $0) }

        let layer = try XCTUnwrap(stats.report.layers.first)
        XCTAssertEqual(stats.report.layers.count, 1)
        XCTAssertEqual(layer.tokens, 6)
        XCTAssertEqual(layer.share, [3.0 / 6, 1.0 / 6, 2.0 / 6])
        // Pairs within the first sequence: 0→0, 0→2, 2→1, 1→0: three changes of four.
        XCTAssertEqual(layer.top1ChangeRate, 0.75)
        XCTAssertEqual(layer.topKChangeRate, 0.75)
        // Five near-certain rows (entropy ≈ 0.0025 b each) and one uniform row (log₂ 3).
        let certain = { () -> Double in
            let p = [exp(9.0), 1, 1].map { $0 / (exp(9.0) + 2) }
            return -p.reduce(0) { $0 + $1 * log2($1) }
        }()
        XCTAssertEqual(layer.meanEntropyBits, (5 * certain + log2(3)) / 6, accuracy: 1e-9)
        let share = layer.share
        XCTAssertEqual(layer.loadEntropyBits, -share.reduce(0) { $0 + $1 * log2($1) }, accuracy: 1e-12)
        XCTAssertTrue(stats.report.table.contains("50.0%"), stats.report.table)
    }

    func testTopKSetsAndUnderusedExperts() throws {
        let stats = RoutingStatistics()
        try stats.attach(to: config(experts: 4, topK: 2))
        stats.beginSequence()
        // {0,1}, {1,0} (same set, other order), {0,2}: the set changes once, the first choice twice.
        let rows: [Float] = [5, 4, 0, 0,  4, 5, 0, 0,  5, 0, 4, 0]
        rows.withUnsafeBufferPointer { stats.observe(.routerLogits(3), $0) }
        let layer = try XCTUnwrap(stats.report.layers.first)
        XCTAssertEqual(layer.layer, 3)
        XCTAssertEqual(layer.topKChangeRate, 0.5)
        XCTAssertEqual(layer.top1ChangeRate, 1.0)
        XCTAssertEqual(layer.share, [3.0 / 6, 2.0 / 6, 1.0 / 6, 0])
        XCTAssertEqual(stats.report.underused.first?.experts, [3])
    }

    func testDenseModelsAreRefused() {
        let dense = ModelConfig(vocabSize: 8, hiddenSize: 4, intermediateSize: 4, layerCount: 1, headCount: 1, kvHeadCount: 1)
        XCTAssertThrowsError(try RoutingStatistics().attach(to: dense)) { XCTAssertTrue("\($0)".contains("mixture-of-experts"), "\($0)") }
    }

    /// Through a whole perplexity run of a real MoE checkpoint: every layer, every processed token, shares summing to 1.
    func testPerplexityRunCollectsRoutingOfEveryLayer() throws {
        let text = Fixtures.temporaryFolder("routing").appendingPathComponent("text.txt").path
        try String(repeating: "The keeper climbed the ninety-two steps at 7:45 pm, and the light burned until dawn. ", count: 20)
            .write(toFile: text, atomically: true, encoding: .utf8)
        var job = PerplexityRun(modelPath: Fixtures.fixture("models/mixtral-tiny"), dataPath: text)
        job.contextLength = 32
        job.maxChunks = 3
        let stats = RoutingStatistics()
        job.observer = stats
        let result = try job.run()
        XCTAssertEqual(result.chunks, 3)
        let report = stats.report
        XCTAssertEqual(report.layers.map(\.layer), [0, 1])
        for layer in report.layers {
            XCTAssertEqual(layer.tokens, 3 * 32)
            XCTAssertEqual(layer.share.reduce(0, +), 1, accuracy: 1e-12)
            XCTAssertLessThanOrEqual(layer.meanEntropyBits, 2)
        }
    }
}
