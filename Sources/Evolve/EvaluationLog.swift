import Checkpoints
import Foundation
import Numerics
import Recipes

/// One evaluated candidate: a line of `evaluations.jsonl`.
public struct EvaluationRecord: Sendable, Equatable {
    public let index: Int
    public let generation: Int
    /// The point in the search box, one coordinate in [0, 1] per dimension.
    public let x: [Double]
    /// Each dimension's label and parameter value.
    public let parameters: [(label: String, value: Double)]
    /// The fitness (lower is better), nil when the candidate failed.
    public let fitness: Double?
    public let scores: [TextValue]
    public let seconds: Double
    public let error: String?
    /// Identifies the config and seed the record was made with (`--resume` refuses another's log).
    public let runKey: String

    public static func == (a: EvaluationRecord, b: EvaluationRecord) -> Bool {
        a.index == b.index && a.x == b.x && a.fitness == b.fitness && a.runKey == b.runKey
    }

    /// The JSON line (no line break).
    public var json: String {
        func num(_ v: Double?) -> String { v.map { $0.isFinite ? "\($0)" : "null" } ?? "null" }
        func str(_ s: String) -> String { JSONValue.quote(s) }
        var fields = [
            "\"index\": \(index)", "\"generation\": \(generation)", "\"run\": \(str(runKey))",
            "\"fitness\": \(num(fitness))", "\"seconds\": \(num(seconds))",
            "\"x\": [" + x.map { num($0) }.joined(separator: ", ") + "]",
            "\"parameters\": {" + parameters.map { "\(str($0.label)): \(num($0.value))" }.joined(separator: ", ") + "}",
            "\"scores\": [" + scores.map { s in
                "{\"text\": \(str(s.text)), \"metric\": \(str(s.metric.rawValue)), \"value\": \(num(s.value)), "
                    + "\"ppl\": \(num(s.perplexity)), \"bits_per_byte\": \(num(s.bitsPerByte)), \"kl_divergence\": \(num(s.klDivergence)), "
                    + "\"tokens\": \(s.tokensScored)}"
            }.joined(separator: ", ") + "]",
        ]
        if let error { fields.append("\"error\": \(str(error))") }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    /// Reads a line written by `json` (numbers read back exactly, by the repository's JSON reader).
    public init(jsonLine line: String, dimensionLabels: [String]) throws {
        let value: JSONValue
        do { value = try JSONValue.parse(Data(line.utf8)) } catch { throw EvolveError.resume("not JSON: \(error)") }
        guard let o = value.objectValue, let index = o["index"]?.intValue, let generation = o["generation"]?.intValue,
              let run = o["run"]?.stringValue, let xs = o["x"]?.arrayValue else {
            throw EvolveError.resume("missing index, generation, run or x")
        }
        let x = xs.compactMap(\.doubleValue)
        guard x.count == xs.count, x.count == dimensionLabels.count else {
            throw EvolveError.resume("x has \(xs.count) coordinates, the search space \(dimensionLabels.count)")
        }
        let params = o["parameters"]?.objectValue
        var scores: [TextValue] = []
        for s in o["scores"]?.arrayValue ?? [] {
            guard let text = s["text"]?.stringValue, let metric = s["metric"]?.stringValue.flatMap(EvolveMetric.init(rawValue:)) else {
                throw EvolveError.resume("a score without text or metric")
            }
            scores.append(TextValue(text: text, metric: metric, value: s["value"]?.doubleValue ?? .nan,
                                    perplexity: s["ppl"]?.doubleValue ?? .nan, bitsPerByte: s["bits_per_byte"]?.doubleValue ?? .nan,
                                    klDivergence: s["kl_divergence"]?.doubleValue, tokensScored: s["tokens"]?.intValue ?? 0))
        }
        self.init(index: index, generation: generation, x: x,
                  parameters: dimensionLabels.map { ($0, params?[$0]?.doubleValue ?? .nan) }, fitness: o["fitness"]?.doubleValue,
                  scores: scores, seconds: o["seconds"]?.doubleValue ?? 0, error: o["error"]?.stringValue, runKey: run)
    }

    public init(index: Int, generation: Int, x: [Double], parameters: [(label: String, value: Double)], fitness: Double?,
                scores: [TextValue], seconds: Double, error: String?, runKey: String) {
        self.index = index
        self.generation = generation
        self.x = x
        self.parameters = parameters
        self.fitness = fitness
        self.scores = scores
        self.seconds = seconds
        self.error = error
        self.runKey = runKey
    }
}

/// `evaluations.jsonl`: one record per line, appended and flushed as each candidate finishes, so an interrupted run
/// loses at most the candidate in progress.
public final class EvaluationLog {
    public let path: String
    private let handle: FileHandle

    /// Opens `path` for appending (created when absent). An unfinished last line (a run killed mid-write) is cut off.
    public init(path: String, keepingBytes: Int? = nil) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw EvolveError.output("\(path): cannot create the evaluations log")
            }
        }
        guard let h = FileHandle(forUpdatingAtPath: path) else { throw EvolveError.output("\(path): cannot open the evaluations log") }
        handle = h
        if let keepingBytes { try handle.truncate(atOffset: UInt64(keepingBytes)) }
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    public func append(_ record: EvaluationRecord) throws {
        handle.write(Data((record.json + "\n").utf8))
        try handle.synchronize()
    }

    /// The complete records of an existing log, in order, and the byte length they span (a partial last line is
    /// not counted). A malformed complete line is an error naming its line number.
    public static func read(path: String, dimensionLabels: [String]) throws -> (records: [EvaluationRecord], bytes: Int) {
        guard let data = FileManager.default.contents(atPath: path) else { return ([], 0) }
        var records: [EvaluationRecord] = []
        var offset = 0
        var lineNumber = 0
        let bytes = [UInt8](data)
        while let end = bytes[offset...].firstIndex(of: 0x0A) {
            lineNumber += 1
            let line = String(decoding: bytes[offset..<end], as: UTF8.self)
            do {
                records.append(try EvaluationRecord(jsonLine: line, dimensionLabels: dimensionLabels))
            } catch {
                throw EvolveError.resume("\(path):\(lineNumber): cannot resume from this line: \(error)")
            }
            offset = end + 1
        }
        return (records, offset)
    }
}

/// The key written into every record: the config's text and the seed (a resumed run must match both).
func runKey(configText: String, seed: UInt64, optimizer: String) -> String {
    String(stableHash("\(configText)\u{0}\(seed)\u{0}\(optimizer)"), radix: 16)
}
