import Checkpoints
import Foundation
import TestSupport
import XCTest

/// The fixture sentence every `forward/<name>.safetensors` golden scores (`text.input_ids`, 39 tokens with BOS).
let keeperText = "The keeper climbed the ninety-two steps at 7:45 pm, and the light burned until dawn."

/// Writes the fixture sentence as an evaluation file (with the trailing newline the protocol drops).
func writeKeeperText(in folder: URL) throws -> String {
    let path = folder.appendingPathComponent("keeper.txt").path
    try (keeperText + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// `forward/<name>.safetensors`: the fixture sentence's ids and transformers' float32 logits for it.
struct GoldenLogits {
    let ids: [Int]
    /// `[T, vocab]` row-major, as float32 in the file; kept in Double for the test's own arithmetic.
    let logits: [Double]
    let vocab: Int

    init(_ name: String) throws {
        let file = try SafetensorsFile(path: Fixtures.fixture("forward/\(name).safetensors"))
        let idInfo = try file.require("text.input_ids")
        guard let raw = try file.rawBytes("text.input_ids") else { throw CheckpointError.missingTensor(tensor: "text.input_ids", checkpoint: name) }
        ids = (0..<idInfo.elementCount).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        let info = try file.require("text.logits")
        vocab = info.shape[2]
        logits = try file.readAllFloats("text.logits").map(Double.init)
    }

    func row(_ position: Int) -> ArraySlice<Double> { logits[(position * vocab)..<((position + 1) * vocab)] }

    /// log-softmax of row `position`, in Double.
    func logSoftmax(_ position: Int) -> [Double] {
        let r = row(position)
        let m = r.max()!
        let lse = log(r.reduce(0) { $0 + exp($1 - m) }) + m
        return r.map { $0 - lse }
    }
}

/// Reads a value from parsed JSON by a slash path (`texts/0/models/1/ppl`).
func jsonValue(_ root: JSONValue, _ path: String) -> JSONValue? {
    var node: JSONValue? = root
    for part in path.split(separator: "/") {
        if let i = Int(part), let array = node?.arrayValue {
            node = i < array.count ? array[i] : nil
        } else {
            node = node?[String(part)]
        }
    }
    return node
}

/// Mean and llama.cpp's σ of the mean, sqrt((Σx²/N − mean²)/(N − 1)), computed directly.
func meanAndError(_ xs: [Double]) -> (mean: Double, error: Double) {
    let n = Double(xs.count)
    let mean = xs.reduce(0, +) / n
    let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
    return (mean, (variance / (n - 1)).squareRoot())
}

/// Percentile by linear interpolation at `fraction · (N − 1)` of the sorted values.
func percentileOf(_ xs: [Double], _ fraction: Double) -> Double {
    let s = xs.sorted()
    let x = fraction * Double(s.count - 1)
    let i = Int(x)
    return i + 1 < s.count ? s[i] + (s[i + 1] - s[i]) * (x - Double(i)) : s[i]
}
