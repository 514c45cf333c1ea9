import Checkpoints
import Foundation
import TestSupport
import XCTest

/// Helpers for the inspect and compare tests: independent reference sums, modified copies of fixtures.
enum CompareReference {
    /// Sums of one tensor pair (or triple) computed directly in Double from whole tensors.
    struct Sums {
        var dot = 0.0, aa = 0.0, bb = 0.0, dd = 0.0, cc = 0.0
        var bothNonZero = 0, same = 0

        mutating func add(_ a: [Float], _ b: [Float], base: [Float]?) {
            precondition(a.count == b.count)
            for i in 0..<a.count {
                var x = Double(a[i]), y = Double(b[i])
                if let base {
                    let c = Double(base[i])
                    x -= c
                    y -= c
                    cc += c * c
                }
                dot += x * y
                aa += x * x
                bb += y * y
                dd += (x - y) * (x - y)
                if x != 0 && y != 0 {
                    bothNonZero += 1
                    if (x > 0) == (y > 0) { same += 1 }
                }
            }
        }

        var cosine: Double { dot / (aa.squareRoot() * bb.squareRoot()) }
        var distance: Double { dd.squareRoot() / aa.squareRoot() }
        var agreement: Double { Double(same) / Double(bothNonZero) }
        var sizeA: Double { aa.squareRoot() / cc.squareRoot() }
        var sizeB: Double { bb.squareRoot() / cc.squareRoot() }
    }

    /// Writes a float32 copy of the checkpoint folder `source` into `destination` (config and tokenizer files
    /// copied), letting `change` replace any tensor's shape and values.
    static func writeCopy(of source: String, to destination: URL,
                          change: (String, [Int], [Float]) -> (shape: [Int], values: [Float])? = { _, _, _ in nil }) throws {
        let folder = try CheckpointFolder(path: source)
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
        for file in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
            let from = (source as NSString).appendingPathComponent(file)
            if FileManager.default.fileExists(atPath: from) {
                try FileManager.default.copyItem(atPath: from, toPath: destination.appendingPathComponent(file).path)
            }
        }
        var tensors: [(String, [Int], [Float])] = []
        for name in folder.tensorNames {
            let info = folder.info(name)!
            let values = try folder.readAllFloats(name)
            let changed = change(name, info.shape, values)
            tensors.append((name, changed?.shape ?? info.shape, changed?.values ?? values))
        }
        let writer = try SafetensorsWriter(path: destination.appendingPathComponent("model.safetensors").path,
                                           entries: tensors.map { .init(name: $0.0, dtype: .f32, shape: $0.1) })
        for (name, _, values) in tensors {
            try values.withUnsafeBytes { try writer.write(name, bytes: $0) }
        }
        try writer.finish()
    }

    /// Parameter count and tensor count of a safetensors file, read straight from its JSON header.
    static func safetensorsHeaderCounts(_ path: String) throws -> (parameters: Int, tensors: Int) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var length = 0
        for i in 0..<8 { length |= Int(data[i]) << (8 * i) }
        let header = try JSONSerialization.jsonObject(with: data[8..<(8 + length)]) as! [String: Any]
        var parameters = 0, tensors = 0
        for (name, value) in header where name != "__metadata__" {
            let shape = (value as! [String: Any])["shape"] as! [Int]
            parameters += shape.reduce(1, *)
            tensors += 1
        }
        return (parameters, tensors)
    }
}
