import MergeMethods
import Recipes
import XCTest

/// `ram` and `ramplus_tl` on hand-checked values: what each element ends up with depends on how many models changed it.
final class RAMMethodTests: XCTestCase {
    // Element 0: changed by a only; 1: by a and b; 2: by none (below ε); 3: by b only; 4: by all three.
    let base: [Float] = [1, 1, 1, 1, 1]
    let a: [Float] = [1.5, 2, 1 + 1e-6, 1, 0]
    let b: [Float] = [1, 3, 1, 0.25, 0]
    let c: [Float] = [1, 1, 1, 1, 4]

    func testUniqueChangesAreKeptAndSharedOnesAveraged() throws {
        let r = try MergeHarness.run("ram", inputs: [base, a, b, c], baseIndex: 0)
        XCTAssertEqual(Array(r.values[0..<4]), [1.5, 2.5, 1, 0.25])
        XCTAssertEqual(r.values[4], 1 + (-1 + -1 + 3) / 3, accuracy: 1e-6)
    }

    func testTensorLocalScalesEachModelsUniqueChanges() throws {
        // a changed 3 elements: 1 alone (0), 2 shared (1, 4): ρ = 2, λ = 1 + 0.5·clamp(2, 0, 0.4) = 1.2.
        // b: alone at 3, shared at 1 and 4: λ = 1.2 as well. c: only shared (4): ρ = 1/ε, clamped, λ = 1.2.
        let params: [String: ParameterValue] = ["r": .number(0.5), "alpha": .number(0.4)]
        let r = try MergeHarness.run("ramplus_tl", inputs: [base, a, b, c], baseIndex: 0, global: params)
        XCTAssertEqual(r.values[0], 1 + 0.5 * 1.2, accuracy: 1e-6)
        XCTAssertEqual(r.values[1], 2.5, accuracy: 1e-6)
        XCTAssertEqual(r.values[2], 1)
        XCTAssertEqual(r.values[3], 1 - 0.75 * 1.2, accuracy: 1e-6)
        XCTAssertEqual(r.values[4], 1 + 1.0 / 3, accuracy: 1e-6)
        // With alpha 0 every λ is 1: the same as `ram`.
        let plain = try MergeHarness.run("ram", inputs: [base, a, b, c], baseIndex: 0)
        let flat = try MergeHarness.run("ramplus_tl", inputs: [base, a, b, c], baseIndex: 0, global: ["alpha": .number(0)])
        XCTAssertEqual(flat.values, plain.values)
    }

    func testBaseModelIsRequired() throws {
        XCTAssertThrowsError(try MergeHarness.method("ram").validate(inputCount: 2, hasBase: false)) { error in
            XCTAssertTrue("\(error)".contains("base_model"), "\(error)")
        }
        XCTAssertNoThrow(try MergeHarness.method("ramplus_tl").validate(inputCount: 3, hasBase: true))
    }
}
