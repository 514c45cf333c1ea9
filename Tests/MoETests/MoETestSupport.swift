import Foundation
import MoE
import Planner
import Recipes
import TestSupport
import XCTest

/// Plans and builds a MoE recipe file with model references resolved from `workingDirectory`.
func buildMoE(recipe path: String, workingDirectory: String, options: MoEOptions = MoEOptions(threads: 2),
              label: String = "moe") throws -> (plan: MoEPlan, report: MoEReport, folder: URL) {
    var options = options
    options.workingDirectory = workingDirectory
    let plan = try MoEPlanner.plan(try MoERecipeParser.parse(file: path), options: options)
    let folder = Fixtures.temporaryFolder(label).appendingPathComponent("out")
    let report = try MoEBuilder.build(plan, outputPath: folder.path)
    return (plan, report, folder)
}

/// Plans a MoE recipe given as text (written beside the shared fixtures' models) and returns the error it raises.
func moePlanError(_ text: String, options: MoEOptions = MoEOptions(), file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let dir = Fixtures.temporaryFolder("moe-recipe")
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("recipe.yaml").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    var options = options
    options.workingDirectory = Fixtures.fixture("")
    do {
        _ = try MoEPlanner.plan(try MoERecipeParser.parse(file: path), options: options)
        XCTFail("expected the recipe to be refused", file: file, line: line)
        return ""
    } catch {
        return "\(error)"
    }
}

/// References made by Crucible's developers (not copies of the shared set), in `Tests/References`.
func crucibleFixture(_ relative: String) -> String {
    Fixtures.packageRoot.appendingPathComponent("Tests/References").appendingPathComponent(relative).path
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "sizes differ: \(a.count) vs \(b.count)")
    var m: Float = 0
    for (x, y) in zip(a, b) { m = max(m, abs(x - y)) }
    return m
}
