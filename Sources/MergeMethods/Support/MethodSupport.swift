import Foundation
import Tensors

extension MergeMethodError {
    /// An error about one tensor of one method: "<method>: tensor '<name>': <detail>".
    static func tensor(_ method: String, _ request: MergeRequest, _ detail: String) -> MergeMethodError {
        MergeMethodError("\(method): tensor '\(request.tensorName)': \(detail)")
    }
}

extension MergeRequest {
    /// Checks that every input and the output have the same element count (the planner crops embeddings first).
    func checkSizes(_ method: String, output: UnsafeMutableBufferPointer<Float>) throws {
        guard let first = inputs.first else {
            throw MergeMethodError.tensor(method, self, "no inputs")
        }
        for input in inputs where input.values.count != first.values.count {
            throw MergeMethodError.tensor(method, self,
                "inputs differ in size (\(input.modelName) has \(input.values.count) elements, \(inputs[0].modelName) has \(first.values.count))")
        }
        guard output.count == first.values.count else {
            throw MergeMethodError.tensor(method, self, "output has \(output.count) elements, inputs have \(first.values.count)")
        }
    }

    /// The base input, or a clear error.
    func requireBase(_ method: String) throws -> MergeInput {
        guard let b = baseIndex, inputs.indices.contains(b) else {
            throw MergeMethodError.tensor(method, self, "needs base_model, but no base model input was given")
        }
        return inputs[b]
    }

    /// A global number, with a clear error when absent or not numeric.
    func requireNumber(_ method: String, _ name: String) throws -> Double {
        guard let v = global[name] else {
            throw MergeMethodError.tensor(method, self, "missing required parameter '\(name)'")
        }
        guard let d = v.number, d.isFinite else {
            throw MergeMethodError.tensor(method, self, "parameter '\(name)' must be a finite number, got '\(v)'")
        }
        return d
    }

    func number(_ method: String, _ name: String, default value: Double) throws -> Double {
        guard let v = global[name] else { return value }
        guard let d = v.number, d.isFinite else {
            throw MergeMethodError.tensor(method, self, "parameter '\(name)' must be a finite number, got '\(v)'")
        }
        return d
    }

    func flag(_ method: String, _ name: String, default value: Bool) throws -> Bool {
        guard let v = global[name] else { return value }
        guard let b = v.bool else {
            throw MergeMethodError.tensor(method, self, "parameter '\(name)' must be true or false, got '\(v)'")
        }
        return b
    }

    /// A per-model number, with a clear error naming the model.
    func modelNumber(_ method: String, _ input: MergeInput, _ name: String, default value: Double? = nil) throws -> Double {
        guard let v = input.parameters[name] else {
            if let value { return value }
            throw MergeMethodError.tensor(method, self, "model \(input.modelName) has no '\(name)'")
        }
        guard let d = v.number, d.isFinite else {
            throw MergeMethodError.tensor(method, self, "model \(input.modelName): '\(name)' must be a finite number, got '\(v)'")
        }
        return d
    }
}

/// Throws unless `count` is in `allowed`, naming the method.
func requireInputCount(_ method: String, _ count: Int, _ allowed: ClosedRange<Int>, what: String) throws {
    if !allowed.contains(count) {
        throw MergeMethodError("\(method) needs \(what); got \(count) input model\(count == 1 ? "" : "s")")
    }
}

/// Copies `source` into `output`.
func copyValues(_ source: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) {
    guard let s = source.baseAddress, let d = output.baseAddress else { return }
    d.update(from: s, count: min(source.count, output.count))
}

/// Double-precision reductions over float32 data (chunked, deterministic).
enum Reduce {
    static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, threads: Int) -> Double {
        Chunking(a.count, threads: threads).sum { r in
            var s = 0.0
            for i in r { s += Double(a[i]) * Double(b[i]) }
            return s
        }
    }

    static func squaredNorm(_ a: UnsafeBufferPointer<Float>, threads: Int) -> Double {
        Chunking(a.count, threads: threads).sum { r in
            var s = 0.0
            for i in r { s += Double(a[i]) * Double(a[i]) }
            return s
        }
    }
}

extension UnsafeMutableBufferPointer where Element == Float {
    var readOnly: UnsafeBufferPointer<Float> { UnsafeBufferPointer(self) }
}

/// A scratch buffer of a trivial type (Float, UInt32, Double) owned by one merge call.
/// Callers write every element before reading it unless they pass `initial`.
final class Scratch<T> {
    let buffer: UnsafeMutableBufferPointer<T>
    init(_ count: Int, initial: T? = nil) {
        buffer = .allocate(capacity: Swift.max(count, 1))
        if let initial { buffer.initialize(repeating: initial) }
    }
    deinit { buffer.deallocate() }
    subscript(i: Int) -> T {
        get { buffer[i] }
        set { buffer[i] = newValue }
    }
}
