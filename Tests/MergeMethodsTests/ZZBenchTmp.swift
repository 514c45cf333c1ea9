import Foundation
import MergeMethods
import Tensors
import XCTest

final class ZZBenchTmp: XCTestCase {
    func testBenchSmolLM2() throws {
        let maxN = 49152 * 576
        var shapes: [[Int]] = [[49152, 576]]
        for _ in 0..<30 {
            shapes += [[576, 576], [192, 576], [192, 576], [576, 576], [1536, 576], [1536, 576], [576, 1536], [576], [576]]
        }
        shapes.append([576])
        let total = shapes.reduce(0) { $0 + $1.reduce(1, *) }
        print("params", total)
        var g = SplitMix64(seed: 1)
        let bufs = (0..<3).map { k -> UnsafeMutableBufferPointer<Float> in
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: maxN)
            for i in 0..<maxN { b[i] = Float(Int(g.next() % 20001) - 10000) * 1e-4 }
            return b
        }
        let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: maxN)
        for methodName in (ProcessInfo.processInfo.environment["BENCH_METHODS"] ?? "ties").split(separator: ",").map(String.init) {
            let m = MergeMethodRegistry.method(named: methodName)!
            let start = Date()
            var ts0 = timespec(); clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts0)
            for (t, shape) in shapes.enumerated() {
                let n = shape.reduce(1, *)
                var inputs: [MergeInput] = []
                for k in 0..<3 {
                    var p: [String: ParameterValue] = ["weight": .number(0.5), "density": .number(0.5)]
                    for d in m.perModelParameters where p[d.name] == nil { if let v = d.defaultValue { p[d.name] = v } }
                    inputs.append(MergeInput(values: UnsafeBufferPointer(rebasing: bufs[k][0..<n]), parameters: p, modelIndex: k, modelName: "m\(k)"))
                }
                var gl: [String: ParameterValue] = [:]
                for d in m.globalParameters { if let v = d.defaultValue { gl[d.name] = v } }
                let req = MergeRequest(tensorName: "t\(t)", shape: shape, inputs: inputs, baseIndex: methodName == "linear" ? nil : 0, global: gl, seed: 1, threads: 2)
                _ = try m.merge(req, into: UnsafeMutableBufferPointer(rebasing: out[0..<n]))
            }
            var ts1 = timespec(); clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts1)
            let cpu = Double(ts1.tv_sec - ts0.tv_sec) + Double(ts1.tv_nsec - ts0.tv_nsec) * 1e-9
            print("BENCH \(methodName): wall \(Date().timeIntervalSince(start)) s, cpu \(cpu) s")
        }
    }
}
