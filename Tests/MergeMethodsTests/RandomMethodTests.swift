import Foundation
import MergeMethods
import Recipes
import XCTest

final class RandomMethodTests: XCTestCase {
    let n = 200_000
    lazy var zeros = [Float](repeating: 0, count: n)
    lazy var deltaA = MergeHarness.gaussian(n, seed: 11, scale: 0.01)
    lazy var deltaB = MergeHarness.gaussian(n, seed: 12, scale: 0.01)

    private func keptFraction(_ values: [Float]) -> Double {
        Double(values.filter { $0 != 0 }.count) / Double(values.count)
    }

    func testDareLinearKeepsTheRequestedFractionAndPreservesTheL1Norm() throws {
        for density in [0.1, 0.5, 0.9] {
            let r = try MergeHarness.run("dare_linear", inputs: [zeros, deltaA], baseIndex: 0,
                                         perModel: [[:], ["weight": w(1), "density": w(density)]], seed: 7)
            XCTAssertEqual(keptFraction(r.values), density, accuracy: 0.01)
            let before = deltaA.reduce(0.0) { $0 + Double(abs($1)) }
            let after = r.values.reduce(0.0) { $0 + Double(abs($1)) }
            XCTAssertEqual(after / before, 1, accuracy: 1e-5, "density \(density)")
            // Kept entries are the original delta times one common factor, close to 1/density.
            let i = r.values.firstIndex { $0 != 0 }!
            let factor = r.values[i] / deltaA[i]
            XCTAssertEqual(Double(factor), 1 / density, accuracy: 0.05 / density)
            for (x, d) in zip(r.values, deltaA) where x != 0 { XCTAssertEqual(x, d * factor, accuracy: abs(d * factor) * 1e-6) }
        }
    }

    func testDareWithoutRescaleLeavesKeptEntriesUnchanged() throws {
        let r = try MergeHarness.run("dare_linear", inputs: [zeros, deltaA], baseIndex: 0, global: ["rescale": .bool(false)],
                                     perModel: [[:], ["weight": w(1), "density": w(0.3)]], seed: 3)
        for (x, d) in zip(r.values, deltaA) where x != 0 { XCTAssertEqual(x, d) }
        XCTAssertEqual(keptFraction(r.values), 0.3, accuracy: 0.01)
    }

    func testDareTiesKeepsTheRequestedFractionPerModel() throws {
        // With one model there is no sign conflict, so the kept fraction is the mask's.
        let r = try MergeHarness.run("dare_ties", inputs: [zeros, deltaA], baseIndex: 0,
                                     perModel: [[:], ["weight": w(1), "density": w(0.4)]], seed: 5)
        XCTAssertEqual(keptFraction(r.values), 0.4, accuracy: 0.01)
    }

    func testDellaKeepsTheRequestedMeanDensityAndFavoursLargeMagnitudes() throws {
        let shape = [400, 500]
        let r = try MergeHarness.run("della_linear", inputs: [zeros, deltaA], baseIndex: 0,
                                     perModel: [[:], ["weight": w(1), "density": w(0.4), "epsilon": w(0.2)]], shape: shape, seed: 9)
        XCTAssertEqual(keptFraction(r.values), 0.4, accuracy: 0.01)
        XCTAssertTrue(r.warnings.isEmpty)
        // The L1 rescale holds for DELLA's magnitude-dependent mask too.
        let before = deltaA.reduce(0.0) { $0 + Double(abs($1)) }
        let after = r.values.reduce(0.0) { $0 + Double(abs($1)) }
        XCTAssertEqual(after / before, 1, accuracy: 1e-5)
        // Keep probability rises from 0.2 (smallest in a row) to 0.6 (largest): compare the top and bottom fifths.
        var low = 0, lowKept = 0, high = 0, highKept = 0
        for row in 0..<shape[0] {
            let lo = row * shape[1]
            let mags = (0..<shape[1]).map { abs(deltaA[lo + $0]) }.sorted()
            let q1 = mags[shape[1] / 5], q4 = mags[shape[1] * 4 / 5]
            for j in 0..<shape[1] {
                let m = abs(deltaA[lo + j])
                if m < q1 { low += 1; if r.values[lo + j] != 0 { lowKept += 1 } }
                if m > q4 { high += 1; if r.values[lo + j] != 0 { highKept += 1 } }
            }
        }
        XCTAssertEqual(Double(lowKept) / Double(low), 0.24, accuracy: 0.02)
        XCTAssertEqual(Double(highKept) / Double(high), 0.56, accuracy: 0.02)
    }

    func testDellaOutsideTheOpenIntervalClampsAndWarns() throws {
        let r = try MergeHarness.run("della", inputs: [zeros, deltaA], baseIndex: 0,
                                     perModel: [[:], ["weight": w(1), "density": w(0.9), "epsilon": w(0.2)]], shape: [400, 500])
        XCTAssertEqual(r.warnings.count, 1)
        XCTAssertTrue(r.warnings[0].contains("epsilon"), r.warnings[0])
        // Probabilities 0.7 … 1.1 clamp to 0.7 … 1: mean of min(p, 1) = 0.75·0.85 + 0.25·1 = 0.8875.
        XCTAssertEqual(keptFraction(r.values), 0.8875, accuracy: 0.01)
    }

    func testSameSeedGivesIdenticalBytesAndOtherSeedsDiffer() throws {
        for method in ["dare_ties", "dare_linear", "della", "della_linear"] {
            let params: [[String: ParameterValue]] = [[:], ["weight": w(0.6), "density": w(0.5)], ["weight": w(0.4), "density": w(0.5)]]
            let a = try MergeHarness.run(method, inputs: [zeros, deltaA, deltaB], baseIndex: 0, perModel: params, shape: [400, 500], seed: 1234)
            let b = try MergeHarness.run(method, inputs: [zeros, deltaA, deltaB], baseIndex: 0, perModel: params, shape: [400, 500], seed: 1234,
                                         threads: 2)
            let c = try MergeHarness.run(method, inputs: [zeros, deltaA, deltaB], baseIndex: 0, perModel: params, shape: [400, 500], seed: 1235)
            XCTAssertEqual(a.values.map(\.bitPattern), b.values.map(\.bitPattern), method)
            XCTAssertNotEqual(a.values, c.values, method)
        }
    }

    func testMaskDependsOnTheTensorNameAndModelIndexNotOnOtherInputs() throws {
        let p: [String: ParameterValue] = ["weight": w(1), "density": w(0.5)]
        let one = try MergeHarness.run("dare_linear", inputs: [zeros, deltaA], baseIndex: 0, global: ["rescale": .bool(false)],
                                       perModel: [[:], p], seed: 1, tensorName: "x")
        let otherName = try MergeHarness.run("dare_linear", inputs: [zeros, deltaA], baseIndex: 0, global: ["rescale": .bool(false)],
                                             perModel: [[:], p], seed: 1, tensorName: "y")
        XCTAssertNotEqual(one.values, otherName.values)
        // Adding a zero-weight model after it leaves the first model's mask unchanged.
        let two = try MergeHarness.run("dare_linear", inputs: [zeros, deltaA, deltaB], baseIndex: 0, global: ["rescale": .bool(false)],
                                       perModel: [[:], p, ["weight": w(0), "density": w(0.5)]], seed: 1, tensorName: "x")
        XCTAssertEqual(one.values, two.values)
    }

    func testDensityOneIsTheDeterministicMerge() throws {
        let base = MergeHarness.gaussian(n, seed: 13)
        let a = zip(base, deltaA).map(+), b = zip(base, deltaB).map(+)
        let params: [[String: ParameterValue]] = [[:], ["weight": w(0.6), "density": w(1)], ["weight": w(0.4), "density": w(1)]]
        let dareTies = try MergeHarness.run("dare_ties", inputs: [base, a, b], baseIndex: 0, global: ["normalize": .bool(true)],
                                            perModel: params, seed: 1)
        let ties = try MergeHarness.run("ties", inputs: [base, a, b], baseIndex: 0, perModel: params)
        XCTAssertEqual(dareTies.values, ties.values)
        let dareLinear = try MergeHarness.run("dare_linear", inputs: [base, a, b], baseIndex: 0, perModel: params, seed: 1)
        let ta = try MergeHarness.run("task_arithmetic", inputs: [base, a, b], baseIndex: 0, perModel: params)
        XCTAssertEqual(dareLinear.values, ta.values)
        let della = try MergeHarness.run("della", inputs: [base, a, b], baseIndex: 0, perModel: params, seed: 1)
        XCTAssertEqual(della.values, ties.values)
    }

    func testResultsDoNotDependOnTheThreadCount() throws {
        let params: [[String: ParameterValue]] = [[:], ["weight": w(0.6), "density": w(0.3)], ["weight": w(0.4), "density": w(0.6)]]
        for method in ["ties", "breadcrumbs_ties", "dare_ties"] {
            let one = try MergeHarness.run(method, inputs: [zeros, deltaA, deltaB], baseIndex: 0, perModel: params, seed: 77, threads: 1)
            let two = try MergeHarness.run(method, inputs: [zeros, deltaA, deltaB], baseIndex: 0, perModel: params, seed: 77, threads: 2)
            XCTAssertEqual(one.values.map(\.bitPattern), two.values.map(\.bitPattern), method)
        }
    }
}
