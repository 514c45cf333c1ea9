import Architectures
import Checkpoints
import Inference
import TestSupport
import XCTest

final class GenerationTests: XCTestCase {
    /// Feeding a sequence piece by piece through the KV cache gives the batched forward's logits.
    func testKVCacheStepsReproduceBatchedLogitsForEveryArchitecture() throws {
        for name in ["llama-base", "qwen2-base", "mistral-base", "llama-tied", "llama-rope-llama3", "mixtral-tiny"] {
            let golden = try ForwardGolden(name)
            let model = try LanguageModel(folder: golden.checkpoint)
            let ids = try golden.ids("text.input_ids")[0]
            let batched = try model.forward(ids)
            let v = model.config.vocabSize
            // Uneven pieces: one token at a time for the first 20 (crossing mistral's window of 16), then 7, then the rest.
            var pieces: [[Int]] = ids.prefix(20).map { [$0] }
            pieces.append(Array(ids[20..<27]))
            pieces.append(Array(ids[27...]))
            let cache = model.makeCache(capacity: ids.count)
            var position = 0
            for piece in pieces {
                let logits = try model.forward(piece, cache: cache)
                for r in 0..<piece.count {
                    let diff = maxAbsDiff(logits.row(r).withIndexShift(),
                                          batched.values[((position + r) * v)..<((position + r + 1) * v)].withIndexShift())
                    XCTAssertLessThanOrEqual(diff, 1e-5, "\(name) position \(position + r)")
                }
                position += piece.count
            }
            XCTAssertEqual(cache.count, ids.count)
            XCTAssertThrowsError(try model.forward([5], cache: cache)) { error in
                XCTAssertEqual(error as? InferenceError, .contextOverflow(needed: ids.count + 1, capacity: ids.count))
            }
        }
    }

    func testGreedyGenerationFollowsTheArgmaxOfTheBatchedForward() throws {
        // llama-base is float32 (used in place); the bf16 and f16 copies go through weights converted once and kept.
        for name in ["llama-base", "llama-base-bf16", "llama-base-f16"] {
            try checkGreedyGeneration(Fixtures.fixture("models/" + name))
        }
    }

    private func checkGreedyGeneration(_ path: String) throws {
        let model = try LanguageModel(folder: path)
        let prompt = [1, 40, 41, 42]
        let generated = try model.generate(prompt: prompt, maxTokens: 6)
        XCTAssertEqual(generated.count, 6)
        // Each generated token is the argmax of a full (cache-free) forward over everything before it.
        var sequence = prompt
        for token in generated {
            let logits = try model.forward(sequence, logitsFrom: sequence.count - 1)
            XCTAssertEqual(token, Sampler.argmax(logits.row(0)))
            sequence.append(token)
        }
    }

    func testSeededSamplingIsReproducibleAndSeedsDiffer() throws {
        let model = try LanguageModel(folder: Fixtures.fixture("models/llama-base"))
        let options = SamplingOptions(temperature: 1.5, topP: 0.95, minP: 0.0, seed: 42)
        let a = try model.generate(prompt: [1, 50], maxTokens: 12, sampling: options)
        let b = try model.generate(prompt: [1, 50], maxTokens: 12, sampling: options)
        XCTAssertEqual(a, b)
        var other = options
        other.seed = 7
        let c = try model.generate(prompt: [1, 50], maxTokens: 12, sampling: other)
        XCTAssertNotEqual(a, c, "a different seed should change at least one of 12 draws at temperature 1.5")
    }

    func testTopPAndMinPKeepOnlyTheExpectedTokens() {
        // Probabilities ∝ e^logit: 0.5, 0.25, 0.125, 0.125 at temperature 1.
        let logits: [Float] = [Float(log(0.125)), Float(log(0.5)), Float(log(0.25)), Float(log(0.125))]
        let nucleus = Sampler(options: SamplingOptions(temperature: 1, topP: 0.7)).candidates(logits)
        XCTAssertEqual(nucleus.map(\.token), [1, 2])
        XCTAssertEqual(nucleus[0].probability, 2.0 / 3.0, accuracy: 1e-7) // inputs are float32 logs
        let minP = Sampler(options: SamplingOptions(temperature: 1, minP: 0.3)).candidates(logits)
        XCTAssertEqual(minP.map(\.token), [1, 2])
        let all = Sampler(options: SamplingOptions(temperature: 1)).candidates(logits)
        XCTAssertEqual(all.count, 4)
        XCTAssertEqual(all.reduce(0) { $0 + $1.probability }, 1, accuracy: 1e-12)
        var greedy = Sampler(options: SamplingOptions(temperature: 0))
        XCTAssertEqual(greedy.sample(logits), 1)
    }

    func testStopTokenEndsGeneration() throws {
        let model = try LanguageModel(folder: Fixtures.fixture("models/llama-base"))
        let free = try model.generate(prompt: [1, 40], maxTokens: 5)
        let stopped = try model.generate(prompt: [1, 40], maxTokens: 5, stopTokens: [free[2]])
        XCTAssertEqual(stopped, Array(free.prefix(while: { $0 != free[2] })))
    }
}
