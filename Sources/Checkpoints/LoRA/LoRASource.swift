import Foundation
import Numerics

/// A model's tensors with a LoRA adapter applied as they are read: W + scale·B·A for each targeted weight (computed
/// per requested row range with one sgemm into the caller's buffer), the adapter's full tensors in place of the
/// model's, everything else passed through untouched. No merged copy of the model exists anywhere.
///
/// Values of an adapted tensor are rounded to its stored dtype (bf16/f16), as the merged checkpoint mergekit writes
/// would hold them. The factors of a tensor are read once, on its first read, and dropped when it is released.
public final class LoRASource: TensorSource, @unchecked Sendable {
    public let base: any TensorSource
    public let adapter: LoRAAdapter
    private let moduleOfWeight: [String: Int]
    private let moduleOfBias: [String: Int]
    private let lock = NSLock()
    private var factors: [Int: (a: [Float], b: [Float], bias: [Float]?)] = [:]

    public var location: String { base.location + "+" + adapter.folder }
    public var tensorNames: [String] { base.tensorNames }
    public func info(_ name: String) -> TensorInfo? { base.info(name) }
    public func file(of name: String) -> String? { base.file(of: name) }

    /// Whether the adapter changes tensor `name`.
    public func adapts(_ name: String) -> Bool {
        moduleOfWeight[name] != nil || moduleOfBias[name] != nil || adapter.replacements[name] != nil
    }

    /// Checks `adapter` against `base`: every module's weight exists with the factors' shapes, every replaced tensor
    /// exists with its shape, and every module `target_modules` names in the model has factors.
    public init(base: any TensorSource, adapter: LoRAAdapter) throws {
        self.base = base
        self.adapter = adapter
        let file = adapter.weightsPath
        func bad(_ tensor: String, _ reason: String) -> CheckpointError { .invalidTensor(file: file, tensor: tensor, reason: reason) }
        var byWeight: [String: Int] = [:], byBias: [String: Int] = [:]
        for (i, m) in adapter.modules.enumerated() {
            let sa = adapter.weights.info(m.a)!.shape, sb = adapter.weights.info(m.b)!.shape
            let expected = m.kind == .linear ? [sb[0], sa[1]] : [sa[1], sb[0]]
            guard let w = base.info(m.weight) else {
                throw bad(m.a, "targets '\(m.weight)', which \(base.location) does not have: the adapter was made for another "
                    + "architecture or model")
            }
            guard w.shape == expected else {
                throw bad(m.a, "changes '\(m.weight)' by a \(expected) update (lora_A \(sa), lora_B \(sb)), but the model's tensor is "
                    + "\(w.shape) in \(base.file(of: m.weight) ?? base.location): the adapter was made for another model")
            }
            byWeight[m.weight] = i
            if let bias = m.bias {
                let name = m.name + ".bias"
                guard let info = base.info(name), info.shape == [sb[0]] else {
                    throw bad(bias, "needs the model's '\(name)' of shape [\(sb[0])], which \(base.location) does not have")
                }
                byBias[name] = i
            }
        }
        for (target, tensor) in adapter.replacements.sorted(by: { $0.key < $1.key }) {
            let shape = adapter.weights.info(tensor)!.shape
            guard let info = base.info(target) else {
                throw bad(tensor, "replaces '\(target)', which \(base.location) does not have: the adapter was made for another model")
            }
            guard info.shape == shape else {
                throw bad(tensor, "has shape \(shape) but replaces '\(target)' of shape \(info.shape) in "
                    + "\(base.file(of: target) ?? base.location)")
            }
        }
        let matrices = base.tensorNames.filter { $0.hasSuffix(".weight") && base.info($0)?.shape.count == 2 }
            .map { String($0.dropLast(".weight".count)) }
        if let wanted = adapter.targeted(among: matrices) {
            for module in wanted where byWeight[module + ".weight"] == nil && adapter.replacements[module + ".weight"] == nil {
                throw bad(LoRAAdapter.prefix + module + ".lora_A.weight",
                          "is missing: \(LoRAAdapter.configFile)'s target_modules select '\(module)', but the adapter has no factors "
                            + "for it")
            }
        }
        moduleOfWeight = byWeight
        moduleOfBias = byBias
    }

    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer? {
        if adapts(name) { return nil }
        return try base.rawBytes(name)
    }

    public func release(_ name: String) {
        base.release(name)
        guard let i = moduleOfWeight[name] ?? moduleOfBias[name] else { return }
        lock.lock()
        factors[i] = nil
        lock.unlock()
    }

    public func readFloats(_ name: String, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws {
        if let replacement = adapter.replacements[name] {
            try adapter.weights.readFloats(replacement, range: range, into: dest)
        } else {
            try base.readFloats(name, range: range, into: dest)
            if let i = moduleOfWeight[name] {
                try addDelta(adapter.modules[i], factors: try load(i), range: range, into: dest)
            } else if let i = moduleOfBias[name], let bias = try load(i).bias {
                let scale = adapter.modules[i].scale
                for j in range { dest[j - range.lowerBound] += scale * bias[j] }
            } else {
                return
            }
        }
        if let dtype = base.info(name)?.dtype { roundToPrecision(dest, count: range.count, of: dtype) }
    }

    private func load(_ i: Int) throws -> (a: [Float], b: [Float], bias: [Float]?) {
        lock.lock(); defer { lock.unlock() }
        if let f = factors[i] { return f }
        let m = adapter.modules[i]
        let f = (a: try adapter.weights.readAllFloats(m.a), b: try adapter.weights.readAllFloats(m.b),
                 bias: try m.bias.map { try adapter.weights.readAllFloats($0) })
        factors[i] = f
        return f
    }

    /// Adds scale·B·A (Linear) or scale·(B·A)ᵀ (Embedding) to elements `range` of the row-major weight: whole rows with
    /// one sgemm straight into `dest`, a partial first or last row through a one-row scratch.
    private func addDelta(_ m: LoRAAdapter.Module, factors f: (a: [Float], b: [Float], bias: [Float]?), range: Range<Int>,
                          into dest: UnsafeMutablePointer<Float>) throws {
        guard m.rank > 0, !range.isEmpty else { return }
        let shape = base.info(m.weight)!.shape
        let cols = shape[1], r = m.rank
        // Rows [lo, hi) of the delta, into `c` with leading dimension `cols` (beta 1 adds, beta 0 overwrites).
        func rows(_ lo: Int, _ hi: Int, _ c: UnsafeMutablePointer<Float>, beta: Float) {
            f.a.withUnsafeBufferPointer { a in
                f.b.withUnsafeBufferPointer { b in
                    if m.kind == .linear {
                        BLAS.sgemm(transA: false, transB: false, m: hi - lo, n: cols, k: r, alpha: m.scale, a: b.baseAddress! + lo * r,
                                   lda: r, b: a.baseAddress!, ldb: cols, beta: beta, c: c, ldc: cols)
                    } else {
                        BLAS.sgemm(transA: true, transB: true, m: hi - lo, n: cols, k: r, alpha: m.scale, a: a.baseAddress! + lo,
                                   lda: shape[0], b: b.baseAddress!, ldb: r, beta: beta, c: c, ldc: cols)
                    }
                }
            }
        }
        func partial(_ row: Int, _ segment: Range<Int>) {
            var scratch = [Float](repeating: 0, count: cols)
            scratch.withUnsafeMutableBufferPointer { rows(row, row + 1, $0.baseAddress!, beta: 0) }
            for j in segment { dest[j - range.lowerBound] += scratch[j - row * cols] }
        }
        var firstFull = range.lowerBound / cols, endFull = range.upperBound / cols
        if range.lowerBound % cols != 0 {
            let row = range.lowerBound / cols
            partial(row, range.lowerBound..<min(range.upperBound, (row + 1) * cols))
            firstFull = row + 1
        }
        if endFull >= firstFull, range.upperBound % cols != 0, range.upperBound / cols >= firstFull {
            let row = range.upperBound / cols
            partial(row, (row * cols)..<range.upperBound)
        }
        endFull = max(endFull, firstFull)
        if endFull > firstFull { rows(firstFull, endFull, dest + (firstFull * cols - range.lowerBound), beta: 1) }
    }
}
