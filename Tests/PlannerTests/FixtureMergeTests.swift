import Checkpoints
import Foundation
import Planner
import Recipes
import TestSupport
import XCTest

/// Crucible reproduces mergekit's reference merges (fixtures/merges) within the MANIFEST's tolerances.
final class FixtureMergeTests: XCTestCase {
    /// How closely a recipe must agree with mergekit, as MANIFEST.md states.
    enum Agreement { case bitExact, relative(Double), bf16ULP }

    /// `set`: the fixture set ("" or "archs/"), whose folder is the recipes' working directory.
    /// `unordered`: elements of a tensor left out of the comparison because mergekit's result there depends on how
    /// torch's unstable sort orders equal magnitudes (see `magnitudeTies`).
    /// `folder`: the case's folder when it is not `merges/<name>` of the set (references made for Crucible's tests).
    func check(_ name: String, _ agreement: Agreement, set: String = "", folder: String? = nil,
               unordered: [String: Set<Int>] = [:]) throws {
        let dir = folder ?? Fixtures.fixture("\(set)merges/\(name)")
        let (_, output) = try runRecipe(dir + "/recipe.yaml", workingDirectory: Fixtures.fixture(set))
        defer { try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent) }
        let ours = try loadTensors(output + "/model.safetensors")
        let ref = try loadTensors(dir + "/output/model.safetensors")
        XCTAssertEqual(Set(ours.keys), Set(ref.keys), "\(name): tensor names differ")
        for (tensor, var r) in ref {
            guard var o = ours[tensor] else { continue }
            for i in unordered[tensor] ?? [] where i < r.values.count { o.values[i] = 0; r.values[i] = 0 }
            XCTAssertEqual(o.shape, r.shape, "\(name): \(tensor) shape")
            XCTAssertEqual(o.dtype, r.dtype, "\(name): \(tensor) dtype")
            switch agreement {
            case .bitExact:
                XCTAssertEqual(o.values, r.values, "\(name): \(tensor) is not bit-exact")
            case let .relative(tol):
                let e = relativeError(o.values, r.values)
                XCTAssertLessThanOrEqual(e, tol, "\(name): \(tensor) differs by \(e) relative to its max")
            case .bf16ULP:
                for i in 0..<o.values.count {
                    let a = Int32(bitPattern: o.values[i].bitPattern >> 16), b = Int32(bitPattern: r.values[i].bitPattern >> 16)
                    if abs(a - b) > 1 {
                        XCTFail("\(name): \(tensor)[\(i)] = \(o.values[i]), reference \(r.values[i]): more than 1 bf16 ulp apart")
                        break
                    }
                }
            }
        }
        // config.json agrees on what a loader needs.
        let oc = try JSONValue.parse(file: output + "/config.json")
        let rc = try JSONValue.parse(file: dir + "/output/config.json")
        for key in ["architectures", "num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads",
                    "num_key_value_heads", "vocab_size", "tie_word_embeddings", "layer_types", "head_dim"] {
            XCTAssertEqual(oc[key], rc[key], "\(name): config.json '\(key)'")
        }
        let dtype = { (c: JSONValue) in c["dtype"]?.stringValue ?? c["torch_dtype"]?.stringValue }
        XCTAssertEqual(dtype(oc), dtype(rc), "\(name): config.json dtype")
        for f in ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "README.md", "mergekit_config.yml"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: output + "/" + f), "\(name): \(f) missing from the output")
        }
    }

    func testLinearNormalizedMatchesMergekit() throws { try check("linear-normalized", .relative(1e-6)) }
    func testLinearUnnormalizedMatchesMergekit() throws { try check("linear-unnormalized", .relative(1e-6)) }
    func testLinearMixedDTypeWithBF16OutputMatchesMergekit() throws { try check("linear-mixed-dtype-bf16-out", .bf16ULP) }
    func testSlerpScalarMatchesMergekit() throws { try check("slerp-scalar", .relative(1e-5)) }
    func testSlerpGradientFiltersMatchesMergekit() throws { try check("slerp-gradient-filters", .relative(1e-5)) }
    func testPassthroughFrankenmergeIsBitExact() throws { try check("passthrough-frankenmerge", .bitExact) }
    func testInterleavingTwoParentsIsBitExact() throws { try check("interleave-two-parents", .bitExact) }
    func testTaskArithmeticMatchesMergekit() throws { try check("task-arithmetic", .relative(1e-6)) }
    func testTiesMatchesMergekit() throws { try check("ties", .relative(1e-6)) }
    func testTiesWithGradientDensityAndLambdaMatchesMergekit() throws { try check("ties-gradient-density-lambda", .relative(1e-6)) }
    func testDareTiesAtDensityOneMatchesMergekit() throws { try check("dare-ties-density1", .relative(1e-6)) }
    func testBreadcrumbsMatchesMergekit() throws { try check("breadcrumbs", .relative(1e-6)) }
    func testBreadcrumbsTiesMatchesMergekit() throws { try check("breadcrumbs-ties", .relative(1e-6)) }
    func testModelStockMatchesMergekit() throws { try check("model-stock", .relative(1e-5)) }
    func testNuslerpTaskVectorMatchesMergekit() throws { try check("nuslerp-taskvector", .relative(1e-5)) }
    func testKarcherMatchesMergekit() throws { try check("karcher", .relative(1e-5)) }
    func testMultislerpMatchesMergekit() throws { try check("multislerp", .relative(1e-5)) }
    func testSceMatchesMergekit() throws { try check("sce", .relative(1e-5)) }
    func testNearswapMatchesMergekit() throws { try check("nearswap", .relative(1e-6)) }
    func testRAMMatchesMergekit() throws { try check("ram", .relative(1e-6), set: "vocab-lora/") }
    /// The fixture's `ramplus_tl`, one of whose inputs is `base+lora`.
    func testRAMPlusTensorLocalWithLoraInputMatchesMergekit() throws {
        try check("ramplus-tl", .relative(1e-6), set: "vocab-lora/")
    }
    /// `ramplus_tl` with shared and unique changes in every tensor (Tests/References/ram/README.md).
    func testRAMPlusTensorLocalMatchesMergekit() throws {
        let folder = Fixtures.packageRoot.appendingPathComponent("Tests/References/ram/ramplus-tl-dense").path
        try check("ramplus-tl-dense", .relative(1e-6), set: "vocab-lora/", folder: folder)
    }

    /// The stochastic recipes agree with mergekit in layout and in how much of each tensor moves away from the base.
    func testStochasticRecipesAgreeStatistically() throws {
        for name in ["dare-ties", "dare-linear", "della"] {
            let dir = Fixtures.fixture("merges/\(name)")
            let (plan, output) = try runRecipe(dir + "/recipe.yaml", seed: 7)
            defer { try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent) }
            XCTAssertTrue(plan.method.isRandom)
            let ours = try loadTensors(output + "/model.safetensors")
            let ref = try loadTensors(dir + "/output/model.safetensors")
            let base = try loadTensors(Fixtures.fixture("models/llama-base/model.safetensors"))
            XCTAssertEqual(Set(ours.keys), Set(ref.keys), name)
            var changedOurs = 0, changedRef = 0, total = 0
            for (tensor, r) in ref {
                let o = ours[tensor]!, b = base[tensor]!
                XCTAssertEqual(o.shape, r.shape, "\(name): \(tensor)")
                for i in 0..<r.values.count {
                    if o.values[i] != b.values[i] { changedOurs += 1 }
                    if r.values[i] != b.values[i] { changedRef += 1 }
                }
                total += r.values.count
            }
            let fo = Double(changedOurs) / Double(total), fr = Double(changedRef) / Double(total)
            XCTAssertEqual(fo, fr, accuracy: 0.02, "\(name): fraction of elements moved from the base: ours \(fo), mergekit \(fr)")
        }
    }
}
