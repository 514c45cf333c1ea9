import Architectures
import Checkpoints
import Inference
import TestSupport
import XCTest

/// The engine against transformers' float32 forward passes (fixtures/forward, tolerances from MANIFEST.md).
final class ForwardPassTests: XCTestCase {
    let logitTolerance: Float = 1e-4

    /// Logits, NLL and perplexity of `random` and `text` for one golden; returns the largest logit difference.
    @discardableResult
    func checkAgainstGolden(_ name: String, set: String = "", file: StaticString = #filePath, line: UInt = #line) throws -> Float {
        let golden = try ForwardGolden(name, set: set)
        let model = try LanguageModel(folder: golden.checkpoint)
        var worst: Float = 0
        for set in ["random", "text"] {
            let batches = try golden.ids("\(set).input_ids")
            let expected = try golden.floats("\(set).logits")
            let expectedNLL = try golden.floats("\(set).nll")
            let v = model.config.vocabSize
            var nllSum = 0.0, nllCount = 0
            for (b, ids) in batches.enumerated() {
                let logits = try model.forward(ids)
                XCTAssertEqual(logits.rows, ids.count)
                let t = ids.count
                let reference = expected[(b * t * v)..<((b + 1) * t * v)]
                let diff = maxAbsDiff(logits.values[...], ArraySlice(reference).withIndexShift())
                worst = max(worst, diff)
                XCTAssertLessThanOrEqual(diff, logitTolerance, "\(name) \(set)[\(b)] logits differ by \(diff)", file: file, line: line)
                for i in 0..<(t - 1) {
                    let nll = negativeLogLikelihood(logits.row(i), target: ids[i + 1])
                    let ref = Double(expectedNLL[b * (t - 1) + i])
                    XCTAssertEqual(nll, ref, accuracy: 1e-4, "\(name) \(set)[\(b)] NLL at \(i)", file: file, line: line)
                    nllSum += nll
                    nllCount += 1
                }
            }
            let ppl = Foundation.exp(nllSum / Double(nllCount))
            let refPPL = try XCTUnwrap(golden.summary[set]?["ppl"]?.doubleValue)
            XCTAssertEqual(ppl / refPPL, 1, accuracy: 1e-4, "\(name) \(set) perplexity \(ppl) vs \(refPPL)", file: file, line: line)
        }
        return worst
    }

    func testEveryTinyModelMatchesTransformersLogitsNLLAndPerplexity() throws {
        let names = try ForwardGolden.names(prefix: nil)
        XCTAssertGreaterThanOrEqual(names.count, 11, "expected every models/* golden")
        for name in names { try checkAgainstGolden(name) }
    }

    func testEveryMergeOutputMatchesItsGolden() throws {
        let names = try ForwardGolden.names(prefix: "merge.")
        XCTAssertFalse(names.isEmpty)
        for name in names { try checkAgainstGolden(name) }
    }

    func testEveryFusedLayoutMoEOutputMatchesItsGolden() throws {
        let names = try ForwardGolden.names(prefix: "moe.")
        XCTAssertFalse(names.isEmpty)
        for name in names {
            let folder = try CheckpointFolder(path: ForwardGolden(name).checkpoint)
            XCTAssertNotNil(folder.info("model.layers.0.mlp.experts.gate_up_proj"), "\(name) should use the fused expert layout")
            try checkAgainstGolden(name)
        }
    }

    func testHiddenStatesMatchPerLayer() throws {
        for name in try ForwardGolden.names(prefix: nil) { try checkHiddenStates(name) }
    }

    /// Every layer's output (and the embeddings, and the final norm) of the `text` sequence against the golden.
    func checkHiddenStates(_ name: String, set: String = "") throws {
        let golden = try ForwardGolden(name, set: set)
        let model = try LanguageModel(folder: golden.checkpoint)
        let ids = try golden.ids("text.input_ids")[0]
        let expected = try golden.floats("text.hidden_states")
        let per = ids.count * model.config.hiddenSize
        XCTAssertEqual(expected.count, (model.config.layerCount + 1) * per)
        var seen: [Int] = []
        _ = try model.forward(ids, tap: { point, rows in
            let index: Int
            switch point {
            case let .layerInput(l): index = l
            case .finalNorm: index = model.config.layerCount
            case .feedForwardInput, .routerLogits: return
            }
            // index 0 = embeddings, i = output of layer i-1, last = final norm output.
            seen.append(index)
            let reference = expected[(index * per)..<((index + 1) * per)]
            let magnitude = reference.map { abs($0) }.max() ?? 1
            var worst: Float = 0
            for (a, b) in zip(rows, reference) { worst = max(worst, abs(a - b)) }
            XCTAssertLessThanOrEqual(worst / magnitude, 1e-4, "\(name) hidden state \(index): \(worst) vs magnitude \(magnitude)")
        })
        XCTAssertEqual(seen, Array(0...model.config.layerCount), "\(name): tap points in order")
    }

    func testLastPositionHiddenStatesAreTheTappedRows() throws {
        let golden = try ForwardGolden("llama-base")
        let model = try LanguageModel(folder: golden.checkpoint)
        let ids = try golden.ids("text.input_ids")[0]
        let expected = try golden.floats("text.hidden_states")
        let h = model.config.hiddenSize, per = ids.count * h
        let states = try model.lastPositionHiddenStates(ids)
        XCTAssertEqual(states.count, model.config.layerCount + 1)
        for (i, row) in states.enumerated() {
            let reference = expected[(i * per + per - h)..<(i * per + per)]
            let magnitude = reference.map { abs($0) }.max()!
            for (a, b) in zip(row, reference) { XCTAssertEqual(a, b, accuracy: magnitude * 1e-4, "state \(i)") }
        }
    }

    func testLegacyConfigGivesIdenticalLogits() throws {
        var checked = 0
        for name in try ForwardGolden.names(prefix: nil) {
            let dir = Fixtures.fixture("models/\(name)")
            let legacyPath = dir + "/config.legacy.json"
            guard FileManager.default.fileExists(atPath: legacyPath) else { continue }
            let folder = try CheckpointFolder(path: dir)
            let modern = try LanguageModel(source: folder, config: ModelConfig(json: folder.config, file: folder.configPath))
            let legacyConfig = try ModelConfig(file: legacyPath)
            XCTAssertEqual(legacyConfig, try ModelConfig(json: folder.config, file: folder.configPath))
            let legacy = try LanguageModel(source: folder, config: legacyConfig)
            let ids = try ForwardGolden(name).ids("text.input_ids")[0]
            XCTAssertEqual(try modern.forward(ids).values, try legacy.forward(ids).values, "\(name): legacy config logits")
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 2)
    }

    func testRopeInverseFrequenciesMatchTransformers() throws {
        for name in try ForwardGolden.names(prefix: nil) {
            let golden = try ForwardGolden(name)
            let config = try ModelConfig(file: golden.checkpoint + "/config.json")
            let expected = try XCTUnwrap(golden.summary["rope_inv_freq"]?.arrayValue).compactMap { $0.doubleValue }
            let ours = RotaryEmbedding(config: config).inverseFrequencies
            XCTAssertEqual(ours.count, expected.count, name)
            for (a, b) in zip(ours, expected) {
                XCTAssertEqual(Double(a), b, accuracy: max(abs(b), 1e-12) * 1e-6, "\(name) inv_freq")
            }
        }
    }
}

final class RopeScalingTests: XCTestCase {
    /// llama.cpp's per-frequency divisors (GGUF `rope_freqs`) reproduce the llama3 band-wise scaling.
    func testFrequencyDivisorsReproduceLlama3Scaling() throws {
        let llama3 = ModelConfig.RopeScaling.llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 8192)
        let base = RotaryEmbedding.inverseFrequencies(theta: 500_000, headDim: 128, scaling: .none)
        let scaled = RotaryEmbedding.inverseFrequencies(theta: 500_000, headDim: 128, scaling: llama3)
        let divisors = zip(base, scaled).map { $0 / $1 }
        XCTAssertEqual(divisors.first!, 1, accuracy: 1e-6, "high frequencies are kept")
        XCTAssertEqual(divisors.last!, 8, accuracy: 1e-4, "low frequencies are divided by the factor")
        XCTAssertTrue(divisors.contains { $0 > 1.01 && $0 < 7.99 }, "a smooth band in between")
        let viaDivisors = RotaryEmbedding.inverseFrequencies(theta: 500_000, headDim: 128, scaling: .frequencyDivisors(divisors))
        for (a, b) in zip(viaDivisors, scaled) { XCTAssertEqual(a, b, accuracy: b * 1e-6) }
        let linear = RotaryEmbedding.inverseFrequencies(theta: 10_000, headDim: 8, scaling: .linear(factor: 2))
        for (a, b) in zip(linear, RotaryEmbedding.inverseFrequencies(theta: 10_000, headDim: 8, scaling: .none)) {
            XCTAssertEqual(a, b / 2)
        }
    }
}

extension ArraySlice {
    /// The same elements indexed from 0 (so slices of different arrays compare position by position).
    func withIndexShift() -> ArraySlice<Element> { ArraySlice(Array(self)) }
}

