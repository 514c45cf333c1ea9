import Checkpoints
import Foundation
import TestSupport
import XCTest

/// One `forward/<name>.safetensors` + `.json` pair of reference outputs (transformers, float32).
struct ForwardGolden {
    let name: String
    /// The fixture set: "" (the parent set) or "archs/".
    let set: String
    let tensors: SafetensorsFile
    let summary: JSONValue

    init(_ name: String, set: String = "") throws {
        self.name = name
        self.set = set
        tensors = try SafetensorsFile(path: Fixtures.fixture("\(set)forward/\(name).safetensors"))
        summary = try JSONValue.parse(file: Fixtures.fixture("\(set)forward/\(name).json"))
    }

    /// Rows of an int64 `[batch, T]` id tensor.
    func ids(_ tensor: String) throws -> [[Int]] {
        let info = try tensors.require(tensor)
        guard let raw = try tensors.rawBytes(tensor) else { throw CheckpointError.missingTensor(tensor: tensor, checkpoint: name) }
        let flat = (0..<info.elementCount).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        let width = info.shape[1]
        return (0..<info.shape[0]).map { Array(flat[($0 * width)..<(($0 + 1) * width)]) }
    }

    func floats(_ tensor: String) throws -> [Float] { try tensors.readAllFloats(tensor) }

    /// The checkpoint folder the golden was computed from.
    var checkpoint: String {
        if name.hasPrefix("merge.") { return Fixtures.fixture("\(set)merges/\(name.dropFirst(6))/output") }
        if name.hasPrefix("moe.") { return Fixtures.fixture("\(set)moe/\(name.dropFirst(4))/output") }
        return Fixtures.fixture("\(set)models/\(name)")
    }

    /// Every golden name of a kind (`merge.`, `moe.` or plain model names) present in `forward/`.
    static func names(prefix: String?, set: String = "") throws -> [String] {
        let files = try FileManager.default.contentsOfDirectory(atPath: Fixtures.fixture("\(set)forward"))
        let names = files.filter { $0.hasSuffix(".safetensors") }.map { String($0.dropLast(".safetensors".count)) }
        if let prefix { return names.filter { $0.hasPrefix(prefix) }.sorted() }
        return names.filter { !$0.hasPrefix("merge.") && !$0.hasPrefix("moe.") }.sorted()
    }
}

/// -log softmax(row)[target] in double.
func negativeLogLikelihood<C: Collection>(_ row: C, target: Int) -> Double where C.Element == Float, C.Index == Int {
    let m = Double(row.max()!)
    var sum = 0.0
    for v in row { sum += Foundation.exp(Double(v) - m) }
    return Foundation.log(sum) + m - Double(row[row.startIndex + target])
}

func maxAbsDiff(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
    var m: Float = 0
    for (x, y) in zip(a, b) { m = max(m, abs(x - y)) }
    return m
}
