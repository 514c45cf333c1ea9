import Foundation
import MergeMethods
import Numerics
import Recipes
import XCTest

/// Runs a merge method on plain arrays through the public API.
struct MergeHarness {
    struct Result {
        let values: [Float]
        let warnings: [String]
    }

    static func method(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> any MergeMethod {
        guard let m = MergeMethodRegistry.method(named: name) else {
            XCTFail("method \(name) is not registered", file: file, line: line)
            throw MergeMethodError("missing \(name)")
        }
        return m
    }

    /// `perModel[i]` are input i's parameters; the method's declared defaults are filled in as the planner does.
    static func run(_ name: String, inputs: [[Float]], baseIndex: Int? = nil, global: [String: ParameterValue] = [:],
                    perModel: [[String: ParameterValue]]? = nil, shape: [Int]? = nil, seed: UInt64 = 0,
                    tensorName: String = "model.layers.0.mlp.up_proj.weight", threads: Int = 1) throws -> Result {
        let m = try method(name)
        var g = global
        for d in m.globalParameters where g[d.name] == nil {
            if let v = d.defaultValue { g[d.name] = v }
        }
        let n = inputs[0].count
        let buffers = inputs.map { values -> UnsafeMutableBufferPointer<Float> in
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, values.count))
            _ = b.initialize(from: values)
            return b
        }
        defer { buffers.forEach { $0.deallocate() } }
        let mergeInputs = inputs.indices.map { i -> MergeInput in
            var p = perModel?[i] ?? [:]
            for d in m.perModelParameters where p[d.name] == nil {
                if let v = d.defaultValue { p[d.name] = v }
            }
            return MergeInput(values: UnsafeBufferPointer(rebasing: buffers[i][0..<inputs[i].count]), parameters: p,
                              modelIndex: i, modelName: "model\(i)")
        }
        let request = MergeRequest(tensorName: tensorName, shape: shape ?? [n], inputs: mergeInputs, baseIndex: baseIndex,
                                   global: g, seed: seed, threads: threads)
        var out = [Float](repeating: .nan, count: n)
        let warnings = try out.withUnsafeMutableBufferPointer { try m.merge(request, into: $0) }
        return Result(values: out, warnings: warnings)
    }

    /// Deterministic pseudo-random test data (SplitMix64, never the system RNG).
    static func gaussian(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var g = SplitMix64(seed: seed)
        return (0..<count).map { _ in g.nextGaussian() * scale }
    }
}

func w(_ x: Double) -> ParameterValue { .number(x) }

/// max |a − b| / max |b|.
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    var diff = 0.0, scale = 0.0
    for (x, y) in zip(a, b) {
        diff = max(diff, Double(abs(x - y)))
        scale = max(scale, Double(abs(y)))
    }
    return scale == 0 ? diff : diff / scale
}
