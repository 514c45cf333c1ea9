import Foundation
import Numerics

/// The one policy for NaN and infinite values, enforced by the executor for every merge method alike.
///
/// Every input of every tensor is scanned as it is read (each element exactly once, whatever passes the method makes);
/// a tensor copied unchanged is scanned in its stored bytes. Without `ExecutionOptions.allowNonFinite`, a tensor whose
/// inputs hold any non-finite value fails the merge with, per input, the count and the first position; so does a
/// tensor whose output holds non-finite values the method produced from finite inputs (an overflow). With the flag the
/// merge goes on and each such tensor gets a warning with the same figures. An output never carries NaN silently.
public enum NonFinitePolicy {
    /// The command-line flag that accepts non-finite values.
    public static let flag = "--allow-non-finite"

    /// Non-finite values found in one input of one tensor.
    public struct Finding: Sendable, Equatable {
        public let input: String
        public let count: Int
        /// Row-major index of the first one, in the tensor's (output) shape.
        public let first: [Int]
    }

    /// Checks one tensor's findings against the policy: the warnings to add, or an error message.
    static func judge(tensor: String, method: String, inputs: [Finding], outputCount: Int, outputFirst: [Int]?,
                      allow: Bool) -> Result<[String], PlanError> {
        let described = inputs.map { "\($0.input) holds \($0.count) NaN/infinite value\($0.count == 1 ? "" : "s") (first at \($0.first))" }
        if !inputs.isEmpty {
            if !allow {
                return .failure(.tensor(tensor, "non-finite input values: " + described.joined(separator: "; ")
                    + ". Fix the parent or pass \(flag) to merge anyway (the output's non-finite values are then reported)"))
            }
            return .success(["non-finite input values (accepted by \(flag)): " + described.joined(separator: "; ")
                + "; the output holds \(outputCount)" + (outputFirst.map { " (first at \($0))" } ?? "")])
        }
        if outputCount > 0 {
            let what = "the \(method) method produced \(outputCount) NaN/infinite value\(outputCount == 1 ? "" : "s") from finite inputs"
                + (outputFirst.map { " (first at \($0))" } ?? "")
            if !allow { return .failure(.tensor(tensor, what + "; pass \(flag) to write them anyway")) }
            return .success([what + " (accepted by \(flag))"])
        }
        return .success([])
    }

    /// The multi-dimensional index of flat element `i` in `shape` (row-major).
    static func position(_ i: Int, shape: [Int]) -> [Int] {
        guard !shape.isEmpty else { return [i] }
        var rest = i
        var out = [Int](repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            let n = max(shape[d], 1)
            out[d] = rest % n
            rest /= n
        }
        return out
    }

    /// Non-finite values among `count` stored values of `dtype` (integer dtypes have none): count and first index.
    public static func scan(bytes: UnsafeRawBufferPointer, dtype: DType) -> (count: Int, first: Int?) {
        guard let base = bytes.baseAddress else { return (0, nil) }
        var count = 0
        var first: Int? = nil
        func note(_ i: Int) { count += 1; if first == nil { first = i } }
        switch dtype {
        case .f32:
            let n = bytes.count / 4
            for i in 0..<n where base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self) & 0x7F80_0000 == 0x7F80_0000 { note(i) }
        case .f16:
            let n = bytes.count / 2
            for i in 0..<n where base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self) & 0x7C00 == 0x7C00 { note(i) }
        case .bf16:
            let n = bytes.count / 2
            for i in 0..<n where base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self) & 0x7F80 == 0x7F80 { note(i) }
        case .f64:
            let n = bytes.count / 8
            for i in 0..<n
            where base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self) & 0x7FF0_0000_0000_0000 == 0x7FF0_0000_0000_0000 {
                note(i)
            }
        default:
            break
        }
        return (count, first)
    }

    /// Non-finite values among `count` floats: count and first index.
    static func scan(_ values: UnsafePointer<Float>, count: Int) -> (count: Int, first: Int?) {
        var bad = 0
        for i in 0..<count where !values[i].isFinite { bad += 1 }
        guard bad > 0 else { return (0, nil) }
        var i = 0
        while values[i].isFinite { i += 1 }
        return (bad, i)
    }
}

/// Per-input tallies of one task's non-finite values, fed by every read. Each input's elements are counted once:
/// `scanned[k]` marks how far input k has been counted, and only the part of a read beyond it is counted.
final class NonFiniteTally: @unchecked Sendable {
    private let lock = NSLock()
    private var scanned: [Int]
    private(set) var counts: [Int]
    private(set) var first: [Int?]
    let total: Int

    init(inputs: Int, total: Int) {
        scanned = [Int](repeating: 0, count: inputs)
        counts = [Int](repeating: 0, count: inputs)
        first = [Int?](repeating: nil, count: inputs)
        self.total = total
    }

    /// Counts what `values` (elements `range` of input `k`) add beyond what was counted before.
    func note(_ k: Int, range: Range<Int>, values: UnsafePointer<Float>) {
        // Claim the uncounted part under the lock, scan it outside (reads of several inputs run in parallel).
        lock.lock()
        let mark = scanned[k]
        guard range.lowerBound <= mark, range.upperBound > mark else { lock.unlock(); return }
        scanned[k] = range.upperBound
        lock.unlock()
        let (bad, at) = NonFinitePolicy.scan(values + (mark - range.lowerBound), count: range.upperBound - mark)
        guard bad > 0 else { return }
        lock.lock()
        counts[k] += bad
        first[k] = min(first[k] ?? .max, mark + at!)
        lock.unlock()
    }

    /// Reads and counts whatever part of each input no read has covered yet.
    func complete(block: Int, read: (Int, Range<Int>, UnsafeMutablePointer<Float>) throws -> Void) throws {
        let size = max(1, min(block, total))
        var buffer: [Float] = []
        for k in scanned.indices {
            while true {
                lock.lock(); let mark = scanned[k]; lock.unlock()
                if mark >= total { break }
                if buffer.isEmpty { buffer = [Float](repeating: 0, count: size) }
                let range = mark..<min(total, mark + size)
                try buffer.withUnsafeMutableBufferPointer { b in
                    try read(k, range, b.baseAddress!)
                    note(k, range: range, values: b.baseAddress!)
                }
            }
        }
    }
}
