import Checkpoints
import Foundation
import Numerics
import Planner
import Recipes
import TestSupport
import XCTest

/// Runs a recipe end to end: parse, plan (models resolved against the fixtures folder), execute into a temp folder.
func runRecipe(_ recipePath: String, seed: UInt64? = nil, threads: Int = 2, out: String? = nil,
               workingDirectory: String = Fixtures.fixture("")) throws -> (plan: MergePlan, output: String) {
    let recipe = try RecipeParser.parse(file: recipePath)
    var options = PlannerOptions(seed: seed, threads: threads, workingDirectory: workingDirectory)
    options.threads = threads
    let plan = try MergePlanner.plan(recipe, options: options)
    let output = out ?? Fixtures.temporaryFolder("merge").appendingPathComponent("out").path
    _ = try PlanExecutor.execute(plan, outputPath: output, options: ExecutionOptions(writeModelCard: true))
    return (plan, output)
}

/// Writes a recipe text to a temp file and returns its path.
func writeRecipe(_ text: String, name: String = "recipe.yml") -> String {
    let dir = Fixtures.temporaryFolder("recipe")
    let path = dir.appendingPathComponent(name).path
    try! text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// Every tensor of a safetensors file as float32, with its stored dtype.
func loadTensors(_ path: String) throws -> [String: (dtype: DType, shape: [Int], values: [Float])] {
    let f = try SafetensorsFile(path: path)
    var out: [String: (DType, [Int], [Float])] = [:]
    for name in f.tensorNames {
        let info = f.info(name)!
        out[name] = (info.dtype, info.shape, try f.readAllFloats(name))
    }
    return out
}

/// max |a − b| / max |b| over a tensor (0 when both are zero).
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    var maxDiff = 0.0, maxRef = 0.0
    for i in 0..<min(a.count, b.count) {
        maxDiff = max(maxDiff, Double(abs(a[i] - b[i])))
        maxRef = max(maxRef, Double(abs(b[i])))
    }
    return maxRef == 0 ? maxDiff : maxDiff / maxRef
}

func fileBytes(_ path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }

/// The folders in `parent` whose names mark an unfinished Crucible output.
func leftovers(in parent: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).filter { $0.contains("crucible-partial") || $0.contains("crucible-old") }
}
