import Checkpoints
import Foundation
import Numerics

/// One input of a vocabulary-indexed task, served re-indexed to the output vocabulary (`TaskVocabulary`): row j is the
/// input's stored row `rowMap[j]`, else the token's default row, and rows past the tokens are the input's padding row.
/// The merge method reads it like any tensor, block by block; only the default and padding rows are held in memory.
final class AlignedRowSource: TensorSource, @unchecked Sendable {
    let stored: any TensorSource
    let name: String
    let aligned: TensorInfo
    let rowMap: [Int32]
    let defaults: [Int: [Float]]
    private(set) var padding: [Float]?

    var location: String { stored.location }
    var tensorNames: [String] { [name] }
    func info(_ n: String) -> TensorInfo? { n == name ? aligned : nil }
    func file(of n: String) -> String? { stored.file(of: n) }
    func rawBytes(_ n: String) throws -> UnsafeRawBufferPointer? { nil }
    func release(_ n: String) { stored.release(n) }

    private init(stored: any TensorSource, name: String, info: TensorInfo, rows: Int, rowMap: [Int32], defaults: [Int: [Float]]) {
        self.stored = stored
        self.name = name
        self.aligned = TensorInfo(name: name, dtype: info.dtype, shape: [rows] + info.shape.dropFirst(), storage: info.storage)
        self.rowMap = rowMap
        self.defaults = defaults
    }

    func readFloats(_ n: String, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws {
        let width = aligned.rowLength
        var i = range.lowerBound
        while i < range.upperBound {
            let row = i / width, col = i % width
            var take = min(width - col, range.upperBound - i)
            let out = dest + (i - range.lowerBound)
            if row < rowMap.count, rowMap[row] >= 0 {
                // Consecutive rows stored consecutively are read in one call.
                var next = row + 1
                while col == 0, next < rowMap.count, rowMap[next] == rowMap[next - 1] + 1, (next - row) * width < range.upperBound - i {
                    next += 1
                }
                if col == 0 { take = min((next - row) * width, range.upperBound - i) }
                let start = Int(rowMap[row]) * width + col
                try stored.readFloats(name, range: start..<(start + take), into: out)
            } else {
                let values: [Float]? = row < rowMap.count ? defaults[row] : padding
                guard let values else { throw PlanError.tensor(name, "no row for output row \(row)") }
                values.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + col, count: take) }
            }
            i += take
        }
    }

    /// The inputs of `task` as the merge method should see them: re-indexed when the task has a vocabulary alignment.
    static func sources(for task: TensorTask, plan: MergePlan) throws -> [any TensorSource] {
        let plain = task.inputs.map { plan.models[$0.model].source }
        guard let vocabulary = task.vocabulary else { return plain }
        let width = vocabulary.stored[0].rowLength
        func storedRow(_ k: Int, _ row: Int) throws -> [Float] {
            var values = [Float](repeating: 0, count: width)
            try values.withUnsafeMutableBufferPointer { buffer in
                try plain[k].readFloats(task.inputs[k].tensorName, range: (row * width)..<((row + 1) * width), into: buffer.baseAddress!)
                if let c = task.computeDType, c != vocabulary.stored[k].dtype { roundToPrecision(buffer.baseAddress!, count: width, of: c) }
            }
            return values
        }
        var defaults: [Int: [Float]] = [:]
        for d in vocabulary.defaults {
            switch d.fill {
            case .zero:
                defaults[d.id] = [Float](repeating: 0, count: width)
            case let .row(k, row):
                defaults[d.id] = try storedRow(k, row)
            case let .mean(inputs, rows):
                var sum = [Float](repeating: 0, count: width)
                for (k, row) in zip(inputs, rows) {
                    let values = try storedRow(k, row)
                    for c in 0..<width { sum[c] += values[c] }
                }
                defaults[d.id] = sum.map { $0 / Float(inputs.count) }
            }
        }
        return try task.inputs.indices.map { k in
            let source = AlignedRowSource(stored: plain[k], name: task.inputs[k].tensorName, info: vocabulary.stored[k],
                                          rows: vocabulary.rowCount, rowMap: vocabulary.rowMaps[k], defaults: defaults)
            if vocabulary.rowCount > vocabulary.tokenCount {
                source.padding = try source.meanRow(tokens: vocabulary.tokenCount, roundTo: task.computeDType)
            }
            return source
        }
    }

    /// The mean of the aligned token rows (mergekit's padding row), read in blocks.
    private func meanRow(tokens: Int, roundTo compute: DType?) throws -> [Float] {
        let width = aligned.rowLength
        var sum = [Double](repeating: 0, count: width)
        let rowsPerBlock = max(1, (1 << 20) / max(1, width))
        var block = [Float](repeating: 0, count: rowsPerBlock * width)
        var row = 0
        while row < tokens {
            let n = min(rowsPerBlock, tokens - row)
            try block.withUnsafeMutableBufferPointer { b in
                try readFloats(name, range: (row * width)..<((row + n) * width), into: b.baseAddress!)
                if let c = compute, c != aligned.dtype { roundToPrecision(b.baseAddress!, count: n * width, of: c) }
            }
            for r in 0..<n { for c in 0..<width { sum[c] += Double(block[r * width + c]) } }
            row += n
        }
        return sum.map { Float($0 / Double(max(1, tokens))) }
    }
}
