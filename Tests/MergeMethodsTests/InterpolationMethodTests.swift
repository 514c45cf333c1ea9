import Foundation
import MergeMethods
import XCTest

final class InterpolationMethodTests: XCTestCase {
    // MARK: linear

    func testLinearNormalizedIsTheWeightedMean() throws {
        let r = try MergeHarness.run("linear", inputs: [[1, 2, 3], [3, 2, 1], [5, 0, -1]],
                                     perModel: [["weight": w(2)], ["weight": w(1)], ["weight": w(1)]])
        // (2·1 + 3 + 5)/4, (2·2 + 2 + 0)/4, (2·3 + 1 − 1)/4
        XCTAssertEqual(r.values, [2.5, 1.5, 1.5])
    }

    func testLinearUnnormalizedIsTheWeightedSum() throws {
        let r = try MergeHarness.run("linear", inputs: [[1, 2], [10, 20]], global: ["normalize": .bool(false)],
                                     perModel: [["weight": w(0.5)], ["weight": w(2)]])
        XCTAssertEqual(r.values, [20.5, 41])
    }

    func testLinearWithZeroWeightSumAndNormalizeThrowsNamingTheTensor() {
        XCTAssertThrowsError(try MergeHarness.run("linear", inputs: [[1], [2]], perModel: [["weight": w(1)], ["weight": w(-1)]],
                                                  tensorName: "model.norm.weight")) { error in
            XCTAssertTrue("\(error)".contains("model.norm.weight"), "\(error)")
            XCTAssertTrue("\(error)".contains("linear"), "\(error)")
        }
    }

    func testLinearWithoutAWeightThrowsNamingTheModel() {
        XCTAssertThrowsError(try MergeHarness.run("linear", inputs: [[1], [2]], perModel: [["weight": w(1)], [:]])) { error in
            XCTAssertTrue("\(error)".contains("model1"), "\(error)")
        }
    }

    // MARK: slerp

    func testSlerpAtTZeroReturnsTheBaseExactlyAndAtOneTheOther() throws {
        let a = MergeHarness.gaussian(300, seed: 1), b = MergeHarness.gaussian(300, seed: 2)
        let r0 = try MergeHarness.run("slerp", inputs: [a, b], baseIndex: 0, global: ["t": w(0)])
        XCTAssertEqual(r0.values, a)
        let r1 = try MergeHarness.run("slerp", inputs: [a, b], baseIndex: 0, global: ["t": w(1)])
        XCTAssertEqual(r1.values, b)
        // The base is the t = 0 end wherever it sits among the inputs.
        let swapped = try MergeHarness.run("slerp", inputs: [b, a], baseIndex: 1, global: ["t": w(0)])
        XCTAssertEqual(swapped.values, a)
    }

    func testSlerpOfOrthogonalUnitVectorsFollowsTheArc() throws {
        let r = try MergeHarness.run("slerp", inputs: [[1, 0], [0, 1]], baseIndex: 0, global: ["t": w(0.5)])
        XCTAssertEqual(r.values[0], Float(0.5.squareRoot()), accuracy: 1e-7)
        XCTAssertEqual(r.values[1], Float(0.5.squareRoot()), accuracy: 1e-7)
        let third = try MergeHarness.run("slerp", inputs: [[2, 0], [0, 2]], baseIndex: 0, global: ["t": w(1.0 / 3)])
        XCTAssertEqual(third.values[0], Float(2 * cos(Double.pi / 6)), accuracy: 1e-6)
        XCTAssertEqual(third.values[1], Float(2 * sin(Double.pi / 6)), accuracy: 1e-6)
    }

    func testSlerpOfColinearVectorsFallsBackToLerp() throws {
        let a: [Float] = [1, 2, 3, -4]
        let b = a.map { $0 * 3 }
        let r = try MergeHarness.run("slerp", inputs: [a, b], baseIndex: 0, global: ["t": w(0.25)])
        for (x, y) in zip(r.values, a) { XCTAssertEqual(x, 0.75 * y + 0.25 * 3 * y, accuracy: 1e-6) }
        // Anti-colinear also takes the linear branch (a sphere path would be undefined).
        let anti = try MergeHarness.run("slerp", inputs: [a, a.map { -$0 }], baseIndex: 0, global: ["t": w(0.5)])
        XCTAssertEqual(anti.values, [0, 0, 0, 0])
    }

    func testSlerpRejectsAThirdModelAndAMissingBase() throws {
        let slerp = try MergeHarness.method("slerp")
        XCTAssertThrowsError(try slerp.validate(inputCount: 3, hasBase: true))
        XCTAssertThrowsError(try slerp.validate(inputCount: 2, hasBase: false))
        XCTAssertNoThrow(try slerp.validate(inputCount: 2, hasBase: true))
        XCTAssertThrowsError(try MergeHarness.run("slerp", inputs: [[1], [2]], baseIndex: nil, global: ["t": w(0.5)]))
    }

    // MARK: nuslerp / multislerp / karcher

    func testNuslerpWithoutBaseReproducesSlerp() throws {
        let a = MergeHarness.gaussian(500, seed: 3), b = MergeHarness.gaussian(500, seed: 4)
        for t in [0.2, 0.5, 0.9] {
            let s = try MergeHarness.run("slerp", inputs: [a, b], baseIndex: 0, global: ["t": w(t)])
            let nu = try MergeHarness.run("nuslerp", inputs: [a, b], perModel: [["weight": w(1 - t)], ["weight": w(t)]])
            XCTAssertLessThan(relativeError(nu.values, s.values), 1e-6, "t = \(t)")
        }
    }

    func testNuslerpWithBaseInterpolatesTaskVectors() throws {
        let base: [Float] = [10, 10]
        let r = try MergeHarness.run("nuslerp", inputs: [base, [11, 10], [10, 11]], baseIndex: 0,
                                     perModel: [[:], ["weight": w(1)], ["weight": w(1)]])
        XCTAssertEqual(r.values[0], 10 + Float(0.5.squareRoot()), accuracy: 1e-6)
        XCTAssertEqual(r.values[1], 10 + Float(0.5.squareRoot()), accuracy: 1e-6)
    }

    func testNuslerpRowWiseTreatsEachRowAsAVector() throws {
        // Row 0 interpolates orthogonal vectors, row 1 colinear ones: each row gets its own angle.
        let a: [Float] = [1, 0, 1, 1], b: [Float] = [0, 1, 2, 2]
        let r = try MergeHarness.run("nuslerp", inputs: [a, b], global: ["nuslerp_flatten": .bool(false)],
                                     perModel: [["weight": w(1)], ["weight": w(1)]], shape: [2, 2])
        XCTAssertEqual(r.values[0], Float(0.5.squareRoot()), accuracy: 1e-6)
        XCTAssertEqual(r.values[1], Float(0.5.squareRoot()), accuracy: 1e-6)
        XCTAssertEqual(r.values[2], 1.5, accuracy: 1e-6)
        XCTAssertEqual(r.values[3], 1.5, accuracy: 1e-6)
        // Column-wise (nuslerp_row_wise): columns [1,1]/[0,2] and [0,1]/[1,2].
        let c = try MergeHarness.run("nuslerp", inputs: [a, b],
                                     global: ["nuslerp_flatten": .bool(false), "nuslerp_row_wise": .bool(true)],
                                     perModel: [["weight": w(1)], ["weight": w(1)]], shape: [2, 2])
        let s = try MergeHarness.run("slerp", inputs: [[1, 1], [0, 2]], baseIndex: 0, global: ["t": w(0.5)])
        XCTAssertEqual(c.values[0], s.values[0], accuracy: 1e-6)
        XCTAssertEqual(c.values[2], s.values[1], accuracy: 1e-6)
    }

    func testNuslerpNeedsExactlyTwoModelsBesidesTheBase() throws {
        let m = try MergeHarness.method("nuslerp")
        XCTAssertThrowsError(try m.validate(inputCount: 2, hasBase: true))
        XCTAssertNoThrow(try m.validate(inputCount: 3, hasBase: true))
        XCTAssertNoThrow(try m.validate(inputCount: 2, hasBase: false))
        XCTAssertThrowsError(try m.validate(inputCount: 3, hasBase: false))
    }

    func testMultislerpOfTwoEqualNormModelsAtEqualWeightsIsTheSlerpMidpoint() throws {
        let a: [Float] = [3, 0, 0], b: [Float] = [0, 3, 0]
        let r = try MergeHarness.run("multislerp", inputs: [a, b], perModel: [["weight": w(0.5)], ["weight": w(0.5)]])
        let s = try MergeHarness.run("slerp", inputs: [a, b], baseIndex: 0, global: ["t": w(0.5)])
        XCTAssertLessThan(relativeError(r.values, s.values), 1e-6)
    }

    func testMultislerpScalesTheMeanDirectionByTheMeanNorm() throws {
        // Three task vectors around a base; result direction = normalised Σ wᵢuᵢ, length = Σ wᵢ‖xᵢ‖.
        let base: [Float] = [1, 1, 1]
        let xs: [[Float]] = [[2, 1, 1], [1, 3, 1], [1, 1, 5]]
        let weights = [0.5, 0.3, 0.2]
        let r = try MergeHarness.run("multislerp", inputs: [base] + xs, baseIndex: 0,
                                     perModel: [[:]] + weights.map { ["weight": w($0)] })
        // Task vectors are e1·1, e2·2, e3·4: unit vectors e1, e2, e3.
        let m = [0.5, 0.3, 0.2]
        let mn = (m.map { $0 * $0 }.reduce(0, +)).squareRoot()
        let scale = 0.5 * 1 + 0.3 * 2 + 0.2 * 4
        for k in 0..<3 { XCTAssertEqual(Double(r.values[k]), 1 + m[k] / mn * scale, accuracy: 1e-5) }
    }

    func testMultislerpWithCancellingDirectionsForThreeModelsThrows() {
        XCTAssertThrowsError(try MergeHarness.run("multislerp", inputs: [[1, 0], [-1, 0], [0, 0]],
                                                  perModel: [["weight": w(1)], ["weight": w(1)], ["weight": w(1)]],
                                                  tensorName: "model.embed_tokens.weight")) { error in
            XCTAssertTrue("\(error)".contains("multislerp"), "\(error)")
            XCTAssertTrue("\(error)".contains("model.embed_tokens.weight"), "\(error)")
        }
        // Two antipodal models fall back to the weighted sum.
        XCTAssertEqual(try MergeHarness.run("multislerp", inputs: [[1, 0], [-1, 0]],
                                            perModel: [["weight": w(1)], ["weight": w(1)]]).values, [0, 0])
    }

    func testKarcherMeanOfIdenticalVectorsIsThatVector() throws {
        let a = MergeHarness.gaussian(1000, seed: 5)
        let r = try MergeHarness.run("karcher", inputs: [a, a, a])
        XCTAssertLessThan(relativeError(r.values, a), 1e-6)
    }

    func testKarcherMeanOfTwoOrthogonalVectorsIsTheirBisector() throws {
        let r = try MergeHarness.run("karcher", inputs: [[2, 0], [0, 4]])
        // Direction (1,1)/√2, length = mean norm 3.
        XCTAssertEqual(r.values[0], Float(3 / 2.0.squareRoot()), accuracy: 1e-5)
        XCTAssertEqual(r.values[1], Float(3 / 2.0.squareRoot()), accuracy: 1e-5)
    }

    // MARK: nearswap / passthrough

    func testNearswapTakesTheOtherValueOnlyWhereTheModelsAreClose() throws {
        let r = try MergeHarness.run("nearswap", inputs: [[0, 0, 0, 5], [0.001, 0.01, 1, 5]], baseIndex: 0, global: ["t": w(0.01)])
        // w = clamp(t/|a−b|): 10→1, 1, 0.01, and t/1e-6→1 where equal.
        XCTAssertEqual(r.values[0], 0.001, accuracy: 1e-9)
        XCTAssertEqual(r.values[1], 0.01, accuracy: 1e-9)
        XCTAssertEqual(r.values[2], 0.01, accuracy: 1e-7)
        XCTAssertEqual(r.values[3], 5)
        XCTAssertThrowsError(try MergeHarness.run("nearswap", inputs: [[0], [1]], baseIndex: 0, global: ["t": w(0)]))
    }

    func testPassthroughCopiesAndScales() throws {
        XCTAssertEqual(try MergeHarness.run("passthrough", inputs: [[1, -2, 3]]).values, [1, -2, 3])
        XCTAssertEqual(try MergeHarness.run("passthrough", inputs: [[1, -2, 3]], perModel: [["scale": w(0.5)]]).values, [0.5, -1, 1.5])
        let m = try MergeHarness.method("passthrough")
        XCTAssertThrowsError(try m.validate(inputCount: 2, hasBase: false))
    }
}
