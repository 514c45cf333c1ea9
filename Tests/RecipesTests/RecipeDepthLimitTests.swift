import Foundation
import Recipes
import XCTest

/// Issue 9, defect 1: a recipe nested a few thousand levels deep used to overflow the stack inside the YAML parser.
/// Nesting is now bounded before libyaml and Yams recurse, with an error at the line and column where it crosses.
final class RecipeDepthLimitTests: XCTestCase {
    private func assertRefusedAtDepth(_ text: String, line: Int, file: StaticString = #filePath, testLine: UInt = #line) {
        XCTAssertThrowsError(try RecipeParser.parse(text: text, file: "deep.yml"), file: file, line: testLine) { error in
            guard case let RecipeError.malformedYAML(location, problem)? = error as? RecipeError else {
                return XCTFail("\(error)", file: file, line: testLine)
            }
            XCTAssertEqual(location.line, line, "\(error)", file: file, line: testLine)
            XCTAssertTrue(problem.contains("\(YAMLDepthLimit.maxDepth)"), problem, file: file, line: testLine)
            XCTAssertTrue("\(error)".hasPrefix("deep.yml:\(line):"), "\(error)", file: file, line: testLine)
        }
        // The MoE detector composes the text too; it must not recurse into it either.
        XCTAssertFalse(MoERecipeParser.isMoERecipe(text: text), file: file, line: testLine)
    }

    func testDeepFlowSequencesAreRefusedWithALocation() {
        let depth = 5000
        let text = "merge_method: linear\nmodels: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
        assertRefusedAtDepth(text, line: 2)
    }

    func testDeepFlowMappingsAreRefused() {
        let text = "merge_method: linear\nparameters: " + String(repeating: "{a: ", count: 4000) + "1" + String(repeating: "}", count: 4000) + "\n"
        assertRefusedAtDepth(text, line: 2)
    }

    func testDeepBlockMappingsAreRefused() {
        var text = "merge_method: linear\n"
        for i in 0..<3000 { text += String(repeating: " ", count: i) + "k\(i):\n" }
        let violation = YAMLDepthLimit.firstViolation(in: text)
        XCTAssertNotNil(violation)
        assertRefusedAtDepth(text, line: violation?.line ?? -1)
        XCTAssertLessThanOrEqual(violation?.line ?? .max, YAMLDepthLimit.maxDepth + 2)
    }

    func testDeepBlockSequencesOnOneLineAreRefused() {
        let text = "models:\n" + String(repeating: "- ", count: 3000) + "x\n"
        assertRefusedAtDepth(text, line: 2)
    }

    func testOrdinaryNestingIsNotCounted() throws {
        // Brackets inside quotes, comments and block scalars are text, not nesting.
        let noise = String(repeating: "[", count: 200)
        let text = """
        merge_method: linear  # \(noise)
        models:
          - model: "./a\(noise)"
            parameters:
              weight: [{filter: mlp, value: 0.5}, {value: 1.0}]
          - model: './b\(noise)'
            parameters: {weight: 0.5}
        chat_template: |
          \(noise)
            \(noise)
        """
        XCTAssertNil(YAMLDepthLimit.firstViolation(in: text))
        let recipe = try RecipeParser.parse(text: text, file: "ok.yml")
        XCTAssertEqual(recipe.models?.count, 2)
    }

    func testNestingJustUnderTheLimitParses() throws {
        var text = "merge_method: linear\nmodels:\n  - model: ./a\nextra:\n"
        for i in 0..<(YAMLDepthLimit.maxDepth - 4) { text += String(repeating: " ", count: 2 * (i + 1)) + "k\(i):\n" }
        XCTAssertNil(YAMLDepthLimit.firstViolation(in: text))
        XCTAssertNoThrow(try RecipeParser.parse(text: text, file: "ok.yml"))
    }
}

/// Aliases that expand exponentially ("billion laughs") are refused once the expanded document passes the node limit.
final class RecipeAliasExpansionTests: XCTestCase {
    func testExponentialAliasesAreRefused() {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1..<9 { text += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        text += "merge_method: linear\nmodels: *a8\n"
        let start = Date()
        XCTAssertThrowsError(try RecipeParser.parse(text: text, file: "laughs.yml")) { error in
            XCTAssertTrue("\(error)".contains("aliases"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }
}
