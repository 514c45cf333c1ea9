import Foundation
import MergeMethods
import Numerics
import Recipes
import XCTest

/// Streaming merges (inputs read block by block) must be bit-identical to the whole-tensor kernels, whatever the
/// block size and thread count.
final class StreamingAgreementTests: XCTestCase {
    /// Parent data with the awkward cases the selection and reductions must get right: bf16-rounded deltas (many equal
    /// magnitudes at the cut-off), deltas of exactly zero, and parents so small that x − b rounds to −b in float32:
    /// their magnitudes tie with each other (bf16 bases repeat) and differ only in the rounded-away residual, which
    /// orders them. With density ≈ 0.1 the cut-off falls among those.
    static func parents(count n: Int, parents: Int, seed: UInt64) -> [[Float]] {
        var g = SplitMix64(seed: seed)
        func bf16(_ x: Float) -> Float { bf16ToFloat(floatToBF16(x)) }
        let base = (0..<n).map { _ in bf16(g.nextGaussian()) }
        var result = [base]
        for _ in 0..<parents {
            result.append((0..<n).map { i in
                let kind = g.next() % 10
                switch kind {
                case 0: return base[i]
                case 1: return g.nextGaussian() * 1e-9
                case 2: return base[i] + g.nextGaussian() * 0.01
                default: return bf16(base[i] + bf16(g.nextGaussian() * 0.02))
                }
            })
        }
        return result
    }

    struct Outcome {
        let bits: [UInt32]
        let warnings: [String]
    }

    static func filled(_ method: any MergeMethod, global: [String: ParameterValue], perModel: [[String: ParameterValue]])
        -> ([String: ParameterValue], [[String: ParameterValue]]) {
        var g = global
        for d in method.globalParameters where g[d.name] == nil {
            if let v = d.defaultValue { g[d.name] = v }
        }
        let p = perModel.map { params -> [String: ParameterValue] in
            var p = params
            for d in method.perModelParameters where p[d.name] == nil {
                if let v = d.defaultValue { p[d.name] = v }
            }
            return p
        }
        return (g, p)
    }

    static func whole(_ name: String, _ data: [[Float]], shape: [Int], baseIndex: Int?, global: [String: ParameterValue],
                      perModel: [[String: ParameterValue]], threads: Int) throws -> Outcome {
        let m = try XCTUnwrap(MergeMethodRegistry.method(named: name))
        let (g, p) = filled(m, global: global, perModel: perModel)
        let n = data[0].count
        return try withArrays(data) { buffers in
            let inputs = buffers.indices.map {
                MergeInput(values: buffers[$0], parameters: p[$0], modelIndex: $0, modelName: "model\($0)")
            }
            let request = MergeRequest(tensorName: "model.layers.3.mlp.down_proj.weight", shape: shape, inputs: inputs,
                                       baseIndex: baseIndex, global: g, seed: 42, threads: threads)
            var out = [Float](repeating: .nan, count: n)
            let w = try out.withUnsafeMutableBufferPointer { try m.merge(request, into: $0) }
            return Outcome(bits: out.map(\.bitPattern), warnings: w)
        }
    }

    static func streamed(_ name: String, _ data: [[Float]], shape: [Int], baseIndex: Int?, global: [String: ParameterValue],
                         perModel: [[String: ParameterValue]], threads: Int, block: Int, workspace: MergeWorkspace) throws -> Outcome {
        let m = try XCTUnwrap(MergeMethodRegistry.method(named: name) as? any StreamingMergeMethod, "\(name) does not stream")
        let (g, p) = filled(m, global: global, perModel: perModel)
        let n = data[0].count
        return try withArrays(data) { buffers in
            let inputs = buffers.indices.map { StreamingInput(parameters: p[$0], modelIndex: $0, modelName: "model\($0)") }
            let request = StreamingMergeRequest(tensorName: "model.layers.3.mlp.down_proj.weight", shape: shape, count: n,
                                                inputs: inputs, baseIndex: baseIndex, global: g, seed: 42, threads: threads,
                                                blockElements: block, workspace: workspace)
            var out = [Float](repeating: .nan, count: n)
            let w = try out.withUnsafeMutableBufferPointer { o -> [String] in
                let writer = BufferOutputWriter(o)
                let w = try m.mergeStreaming(request, inputs: BufferInputReader(buffers), output: writer)
                XCTAssertEqual(writer.written, n, "\(name) wrote every element")
                return w
            }
            return Outcome(bits: out.map(\.bitPattern), warnings: w)
        }
    }

    static func withArrays<R>(_ data: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
        let buffers = data.map { values -> UnsafeMutableBufferPointer<Float> in
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, values.count))
            _ = b.initialize(from: values)
            return b
        }
        defer { buffers.forEach { $0.deallocate() } }
        return try body(buffers.enumerated().map { UnsafeBufferPointer(rebasing: $0.element[0..<data[$0.offset].count]) })
    }

    /// Compares streaming with whole-tensor merging for one configuration over shapes, block sizes and thread counts.
    func check(_ name: String, parents: Int = 2, global: [String: ParameterValue] = [:],
               perModel: [String: ParameterValue], shapes: [[Int]] = [[352, 411], [7, 13], [1000]],
               file: StaticString = #filePath, line: UInt = #line) throws {
        let workspace = MergeWorkspace()
        for (s, shape) in shapes.enumerated() {
            let n = shape.reduce(1, *)
            let data = StreamingAgreementTests.parents(count: n, parents: parents, seed: UInt64(17 + s))
            // The base in the middle, so recipe order and base position differ.
            let baseIndex = parents >= 2 ? 1 : 0
            var ordered = Array(data.dropFirst())
            ordered.insert(data[0], at: baseIndex)
            var models = [[String: ParameterValue]](repeating: perModel, count: parents + 1)
            models[baseIndex] = [:]
            if parents >= 2 { models[parents]["weight"] = .number(0.7) }
            let reference = try StreamingAgreementTests.whole(name, ordered, shape: shape, baseIndex: baseIndex, global: global,
                                                              perModel: models, threads: 1)
            for threads in [1, 2] {
                for block in [1, 65_536, 100_000, 131_072, 1 << 22] {
                    let got = try StreamingAgreementTests.streamed(name, ordered, shape: shape, baseIndex: baseIndex, global: global,
                                                                   perModel: models, threads: threads, block: block, workspace: workspace)
                    let mismatches = zip(got.bits, reference.bits).filter { $0 != $1 }.count
                    XCTAssertEqual(mismatches, 0, "\(name) shape \(shape) threads \(threads) block \(block): \(mismatches) elements differ",
                                   file: file, line: line)
                    XCTAssertEqual(got.warnings, reference.warnings, "\(name) shape \(shape): warnings", file: file, line: line)
                }
            }
        }
    }

    func testEveryMethodThatIsNotElementwiseStreams() {
        for name in MergeMethodRegistry.names {
            guard let m = MergeMethodRegistry.method(named: name) else { continue }
            if m.isElementwise(global: [:]) { continue }
            XCTAssertTrue(m is any StreamingMergeMethod, "\(name) holds every parent in memory")
        }
    }

    func testStreamedTiesIsBitIdenticalToWholeTensorTies() throws {
        try check("ties", perModel: ["weight": .number(0.5), "density": .number(0.5)])
        try check("ties", perModel: ["weight": .number(0.5), "density": .number(0.1)])
        try check("ties", parents: 3, global: ["normalize": .bool(false), "lambda": .number(0.8)],
                  perModel: ["weight": .number(0.4), "density": .number(0.3)])
    }

    func testStreamedTiesWithRescaleAndTinyDensityIsBitIdentical() throws {
        // density 1e-6 keeps ⌊density·n⌋ = 0 entries, so the single largest is kept (with a warning).
        try check("ties", global: ["rescale": .bool(true)], perModel: ["weight": .number(0.5), "density": .number(1e-6)])
        try check("ties", global: ["rescale": .bool(true)], perModel: ["weight": .number(0.5), "density": .number(0.9)])
    }

    func testStreamedDareIsBitIdentical() throws {
        try check("dare_ties", perModel: ["weight": .number(0.5), "density": .number(0.5)])
        try check("dare_linear", perModel: ["weight": .number(0.5), "density": .number(0.3)])
    }

    func testStreamedBreadcrumbsIsBitIdentical() throws {
        try check("breadcrumbs", perModel: ["weight": .number(0.5), "density": .number(0.6), "gamma": .number(0.05)])
        try check("breadcrumbs_ties", global: ["rescale": .bool(true)],
                  perModel: ["weight": .number(0.5), "density": .number(0.4), "gamma": .number(0.1)])
    }

    func testStreamedDellaIsBitIdentical() throws {
        try check("della", perModel: ["weight": .number(0.5), "density": .number(0.5), "epsilon": .number(0.1)])
        try check("della_linear", perModel: ["weight": .number(0.5), "density": .number(0.4), "epsilon": .number(0.2)],
                  shapes: [[352, 411], [90_001]])
    }

    func testStreamedTaskArithmeticIsBitIdentical() throws {
        try check("task_arithmetic", parents: 3, global: ["normalize": .bool(true)], perModel: ["weight": .number(0.3)])
    }

    func testStreamedModelStockIsBitIdentical() throws {
        try check("model_stock", parents: 3, perModel: [:])
        try check("model_stock", parents: 2, global: ["filter_wise": .bool(true)], perModel: [:],
                  shapes: [[352, 411], [3, 70_000], [7, 13]])
    }

    func testStreamedSCEIsBitIdentical() throws {
        try check("sce", parents: 3, global: ["select_topk": .number(0.3)], perModel: [:])
        try check("sce", parents: 2, global: ["select_topk": .number(1.0)], perModel: [:])
        try check("sce", parents: 2, global: ["select_topk": .number(0)], perModel: [:], shapes: [[352, 411]])
    }

    func testStreamedNuSlerpIsBitIdenticalInEveryLayout() throws {
        for layout: [String: ParameterValue] in [[:], ["nuslerp_flatten": .bool(false)],
                                                 ["nuslerp_flatten": .bool(false), "nuslerp_row_wise": .bool(true)]] {
            try check("nuslerp", parents: 2, global: layout, perModel: ["weight": .number(0.4)])
        }
        // Without a base model the parents themselves are interpolated.
        let data = StreamingAgreementTests.parents(count: 352 * 411, parents: 1, seed: 9)
        let models: [[String: ParameterValue]] = [["weight": .number(0.3)], ["weight": .number(0.5)]]
        let reference = try StreamingAgreementTests.whole("nuslerp", data, shape: [352, 411], baseIndex: nil,
                                                          global: ["nuslerp_flatten": .bool(false)], perModel: models, threads: 1)
        let got = try StreamingAgreementTests.streamed("nuslerp", data, shape: [352, 411], baseIndex: nil,
                                                       global: ["nuslerp_flatten": .bool(false)], perModel: models, threads: 2,
                                                       block: 65_536, workspace: MergeWorkspace())
        XCTAssertEqual(got.bits, reference.bits)
    }

    func testStreamedRAMIsBitIdentical() throws {
        try check("ram", parents: 3, perModel: [:])
        try check("ramplus_tl", parents: 3, global: ["r": .number(0.3), "alpha": .number(0.5)], perModel: [:])
        try check("ramplus_tl", parents: 2, global: ["epsilon": .number(0.015)], perModel: [:])
    }

    func testStreamedArceeFusionIsBitIdentical() throws {
        try check("arcee_fusion", parents: 1, perModel: [:])
    }

    /// Streams `data` with every block size and thread count and compares with the whole-tensor merge.
    func compareAll(_ name: String, _ data: [[Float]], shape: [Int], baseIndex: Int?, global: [String: ParameterValue],
                    perModel: [[String: ParameterValue]], file: StaticString = #filePath, line: UInt = #line) throws {
        let reference = try StreamingAgreementTests.whole(name, data, shape: shape, baseIndex: baseIndex, global: global,
                                                          perModel: perModel, threads: 1)
        let workspace = MergeWorkspace()
        for threads in [1, 2] {
            for block in [65_536, 100_000, 1 << 22] {
                let got = try StreamingAgreementTests.streamed(name, data, shape: shape, baseIndex: baseIndex, global: global,
                                                               perModel: perModel, threads: threads, block: block, workspace: workspace)
                let mismatches = zip(got.bits, reference.bits).filter { $0 != $1 }.count
                XCTAssertEqual(mismatches, 0, "\(name) threads \(threads) block \(block)", file: file, line: line)
                XCTAssertEqual(got.warnings, reference.warnings, file: file, line: line)
            }
        }
    }

    func testStreamedMultiSlerpIsBitIdenticalWithAndWithoutBase() throws {
        let data = StreamingAgreementTests.parents(count: 300_001, parents: 3, seed: 21)
        let weights: [[String: ParameterValue]] = [[:], ["weight": .number(0.2)], ["weight": .number(0.5)], ["weight": .number(0.3)]]
        try compareAll("multislerp", data, shape: [300_001], baseIndex: 0, global: [:], perModel: weights)
        try compareAll("multislerp", Array(data.dropFirst()), shape: [300_001], baseIndex: nil,
                       global: ["normalize_weights": .bool(false)], perModel: Array(weights.dropFirst()))
    }

    func testStreamedKarcherIsBitIdentical() throws {
        let data = StreamingAgreementTests.parents(count: 200_003, parents: 2, seed: 22)
        try compareAll("karcher", data, shape: [200_003], baseIndex: nil, global: ["max_iter": .number(5)],
                       perModel: [[:], [:], [:]])
    }

    func testStreamedSlerpIsBitIdentical() throws {
        try check("slerp", parents: 1, global: ["t": .number(0.3)], perModel: [:])
        // Nearly colinear inputs take the linear fallback.
        let n = 140_000
        let a = (0..<n).map { Float($0 % 977) * 1e-3 }
        let b = a.map { $0 * 1.0001 }
        let reference = try StreamingAgreementTests.whole("slerp", [a, b], shape: [n], baseIndex: 0, global: ["t": .number(0.4)],
                                                          perModel: [[:], [:]], threads: 2)
        let got = try StreamingAgreementTests.streamed("slerp", [a, b], shape: [n], baseIndex: 0, global: ["t": .number(0.4)],
                                                       perModel: [[:], [:]], threads: 2, block: 65_536, workspace: MergeWorkspace())
        XCTAssertEqual(got.bits, reference.bits)
    }

    func testStreamingBaseOnlyCopiesTheBase() throws {
        let data = StreamingAgreementTests.parents(count: 70_000, parents: 0, seed: 3)
        let got = try StreamingAgreementTests.streamed("ties", data, shape: [70_000], baseIndex: 0, global: [:], perModel: [[:]],
                                                       threads: 1, block: 65_536, workspace: MergeWorkspace())
        XCTAssertEqual(got.bits, data[0].map(\.bitPattern))
    }

    func testStreamingReportsAMissingBase() throws {
        let data = StreamingAgreementTests.parents(count: 100, parents: 1, seed: 5)
        XCTAssertThrowsError(try StreamingAgreementTests.streamed("ties", data, shape: [100], baseIndex: 7, global: [:],
                                                                  perModel: [["weight": .number(1)], ["weight": .number(1)]],
                                                                  threads: 1, block: 65_536, workspace: MergeWorkspace())) { error in
            XCTAssertTrue("\(error)".contains("base"), "\(error)")
        }
    }
}
