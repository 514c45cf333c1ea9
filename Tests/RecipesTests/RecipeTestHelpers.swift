import Recipes
import XCTest

/// Parses inline recipe text under the label `test.yaml`.
func parseRecipe(_ text: String, file: String = "test.yaml") throws -> MergeRecipe {
    try RecipeParser.parse(text: text, file: file)
}

/// Asserts that parsing fails with a `RecipeError` at `line:column` whose description mentions every fragment.
@discardableResult
func assertRecipeError(_ text: String, line: Int, column: Int, mentions fragments: [String],
                       file: StaticString = #filePath, sourceLine: UInt = #line) -> RecipeError? {
    do {
        let recipe = try parseRecipe(text)
        XCTFail("expected an error, parsed method \(recipe.mergeMethod)", file: file, line: sourceLine)
        return nil
    } catch let error as RecipeError {
        XCTAssertEqual(error.location, SourceLocation(file: "test.yaml", line: line, column: column), "\(error)", file: file, line: sourceLine)
        XCTAssertTrue(error.description.hasPrefix("test.yaml:\(line):\(column): error: "), error.description, file: file, line: sourceLine)
        for fragment in fragments {
            XCTAssertTrue(error.description.contains(fragment), "`\(fragment)` missing from: \(error.description)", file: file, line: sourceLine)
        }
        return error
    } catch {
        XCTFail("expected a RecipeError, got \(error)", file: file, line: sourceLine)
        return nil
    }
}

/// The number a parameter evaluates to (nil when absent or not numeric; callers compare `?? .nan`, which never passes).
func number(_ setting: ParameterSetting?, _ tensor: String = "model.layers.0.mlp.up_proj.weight", t: Double = 0) -> Double? {
    setting?.evaluate(tensorName: tensor, t: t)?.number
}
