import Foundation
import Recipes

extension MergeMethodError {
    /// An error about one tensor of one method: "<method>: tensor '<name>': <detail>".
    static func tensor(_ method: String, _ request: MergeRequest, _ detail: String) -> MergeMethodError {
        MergeMethodError("\(method): tensor '\(request.tensorName)': \(detail)")
    }
}

extension MergeRequest {
    /// Checks that every input and the output have the same element count (the planner re-indexes embeddings to one vocabulary first).
    func checkSizes(_ method: String, output: UnsafeMutableBufferPointer<Float>) throws {
        guard let first = inputs.first else {
            throw MergeMethodError.tensor(method, self, "no inputs")
        }
        for input in inputs where input.values.count != first.values.count {
            throw MergeMethodError.tensor(method, self,
                "inputs differ in size (\(input.modelName) has \(input.values.count) elements, \(inputs[0].modelName) has "
                    + "\(first.values.count))")
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

    /// A global number: the request's value, else the default `method` declares for it (defaults are spelled once,
    /// in the method's `globalParameters`).
    func number(_ method: some MergeMethod, _ name: String) throws -> Double {
        guard let v = global[name] ?? method.declaredDefault(name, perModel: false) else {
            throw MergeMethodError.tensor(method.name, self, "missing required parameter '\(name)'")
        }
        guard let d = v.number, d.isFinite else {
            throw MergeMethodError.tensor(method.name, self, "parameter '\(name)' must be a finite number, got '\(v)'")
        }
        return d
    }

    /// A global true/false, the request's or the method's declared default.
    func flag(_ method: some MergeMethod, _ name: String) throws -> Bool {
        guard let v = global[name] ?? method.declaredDefault(name, perModel: false) else {
            throw MergeMethodError.tensor(method.name, self, "missing required parameter '\(name)'")
        }
        guard let b = v.bool else {
            throw MergeMethodError.tensor(method.name, self, "parameter '\(name)' must be true or false, got '\(v)'")
        }
        return b
    }

    /// A per-model number, the model's value or the method's declared default, with a clear error naming the model.
    func modelNumber(_ method: some MergeMethod, _ input: MergeInput, _ name: String) throws -> Double {
        try modelNumber(method.name, input, name, default: method.declaredDefault(name, perModel: true)?.number)
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

extension MergeMethod {
    /// The default this method declares for parameter `name` (per model or global), if any.
    func declaredDefault(_ name: String, perModel: Bool) -> ParameterValue? {
        (perModel ? perModelParameters : globalParameters).first { $0.name == name }?.defaultValue
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
