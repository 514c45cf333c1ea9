import Foundation
import MergeMethods
import Numerics
import XCTest

final class TaskArithmeticMethodTests: XCTestCase {
    func testTaskArithmeticAddsWeightedDeltasScaledByLambda() throws {
        let base: [Float] = [1, 1, 1]
        let r = try MergeHarness.run("task_arithmetic", inputs: [base, [2, 1, 0], [1, 3, 1]], baseIndex: 0,
                                     global: ["lambda": w(0.5)], perModel: [[:], ["weight": w(1)], ["weight": w(0.5)]])
        // Δ = 1·(1,0,−1) + 0.5·(0,2,0) = (1,1,−1); ×0.5.
        XCTAssertEqual(r.values, [1.5, 1.5, 0.5])
        let normalized = try MergeHarness.run("task_arithmetic", inputs: [base, [2, 1, 0], [1, 3, 1]], baseIndex: 0,
                                              global: ["normalize": .bool(true)], perModel: [[:], ["weight": w(1)], ["weight": w(0.5)]])
        XCTAssertEqual(normalized.values[0], 1 + 1 / 1.5, accuracy: 1e-6)
    }

    func testTiesSignElectionKeepsOnlyAgreeingDeltasAndZerosNeverMatch() throws {
        let base: [Float] = [0, 0, 0, 0]
        let a: [Float] = [1, -2, 0, 2]
        let b: [Float] = [-3, 1, 0, 0]
        let r = try MergeHarness.run("ties", inputs: [base, a, b], baseIndex: 0,
                                     perModel: [[:], ["weight": w(1)], ["weight": w(1)]])
        // Sums −2, −1, 0, 2 elect −, −, +, +. The zero delta of b at index 3 neither joins the sum nor the divisor.
        XCTAssertEqual(r.values, [-3, -2, 0, 2])
        let unnormalized = try MergeHarness.run("ties", inputs: [base, a, b], baseIndex: 0, global: ["normalize": .bool(false)],
                                                perModel: [[:], ["weight": w(0.5)], ["weight": w(0.5)]])
        XCTAssertEqual(unnormalized.values, [-1.5, -1, 0, 1])
    }

    func testTiesDivisorCountsOnlyMatchingWeights() throws {
        let r = try MergeHarness.run("ties", inputs: [[0, 0], [2, 4], [1, -1]], baseIndex: 0,
                                     perModel: [[:], ["weight": w(3)], ["weight": w(1)]])
        // Index 0: both positive → (6 + 1)/4. Index 1: sum 12 − 1 > 0 → only the first: 12/3.
        XCTAssertEqual(r.values[0], 7.0 / 4, accuracy: 1e-6)
        XCTAssertEqual(r.values[1], 4, accuracy: 1e-6)
    }

    func testTiesKeepsTheLargestMagnitudesOfEachTaskVector() throws {
        let base: [Float] = [1, 1, 1, 1, 1, 1]
        let x: [Float] = [1.5, 0.9, 3, 1.05, -1, 1.2]   // |δ| = .5, .1, 2, .05, 2, .2
        let r = try MergeHarness.run("ties", inputs: [base, x], baseIndex: 0, perModel: [[:], ["weight": w(1), "density": w(0.5)]])
        XCTAssertEqual(r.values, [1.5, 1, 3, 1, -1, 1])
    }

    func testTiesWithDensityBelowOneElementKeepsOneAndWarns() throws {
        let base = [Float](repeating: 0, count: 10)
        let x: [Float] = [0.1, 0.2, -5, 0.3, 0.1, 0, 0, 0, 0, 0.4]
        let r = try MergeHarness.run("ties", inputs: [base, x], baseIndex: 0, perModel: [[:], ["weight": w(1), "density": w(0.05)]],
                                     tensorName: "model.norm.weight")
        XCTAssertEqual(r.values, [0, 0, -5, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(r.warnings.count, 1)
        XCTAssertTrue(r.warnings[0].contains("model.norm.weight"), r.warnings[0])
    }

    func testTiesTopKMatchesABruteForceSortEvenWithManyTies() throws {
        // Values on a coarse grid produce many equal magnitudes at the cut-off; the kept set must be the first k of a
        // stable descending sort by magnitude (equal magnitudes: earlier positions first), computed by sorting here.
        let n = 300_000
        var g = SplitMix64(seed: 42)
        let base = [Float](repeating: 0, count: n)
        let x = (0..<n).map { _ in Float(Int(g.next() % 41) - 20) / 8 }
        for density in [0.3, 0.5, 0.77] {
            let k = Int((density * Double(n)).rounded(.down))
            let order = (0..<n).sorted { (abs(x[$0]), $1) > (abs(x[$1]), $0) }
            var expected = [Float](repeating: 0, count: n)
            for i in order[..<k] { expected[i] = x[i] }
            for threads in [1, 2] {
                let r = try MergeHarness.run("ties", inputs: [base, x], baseIndex: 0,
                                             perModel: [[:], ["weight": w(1), "density": w(density)]], threads: threads)
                XCTAssertEqual(r.values, expected, "density \(density), threads \(threads)")
            }
        }
    }

    func testBreadcrumbsWindowMatchesABruteForceSortEvenWithManyTies() throws {
        let n = 300_000
        var g = SplitMix64(seed: 43)
        let base = [Float](repeating: 0, count: n)
        let x = (0..<n).map { _ in Float(Int(g.next() % 33) - 16) / 4 }
        // Ascending order = reverse of the stable descending sort.
        let ascending = Array((0..<n).sorted { (abs(x[$0]), $1) > (abs(x[$1]), $0) }.reversed())
        for (density, gamma) in [(0.5, 0.1), (0.8, 0.05), (0.3, 0.3)] {
            let keep = Int((density * Double(n)).rounded(.down))
            let top = Int((gamma * Double(n)).rounded(.down))
            let bottom = n - keep - top
            var expected = [Float](repeating: 0, count: n)
            for i in ascending[bottom..<(n - top)] { expected[i] = x[i] }
            let r = try MergeHarness.run("breadcrumbs", inputs: [base, x], baseIndex: 0,
                                         perModel: [[:], ["weight": w(1), "density": w(density), "gamma": w(gamma)]], threads: 2)
            XCTAssertEqual(r.values, expected, "density \(density), gamma \(gamma)")
        }
    }

    func testTiesOfIdenticalModelsReturnsTheBase() throws {
        let base = MergeHarness.gaussian(300_000, seed: 44)
        let r = try MergeHarness.run("ties", inputs: [base, base, base], baseIndex: 0,
                                     perModel: [[:], ["weight": w(1), "density": w(0.5)], ["weight": w(1), "density": w(0.2)]], threads: 2)
        XCTAssertEqual(r.values, base)
    }

    func testSelectionCutInsideARunOfZeroDeltasIsWellDefined() throws {
        let base = [Float](repeating: 1, count: 10)
        let x: [Float] = [1, 1, 1, 1, 1, 1, 1, 1, 2, 3]   // δ = 0 ×8, 1, 2
        // The five smallest |δ| are all zeros: the window's upper cut falls inside the run of zeros.
        let crumbs = try MergeHarness.run("breadcrumbs", inputs: [base, x], baseIndex: 0,
                                          perModel: [[:], ["weight": w(1), "density": w(0.5), "gamma": w(0.5)]])
        XCTAssertEqual(crumbs.values, base)
        let ties = try MergeHarness.run("ties", inputs: [base, x], baseIndex: 0, perModel: [[:], ["weight": w(1), "density": w(0.5)]])
        XCTAssertEqual(ties.values, [1, 1, 1, 1, 1, 1, 1, 1, 2, 3])
    }

    func testBreadcrumbsKeepsTheMiddleOfTheMagnitudeOrder() throws {
        let base = [Float](repeating: 0, count: 10)
        let x: [Float] = [3, -10, 1, 7, -2, 9, 5, -4, 8, 6]
        let r = try MergeHarness.run("breadcrumbs", inputs: [base, x], baseIndex: 0,
                                     perModel: [[:], ["weight": w(1), "density": w(0.5), "gamma": w(0.2)]])
        // keep 5, drop the 2 largest (10, 9) and the 3 smallest (1, 2, 3): keep 4…8.
        XCTAssertEqual(r.values, [0, 0, 0, 7, 0, 0, 5, -4, 8, 6])
        XCTAssertTrue(r.warnings.isEmpty)
    }

    func testBreadcrumbsWithNoOutliersToDropKeepsTheTopAndWarns() throws {
        let base = [Float](repeating: 0, count: 10)
        let x: [Float] = [3, -10, 1, 7, -2, 9, 5, -4, 8, 6]
        let r = try MergeHarness.run("breadcrumbs", inputs: [base, x], baseIndex: 0,
                                     perModel: [[:], ["weight": w(1), "density": w(0.3), "gamma": w(0.05)]])
        // ⌊0.05·10⌋ = 0 outliers: keep the 3 largest instead of mergekit's empty slice.
        XCTAssertEqual(r.values, [0, -10, 0, 0, 0, 9, 0, 0, 8, 0])
        XCTAssertEqual(r.warnings.count, 1)
    }

    func testBreadcrumbsTiesElectsSignsAfterSparsifying() throws {
        let base = [Float](repeating: 0, count: 4)
        let r = try MergeHarness.run("breadcrumbs_ties", inputs: [base, [1, 2, -3, 100], [-1, -0.5, 3, 1]], baseIndex: 0,
                                     global: ["normalize": .bool(true)],
                                     perModel: [[:], ["weight": w(1), "density": w(0.5), "gamma": w(0.25)],
                                                ["weight": w(1), "density": w(0.5), "gamma": w(0.25)]])
        // Model 1 keeps |2|, |3| (drops 100 as the outlier, 1 as the smallest); model 2 keeps |1| at 0 and |1| at 3,
        // drops 3 and 0.5.
        XCTAssertEqual(r.values, [-1, 2, -3, 1])
    }

    func testModelStockFollowsTheClosedForm() throws {
        let base: [Float] = [0, 0, 0]
        // Offsets (1,0,0) and (1,1,0): cos = 1/√2, N = 2 → t = 2c/(1+c).
        let r = try MergeHarness.run("model_stock", inputs: [base, [1, 0, 0], [1, 1, 0]], baseIndex: 0)
        let c = 1 / 2.0.squareRoot()
        let t = Float(2 * c / (1 + c))
        XCTAssertEqual(r.values[0], t * 1, accuracy: 1e-6)
        XCTAssertEqual(r.values[1], t * 0.5, accuracy: 1e-6)
        XCTAssertEqual(r.values[2], 0)
        // Orthogonal offsets: t = 0 keeps the base.
        let orth = try MergeHarness.run("model_stock", inputs: [[5, 5], [6, 5], [5, 6]], baseIndex: 0)
        XCTAssertEqual(orth.values, [5, 5])
        // Identical offsets: t = 1 gives the average.
        let same = try MergeHarness.run("model_stock", inputs: [[1, 2], [2, 4], [2, 4], [2, 4]], baseIndex: 0)
        XCTAssertEqual(same.values[0], 2, accuracy: 1e-6)
        XCTAssertEqual(same.values[1], 4, accuracy: 1e-6)
    }

    func testModelStockFilterWiseUsesOneAnglePerRow() throws {
        let base: [Float] = [0, 0, 0, 0]
        // Row 0 offsets identical (t = 1), row 1 orthogonal (t = 0).
        let r = try MergeHarness.run("model_stock", inputs: [base, [1, 1, 1, 0], [1, 1, 0, 1]], baseIndex: 0,
                                     global: ["filter_wise": .bool(true)], shape: [2, 2])
        XCTAssertEqual(r.values[0], 1, accuracy: 1e-6)
        XCTAssertEqual(r.values[1], 1, accuracy: 1e-6)
        XCTAssertEqual(r.values[2], 0, accuracy: 1e-6)
        XCTAssertEqual(r.values[3], 0, accuracy: 1e-6)
    }

    func testSCESelectsHighVarianceEntriesAndWeightsByMeanSquare() throws {
        let base: [Float] = [0, 0, 0, 0]
        let a: [Float] = [1, 1, 4, -2]
        let b: [Float] = [1, 3, -4, 2]
        // Variances 0, 1, 16, 4: select_topk 0.5 of the 3 non-zero → k = 1: only index 2 survives.
        let r = try MergeHarness.run("sce", inputs: [base, a, b], baseIndex: 0, global: ["select_topk": w(0.5)])
        // Index 2: sum 0 elects +, only a's 4 matches: 4·ω/ω = 4.
        XCTAssertEqual(r.values, [0, 0, 4, 0])
        // Without selection: ω ∝ mean square (22/4, 30/4) → 22/52, 30/52.
        let all = try MergeHarness.run("sce", inputs: [base, a, b], baseIndex: 0)
        let wa: Float = 22.0 / 52, wb: Float = 30.0 / 52
        XCTAssertEqual(all.values[0], 1, accuracy: 1e-6)
        XCTAssertEqual(all.values[1], (wa * 1 + wb * 3) / (wa + wb), accuracy: 1e-6)
        XCTAssertEqual(all.values[2], 4, accuracy: 1e-6)
        XCTAssertEqual(all.values[3], 2, accuracy: 1e-6)
    }

    func testArceeFusionMovesOnlyHighImportanceEntries() throws {
        // One row where a single entry changes a lot: it is the only one above median + 1.5·IQR.
        let base = (0..<64).map { Float($0) * 0.01 }
        var x = base
        for i in 0..<64 { x[i] += Float(i % 3) * 0.001 }
        x[10] += 2
        let r = try MergeHarness.run("arcee_fusion", inputs: [base, x], baseIndex: 0, shape: [1, 64])
        XCTAssertEqual(r.values[10], x[10], accuracy: 1e-6)
        var moved = 0
        for i in 0..<64 where r.values[i] != base[i] { moved += 1 }
        XCTAssertLessThan(moved, 64 / 4)
    }

    func testMissingWeightForAModelIsAClearError() {
        XCTAssertThrowsError(try MergeHarness.run("ties", inputs: [[0], [1]], baseIndex: 0, perModel: [[:], [:]],
                                                  tensorName: "model.layers.3.self_attn.q_proj.weight")) { error in
            XCTAssertTrue("\(error)".contains("model.layers.3.self_attn.q_proj.weight"), "\(error)")
            XCTAssertTrue("\(error)".contains("weight"), "\(error)")
        }
    }

    func testTaskArithmeticWithoutBaseIsAClearError() {
        XCTAssertThrowsError(try MergeHarness.run("task_arithmetic", inputs: [[0], [1]], perModel: [["weight": w(1)], ["weight": w(1)]])) { error in
            XCTAssertTrue("\(error)".contains("base"), "\(error)")
        }
    }
}
