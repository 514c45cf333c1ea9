import Foundation
import Recipes
import TestSupport
import XCTest

final class EvolveConfigTests: XCTestCase {
    var folder: URL!
    override func setUpWithError() throws { folder = Fixtures.temporaryFolder("evolve-config") }
    override func tearDown() { try? FileManager.default.removeItem(at: folder) }

    func parse(_ text: String) throws -> EvolveConfig {
        _ = try writeEvolveText(in: folder)
        return try EvolveConfigParser.parse(text: text, file: folder.appendingPathComponent("e.yml").path, workingDirectory: folder.path)
    }

    /// The error a config gets, as text.
    func error(_ text: String) -> String {
        do { _ = try parse(text) } catch { return "\(error)" }
        return "no error"
    }

    let good = """
        merge_method: slerp
        base_model: a
        models:
          - model: a
          - model: b
        search:
          layer_granularity: 2
          filters: [self_attn, mlp]
          parameters:
            t: {min: 0.1, max: 0.9}
        objective:
          context: 64
          held_out: 0.3
          texts:
            - path: text.txt
              metric: bits_per_byte
              weight: 2
              windows: 3
        optimizer:
          method: random
          population: 5
          sigma0: 0.2
          budget: 10
          seed: 7
        """

    func testReadsEveryField() throws {
        let c = try parse(good)
        XCTAssertEqual(c.recipe.mergeMethod, "slerp")
        XCTAssertEqual(c.search.layerGranularity, 2)
        XCTAssertEqual(c.search.filters, ["self_attn", "mlp"])
        XCTAssertEqual(c.search.parameters.map(\.name), ["t"])
        XCTAssertEqual(c.search.parameters[0].lower, 0.1)
        XCTAssertEqual(c.search.parameters[0].upper, 0.9)
        XCTAssertEqual(c.objective.contextLength, 64)
        XCTAssertEqual(c.objective.heldOut, 0.3)
        XCTAssertEqual(c.objective.texts[0].metric, .bitsPerByte)
        XCTAssertEqual(c.objective.texts[0].weight, 2)
        XCTAssertEqual(c.objective.texts[0].windows, 3)
        XCTAssertEqual(c.objective.texts[0].heldOutWindows, 3)
        XCTAssertEqual(c.objective.texts[0].path, folder.appendingPathComponent("text.txt").standardizedFileURL.path)
        XCTAssertEqual(c.optimizer.kind, .random)
        XCTAssertEqual(c.optimizer.population, 5)
        XCTAssertEqual(c.optimizer.sigma0, 0.2)
        XCTAssertEqual(c.optimizer.budget, 10)
        XCTAssertEqual(c.optimizer.seed, 7)
        // The evolve sections are not reported as unknown recipe keys.
        XCTAssertTrue(c.warnings.isEmpty, "\(c.warnings)")
    }

    func testErrorsNameTheLineAndColumn() {
        let file = folder.appendingPathComponent("e.yml").path
        XCTAssertTrue(error(good.replacingOccurrences(of: "t: {min: 0.1, max: 0.9}", with: "t: {min: 0.9, max: 0.1}"))
            .hasPrefix("\(file):10:24: error: `max`: must be above `min`"), error(good.replacingOccurrences(of: "t: {min: 0.1, max: 0.9}",
                                                                                                          with: "t: {min: 0.9, max: 0.1}")))
        XCTAssertTrue(error(good.replacingOccurrences(of: "    t: {", with: "    gamma: {"))
            .hasPrefix("\(file):10:5: error: parameter `gamma`"))
        XCTAssertTrue(error(good.replacingOccurrences(of: "metric: bits_per_byte", with: "metric: ppl"))
            .hasPrefix("\(file):16:15: error: `metric`: expected one of `perplexity`"))
        XCTAssertTrue(error(good.replacingOccurrences(of: "held_out: 0.3", with: "held_out: 1.5"))
            .hasPrefix("\(file):13:13: error: `held_out`"))
        XCTAssertTrue(error(good.replacingOccurrences(of: "path: text.txt", with: "path: missing.txt"))
            .hasPrefix("\(file):15:13: error: `path`: no readable file `missing.txt`"))
        XCTAssertTrue(error(good.replacingOccurrences(of: "method: random", with: "method: cmaes"))
            .contains("\(file):20:11: error: `method`: expected one of `cma_es`, `random`"))
        XCTAssertTrue(error(good.replacingOccurrences(of: "metric: bits_per_byte", with: "metric: kl_divergence"))
            .hasPrefix("\(file):15:7: error: a `kl_divergence` text"))
        XCTAssertTrue(error(good.replacingOccurrences(of: "population: 5", with: "population: 1"))
            .hasPrefix("\(file):21:15: error: `population`"))
        let noSearch = good.components(separatedBy: "\n").filter { !$0.hasPrefix("search:") && !$0.hasPrefix("  layer_granularity")
            && !$0.hasPrefix("  filters") && !$0.hasPrefix("  parameters") && !$0.hasPrefix("    t:") }.joined(separator: "\n")
        XCTAssertTrue(error(noSearch).hasPrefix("\(file):1:1: error: the evolve config has no `search` key"), error(noSearch))
    }
}
