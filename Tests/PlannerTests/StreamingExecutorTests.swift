import Checkpoints
import Foundation
import MergeMethods
import Numerics
import Planner
import TestSupport
import XCTest

/// The executor streams non-elementwise methods through `MergeInputReader`/`MergeOutputWriter`; its files must hold
/// exactly the bytes the whole-tensor kernel gives on the same inputs.
final class StreamingExecutorTests: XCTestCase {
    /// Merges `recipe` through the executor, then recomputes every merged tensor with `MergeMethod.merge` on whole
    /// tensors read from the parents and compares the stored bytes.
    func checkExecutorMatchesWholeTensorKernel(_ recipe: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (plan, output) = try runRecipe(writeRecipe(recipe), seed: 7)
        let merged = try SafetensorsFile(path: (output as NSString).appendingPathComponent("model.safetensors"))
        var compared = 0
        for task in plan.tasks where task.operation == .merge {
            let n = task.elementCount
            var inputs: [[Float]] = []
            for input in task.inputs {
                XCTAssertEqual(input.info.shape, task.shape, "fixture tensors are not cropped", file: file, line: line)
                var values = try plan.models[input.model].source.readAllFloats(input.tensorName)
                if let c = task.computeDType, c != input.info.dtype {
                    values.withUnsafeMutableBufferPointer { roundToPrecision($0.baseAddress!, count: n, of: c) }
                }
                inputs.append(values)
            }
            var expected = [Float](repeating: .nan, count: n)
            try withBuffers(inputs) { buffers in
                let mergeInputs = task.inputs.indices.map { k in
                    MergeInput(values: buffers[k], parameters: task.inputs[k].parameters, modelIndex: task.inputs[k].model,
                               modelName: plan.models[task.inputs[k].model].reference.raw)
                }
                let request = MergeRequest(tensorName: task.outputName, shape: task.shape, inputs: mergeInputs,
                                           baseIndex: task.baseIndex, global: task.global, seed: plan.seed, threads: 1)
                _ = try expected.withUnsafeMutableBufferPointer { try plan.method.merge(request, into: $0) }
            }
            var bytes = [UInt8](repeating: 0, count: n * task.outputDType.byteSize)
            bytes.withUnsafeMutableBytes { convertFromFloat(expected, count: n, to: task.outputDType, into: $0.baseAddress!) }
            let stored = try XCTUnwrap(try merged.rawBytes(task.outputName), file: file, line: line)
            XCTAssertEqual(Array(stored), bytes, "\(plan.method.name): tensor \(task.outputName) differs", file: file, line: line)
            compared += 1
        }
        XCTAssertGreaterThan(compared, 5, file: file, line: line)
    }

    private func withBuffers(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) throws -> Void) throws {
        let copies = arrays.map { a -> UnsafeMutableBufferPointer<Float> in
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, a.count))
            _ = b.initialize(from: a)
            return b
        }
        defer { copies.forEach { $0.deallocate() } }
        try body(copies.enumerated().map { UnsafeBufferPointer(rebasing: $0.element[0..<arrays[$0.offset].count]) })
    }

    static func recipe(_ method: String, parameters: String = "weight: 0.5, density: 0.5", global: String = "", dtype: String = "") -> String {
        """
        merge_method: \(method)
        base_model: models/llama-base
        models:
          - model: models/llama-ft1
            parameters: {\(parameters)}
          - model: models/llama-ft2
            parameters: {\(parameters)}
        \(global.isEmpty ? "" : "parameters: {\(global)}")
        \(dtype.isEmpty ? "" : "dtype: \(dtype)")
        """
    }

    func testStreamedTiesExecutorMatchesWholeTensorKernelBitForBit() throws {
        try checkExecutorMatchesWholeTensorKernel(Self.recipe("ties"))
    }

    func testStreamedTiesWithBF16ComputeMatchesWholeTensorKernel() throws {
        try checkExecutorMatchesWholeTensorKernel(Self.recipe("ties", parameters: "weight: 0.7, density: 0.3", dtype: "bfloat16"))
    }

    func testStreamedRandomMethodsMatchWholeTensorKernelBitForBit() throws {
        try checkExecutorMatchesWholeTensorKernel(Self.recipe("dare_ties"))
        try checkExecutorMatchesWholeTensorKernel(Self.recipe("della", parameters: "weight: 0.5, density: 0.5, epsilon: 0.1"))
    }

    func testStreamedSCEModelStockAndMultiSlerpMatchWholeTensorKernel() throws {
        try checkExecutorMatchesWholeTensorKernel(Self.recipe("sce", parameters: "weight: 1.0", global: "select_topk: 0.4"))
        try checkExecutorMatchesWholeTensorKernel(Self.recipe("model_stock", parameters: "weight: 1.0"))
        try checkExecutorMatchesWholeTensorKernel(Self.recipe("multislerp", parameters: "weight: 0.5"))
    }
}
