import Checkpoints
import Foundation
import MergeMethods
import Recipes
import TestSupport
import XCTest

/// Runs each kernel tensor by tensor on the fixture parents and compares with what mergekit 0.1.5 wrote
/// (fixtures/MANIFEST.md, "Recipes": tolerance relative to each tensor's max |value|).
/// Parameters are those of each `merges/<recipe>/recipe.yaml`; inputs are in mergekit's order (as listed,
/// the base appended when it is not listed).
final class FixtureAgreementTests: XCTestCase {
    struct Parent {
        let model: String
        var parameters: [String: ParameterValue] = [:]
    }

    private var cache: [String: CheckpointFolder] = [:]

    private func folder(_ relative: String) throws -> CheckpointFolder {
        if let f = cache[relative] { return f }
        let f = try CheckpointFolder(path: Fixtures.fixture(relative))
        cache[relative] = f
        return f
    }

    /// Layer position t used for gradients: layer/(layers − 1), 0 outside the layer stack.
    private func layerT(_ name: String, layers: Int = 4) -> Double {
        let parts = name.split(separator: ".")
        guard let i = parts.firstIndex(of: "layers"), i + 1 < parts.count, let l = Int(parts[i + 1]) else { return 0 }
        return Double(l) / Double(layers - 1)
    }

    /// Merges every output tensor of `recipe` and returns (worst relative error, per-tensor results).
    @discardableResult
    private func check(_ recipe: String, method: String, parents: [Parent], baseIndex: Int?,
                       global: [String: ParameterValue] = [:], tolerance: Double,
                       parametersFor: ((String, Int) -> [String: ParameterValue])? = nil,
                       file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        let reference = try folder("merges/\(recipe)/output")
        let sources = try parents.map { try folder("models/\($0.model)") }
        var worst = 0.0
        XCTAssertFalse(reference.tensorNames.isEmpty)
        for name in reference.tensorNames {
            let inputs = try sources.map { try $0.readAllFloats(name) }
            let perModel = parents.indices.map { i in parametersFor?(name, i) ?? parents[i].parameters }
            let info = try reference.require(name)
            let result = try MergeHarness.run(method, inputs: inputs, baseIndex: baseIndex, global: global, perModel: perModel,
                                              shape: info.shape, seed: 0, tensorName: name)
            let expected = try reference.readAllFloats(name)
            let err = relativeError(result.values, expected)
            worst = max(worst, err)
            XCTAssertLessThanOrEqual(err, tolerance, "\(recipe): \(name)", file: file, line: line)
        }
        print("[fixture] \(recipe): worst relative error \(worst)")
        return worst
    }

    func testLinearNormalizedMatchesMergekitReference() throws {
        try check("linear-normalized", method: "linear",
                  parents: [Parent(model: "llama-ft1", parameters: ["weight": w(2)]),
                            Parent(model: "llama-ft2", parameters: ["weight": w(1)]),
                            Parent(model: "llama-ft3", parameters: ["weight": w(1)])],
                  baseIndex: nil, global: ["normalize": .bool(true)], tolerance: 1e-6)
    }

    func testLinearUnnormalizedMatchesMergekitReference() throws {
        try check("linear-unnormalized", method: "linear",
                  parents: [Parent(model: "llama-ft1", parameters: ["weight": w(0.7)]),
                            Parent(model: "llama-ft2", parameters: ["weight": w(0.5)])],
                  baseIndex: nil, global: ["normalize": .bool(false)], tolerance: 1e-6)
    }

    func testSlerpMatchesMergekitReference() throws {
        try check("slerp-scalar", method: "slerp", parents: [Parent(model: "llama-ft1"), Parent(model: "llama-ft2")],
                  baseIndex: 0, global: ["t": w(0.35)], tolerance: 1e-5)
    }

    func testTaskArithmeticMatchesMergekitReference() throws {
        try check("task-arithmetic", method: "task_arithmetic",
                  parents: [Parent(model: "llama-ft1", parameters: ["weight": w(1.0)]),
                            Parent(model: "llama-ft2", parameters: ["weight": w(0.5)]),
                            Parent(model: "llama-ft3", parameters: ["weight": w(0.3)]),
                            Parent(model: "llama-base")],
                  baseIndex: 3, tolerance: 1e-6)
    }

    func testTiesMatchesMergekitReference() throws {
        try check("ties", method: "ties",
                  parents: [Parent(model: "llama-ft1", parameters: ["density": w(0.5), "weight": w(1.0)]),
                            Parent(model: "llama-ft2", parameters: ["density": w(0.7), "weight": w(0.6)]),
                            Parent(model: "llama-ft3", parameters: ["density": w(0.3), "weight": w(0.4)]),
                            Parent(model: "llama-base")],
                  baseIndex: 3, tolerance: 1e-6)
    }

    func testTiesWithDensityGradientAndLambdaMatchesMergekitReference() throws {
        // density: [0.2, 0.8] and [0.8, 0.2] over the 4 layers; embeddings, final norm and lm_head take t = 0.
        try check("ties-gradient-density-lambda", method: "ties",
                  parents: [Parent(model: "llama-ft1"), Parent(model: "llama-ft2"), Parent(model: "llama-base")],
                  baseIndex: 2, global: ["normalize": .bool(false), "lambda": w(0.8), "int8_mask": .bool(true)], tolerance: 1e-6,
                  parametersFor: { name, i in
                      let t = self.layerT(name)
                      switch i {
                      case 0: return ["weight": w(0.5), "density": w(0.2 * (1 - t) + 0.8 * t)]
                      case 1: return ["weight": w(0.5), "density": w(0.8 * (1 - t) + 0.2 * t)]
                      default: return [:]
                      }
                  })
    }

    func testDareTiesAtDensityOneMatchesMergekitReference() throws {
        try check("dare-ties-density1", method: "dare_ties",
                  parents: [Parent(model: "llama-ft1", parameters: ["density": w(1.0), "weight": w(0.6)]),
                            Parent(model: "llama-ft2", parameters: ["density": w(1.0), "weight": w(0.4)]),
                            Parent(model: "llama-base")],
                  baseIndex: 2, tolerance: 1e-6)
    }

    func testBreadcrumbsMatchesMergekitReference() throws {
        try check("breadcrumbs", method: "breadcrumbs",
                  parents: [Parent(model: "llama-ft1", parameters: ["density": w(0.8), "gamma": w(0.05), "weight": w(0.5)]),
                            Parent(model: "llama-ft2", parameters: ["density": w(0.8), "gamma": w(0.05), "weight": w(0.5)]),
                            Parent(model: "llama-base")],
                  baseIndex: 2, tolerance: 1e-6)
    }

    func testBreadcrumbsTiesMatchesMergekitReference() throws {
        // Norm vectors have 32 entries, so ⌊0.02·32⌋ = 0 outliers: mergekit 0.1.5 kept the top there too.
        let p: [String: ParameterValue] = ["density": w(0.7), "gamma": w(0.02), "weight": w(0.5)]
        try check("breadcrumbs-ties", method: "breadcrumbs_ties",
                  parents: [Parent(model: "llama-ft1", parameters: p), Parent(model: "llama-ft2", parameters: p),
                            Parent(model: "llama-ft3", parameters: p), Parent(model: "llama-base")],
                  baseIndex: 3, tolerance: 1e-6)
    }

    func testModelStockMatchesMergekitReference() throws {
        try check("model-stock", method: "model_stock",
                  parents: [Parent(model: "llama-base"), Parent(model: "llama-ft1"), Parent(model: "llama-ft2"), Parent(model: "llama-ft3")],
                  baseIndex: 0, tolerance: 1e-5)
    }

    func testNuslerpOfTaskVectorsMatchesMergekitReference() throws {
        try check("nuslerp-taskvector", method: "nuslerp",
                  parents: [Parent(model: "llama-ft1", parameters: ["weight": w(0.6)]),
                            Parent(model: "llama-ft2", parameters: ["weight": w(0.4)]),
                            Parent(model: "llama-base")],
                  baseIndex: 2, tolerance: 1e-5)
    }

    func testKarcherMatchesMergekitReference() throws {
        try check("karcher", method: "karcher",
                  parents: [Parent(model: "llama-ft1"), Parent(model: "llama-ft2"), Parent(model: "llama-ft3")],
                  baseIndex: nil, tolerance: 1e-5)
    }

    func testMultislerpMatchesMergekitReference() throws {
        try check("multislerp", method: "multislerp",
                  parents: [Parent(model: "llama-ft1", parameters: ["weight": w(0.5)]),
                            Parent(model: "llama-ft2", parameters: ["weight": w(0.3)]),
                            Parent(model: "llama-ft3", parameters: ["weight": w(0.2)]),
                            Parent(model: "llama-base")],
                  baseIndex: 3, tolerance: 1e-5)
    }

    func testSCEMatchesMergekitReference() throws {
        try check("sce", method: "sce",
                  parents: [Parent(model: "llama-ft1"), Parent(model: "llama-ft2"), Parent(model: "llama-ft3"), Parent(model: "llama-base")],
                  baseIndex: 3, global: ["select_topk": w(0.5)], tolerance: 1e-5)
    }

    func testNearswapMatchesMergekitReference() throws {
        try check("nearswap", method: "nearswap", parents: [Parent(model: "llama-ft1"), Parent(model: "llama-ft2")],
                  baseIndex: 0, global: ["t": w(0.004)], tolerance: 1e-6)
    }
}
