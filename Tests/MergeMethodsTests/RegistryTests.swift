import MergeMethods
import Recipes
import XCTest

final class RegistryTests: XCTestCase {
    func testRegistryListsEveryMergekitMethodOnce() {
        let expected = ["linear", "slerp", "passthrough", "task_arithmetic", "ties", "dare_ties", "dare_linear", "breadcrumbs",
                        "breadcrumbs_ties", "della", "della_linear", "sce", "model_stock", "nuslerp", "multislerp",
                        "karcher", "nearswap", "arcee_fusion", "ram", "ramplus_tl"]
        XCTAssertEqual(MergeMethodRegistry.names, expected)
        XCTAssertNil(MergeMethodRegistry.method(named: "tie"))
    }

    func testTaskArithmeticFamilyDefaultsFollowMergekit() throws {
        func defaults(_ name: String) throws -> (normalize: Bool?, rescale: Bool?) {
            let m = try MergeHarness.method(name)
            let g = Dictionary(uniqueKeysWithValues: m.globalParameters.map { ($0.name, $0.defaultValue) })
            XCTAssertEqual(g["lambda"] ?? nil, .number(1.0), name)
            XCTAssertEqual(g["int8_mask"] ?? nil, .bool(false), name)
            XCTAssertTrue(m.perModelParameters.contains { $0.name == "weight" && $0.required }, name)
            XCTAssertEqual(m.baseModel, .required, name)
            return ((g["normalize"] ?? nil)?.bool, (g["rescale"] ?? nil)?.bool)
        }
        let table: [(String, Bool, Bool)] = [
            ("task_arithmetic", false, false), ("ties", true, false), ("dare_ties", false, true), ("dare_linear", false, true),
            ("breadcrumbs", false, false), ("breadcrumbs_ties", false, false), ("della", true, true), ("della_linear", false, true),
        ]
        for (name, normalize, rescale) in table {
            let d = try defaults(name)
            XCTAssertEqual(d.normalize, normalize, name)
            XCTAssertEqual(d.rescale, rescale, name)
        }
        let gamma = try MergeHarness.method("breadcrumbs").perModelParameters.first { $0.name == "gamma" }
        XCTAssertEqual(gamma?.defaultValue, .number(0.01))
        let epsilon = try MergeHarness.method("della").perModelParameters.first { $0.name == "epsilon" }
        XCTAssertEqual(epsilon?.defaultValue, .number(0.15))
        XCTAssertTrue(try MergeHarness.method("dare_ties").isRandom)
        XCTAssertTrue(try MergeHarness.method("della_linear").isRandom)
        XCTAssertFalse(try MergeHarness.method("ties").isRandom)
    }

    func testOtherMethodsDeclareMergekitDefaults() throws {
        func global(_ method: String, _ name: String) throws -> ParameterValue? {
            try MergeHarness.method(method).globalParameters.first { $0.name == name }?.defaultValue
        }
        XCTAssertEqual(try global("linear", "normalize"), .bool(true))
        XCTAssertEqual(try global("nuslerp", "nuslerp_flatten"), .bool(true))
        XCTAssertEqual(try global("nuslerp", "nuslerp_row_wise"), .bool(false))
        XCTAssertEqual(try global("multislerp", "normalize_weights"), .bool(true))
        XCTAssertEqual(try global("multislerp", "eps"), .number(1e-8))
        XCTAssertEqual(try global("karcher", "max_iter"), .number(10))
        XCTAssertEqual(try global("karcher", "tol"), .number(1e-5))
        XCTAssertEqual(try global("sce", "select_topk"), .number(1.0))
        XCTAssertEqual(try global("model_stock", "filter_wise"), .bool(false))
        XCTAssertTrue(try MergeHarness.method("slerp").globalParameters.contains { $0.name == "t" && $0.required })
        XCTAssertTrue(try MergeHarness.method("nearswap").globalParameters.contains { $0.name == "t" && $0.required })
    }

    func testOnlyStatisticFreeConfigurationsAreElementwise() throws {
        for name in ["linear", "passthrough", "nearswap", "task_arithmetic"] {
            XCTAssertTrue(try MergeHarness.method(name).isElementwise(global: [:]), name)
        }
        for name in ["slerp", "ties", "dare_ties", "dare_linear", "breadcrumbs", "della", "della_linear", "sce", "model_stock",
                     "nuslerp", "multislerp", "karcher", "arcee_fusion", "ram", "ramplus_tl"] {
            XCTAssertFalse(try MergeHarness.method(name).isElementwise(global: [:]), name)
        }
        let dareLinear = try MergeHarness.method("dare_linear")
        XCTAssertTrue(dareLinear.isElementwise(global: [:], perModel: [["density": w(1)], ["density": w(1)]]))
        XCTAssertFalse(dareLinear.isElementwise(global: [:], perModel: [["density": w(1)], ["density": w(0.5)]]))
        XCTAssertFalse(try MergeHarness.method("ties").isElementwise(global: [:], perModel: [["density": w(1)]]))
    }

    func testInputCountsAreCheckedBeforeAnyTensorIsRead() throws {
        XCTAssertThrowsError(try MergeHarness.method("model_stock").validate(inputCount: 2, hasBase: true)) { error in
            XCTAssertTrue("\(error)".contains("model_stock"), "\(error)")
        }
        XCTAssertNoThrow(try MergeHarness.method("model_stock").validate(inputCount: 3, hasBase: true))
        XCTAssertThrowsError(try MergeHarness.method("ties").validate(inputCount: 3, hasBase: false))
        XCTAssertThrowsError(try MergeHarness.method("arcee_fusion").validate(inputCount: 3, hasBase: true))
        XCTAssertThrowsError(try MergeHarness.method("nearswap").validate(inputCount: 3, hasBase: true))
        XCTAssertNoThrow(try MergeHarness.method("karcher").validate(inputCount: 3, hasBase: false))
    }

    func testMismatchedInputSizesAreAClearError() {
        XCTAssertThrowsError(try MergeHarness.run("linear", inputs: [[1, 2], [1]], perModel: [["weight": w(1)], ["weight": w(1)]],
                                                  tensorName: "lm_head.weight")) { error in
            XCTAssertTrue("\(error)".contains("lm_head.weight"), "\(error)")
        }
    }
}
