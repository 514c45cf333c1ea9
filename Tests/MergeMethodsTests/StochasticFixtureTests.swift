import Checkpoints
import Foundation
import MergeMethods
import Recipes
import TestSupport
import XCTest

/// The stochastic recipes (dare-ties, dare-linear, della) cannot match mergekit's torch RNG element by element;
/// they must agree statistically (MANIFEST: "fraction_of_elements_differing_from_base" in stats.json, and the L1
/// norm of merged − base per tensor).
final class StochasticFixtureTests: XCTestCase {
    private func compare(_ recipe: String, method: String, parameters: [String: [String: ParameterValue]], seed: UInt64,
                         global: [String: ParameterValue] = [:]) throws {
        let models = ["llama-ft1", "llama-ft2", "llama-base"]
        let sources = try models.map { try CheckpointFolder(path: Fixtures.fixture("models/\($0)")) }
        let reference = try CheckpointFolder(path: Fixtures.fixture("merges/\(recipe)/output"))
        guard case let .object(stats)? = try JSONValue.parse(file: Fixtures.fixture("merges/\(recipe)/stats.json"))["fraction_of_elements_differing_from_base"] else {
            return XCTFail("stats.json of \(recipe) has no fraction_of_elements_differing_from_base")
        }
        var totalElements = 0.0, oursDiffering = 0.0, theirsDiffering = 0.0
        var oursL1 = 0.0, theirsL1 = 0.0
        for name in reference.tensorNames {
            let inputs = try sources.map { try $0.readAllFloats(name) }
            let base = inputs[2]
            let info = try reference.require(name)
            let r = try MergeHarness.run(method, inputs: inputs, baseIndex: 2, global: global,
                                         perModel: models.map { parameters[$0] ?? [:] }, shape: info.shape, seed: seed, tensorName: name)
            let expected = try reference.readAllFloats(name)
            let n = Double(base.count)
            let ours = Double(zip(r.values, base).filter { $0 != $1 }.count) / n
            guard let theirs = stats[name]?.doubleValue else { return XCTFail("\(recipe): no statistic for \(name)") }
            // The reference's own figure must agree with its output (guards the comparison itself).
            XCTAssertEqual(Double(zip(expected, base).filter { $0 != $1 }.count) / n, theirs, accuracy: 1e-6, name)
            // Per tensor: binomial spread is sqrt(p(1−p)/n) ≤ 0.5/sqrt(n); allow 5 standard deviations.
            XCTAssertEqual(ours, theirs, accuracy: 5 * 0.5 / n.squareRoot(), "\(recipe): \(name)")
            totalElements += n
            oursDiffering += ours * n
            theirsDiffering += theirs * n
            for i in base.indices {
                oursL1 += Double(abs(r.values[i] - base[i]))
                theirsL1 += Double(abs(expected[i] - base[i]))
            }
        }
        // Over all tensors (~170k elements) the pooled fraction is tight: 5σ ≈ 0.006.
        XCTAssertEqual(oursDiffering / totalElements, theirsDiffering / totalElements, accuracy: 5 * 0.5 / totalElements.squareRoot(),
                       recipe)
        // L1 mass of the merged task vector: the rescale keeps it on target, so it agrees to within a few percent.
        XCTAssertEqual(oursL1 / theirsL1, 1, accuracy: 0.03, recipe)
        print("[stochastic] \(recipe): differing \(oursDiffering / totalElements) vs \(theirsDiffering / totalElements), L1 ratio \(oursL1 / theirsL1)")
    }

    func testDareTiesAgreesStatisticallyWithMergekit() throws {
        try compare("dare-ties", method: "dare_ties",
                    parameters: ["llama-ft1": ["density": w(0.5), "weight": w(0.6)], "llama-ft2": ["density": w(0.5), "weight": w(0.4)]],
                    seed: 42)
    }

    func testDareLinearAgreesStatisticallyWithMergekit() throws {
        try compare("dare-linear", method: "dare_linear",
                    parameters: ["llama-ft1": ["density": w(0.6), "weight": w(0.5)], "llama-ft2": ["density": w(0.6), "weight": w(0.5)]],
                    seed: 42)
    }

    func testDellaAgreesStatisticallyWithMergekit() throws {
        try compare("della", method: "della",
                    parameters: ["llama-ft1": ["density": w(0.5), "epsilon": w(0.1), "weight": w(0.5)],
                                 "llama-ft2": ["density": w(0.5), "epsilon": w(0.1), "weight": w(0.5)]],
                    seed: 42, global: ["lambda": w(1.0)])
    }
}
