import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a campaign found: counts per format and outcome, and every defect case.
public struct FuzzSummary: Sendable, Codable {
    public var seed: UInt64
    public var cases = 0
    public var seconds = 0.0
    /// format → outcome → count.
    public var counts: [String: [String: Int]] = [:]
    public var defects: [FuzzCaseResult] = []

    public init(seed: UInt64) { self.seed = seed }

    public mutating func add(_ r: FuzzCaseResult) {
        cases += 1
        counts[r.format.rawValue, default: [:]][r.outcome.rawValue, default: 0] += 1
        if r.outcome.isDefect, defects.count < 1000 { defects.append(r) }
    }

    public func count(_ outcome: FuzzOutcome, format: FuzzFormat? = nil) -> Int {
        if let format { return counts[format.rawValue]?[outcome.rawValue] ?? 0 }
        return counts.values.reduce(0) { $0 + ($1[outcome.rawValue] ?? 0) }
    }

    public var defectCount: Int { FuzzOutcome.allCases.filter(\.isDefect).reduce(0) { $0 + count($1) } }

    /// A table: one row per format, one column per outcome.
    public var table: String {
        let outcomes = FuzzOutcome.allCases
        var lines = ["seed \(seed), \(cases) cases in \(String(format: "%.1f", seconds)) s"]
        let header = ["format".padding(toLength: 12, withPad: " ", startingAt: 0)]
            + outcomes.map { $0.rawValue.padding(toLength: 19, withPad: " ", startingAt: 0) }
        lines.append(header.joined())
        for f in FuzzFormat.allCases where counts[f.rawValue] != nil {
            lines.append(([f.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)]
                + outcomes.map { String(count($0, format: f)).padding(toLength: 19, withPad: " ", startingAt: 0) }).joined())
        }
        lines.append((["total".padding(toLength: 12, withPad: " ", startingAt: 0)]
            + outcomes.map { String(count($0)).padding(toLength: 19, withPad: " ", startingAt: 0) }).joined())
        for d in defects.prefix(20) {
            lines.append("\(d.outcome.rawValue): case \(d.index) (\(d.format.rawValue)): \(d.mutation) => \(d.detail)")
        }
        return lines.joined(separator: "\n")
    }
}

/// Runs fuzz cases: in this process (fast; a crash or hang stops the run), or in a worker child process that the
/// campaign watches: a worker that dies mid-case is a crash, one silent past the time limit a hang, one whose
/// resident memory passes the limit a memory blow-up; the campaign then starts a new worker after that case.
///
/// Reproduce case N of seed S with `crucible fuzz --seed S --case N --keep DIR` (its files stay in DIR).
public enum FuzzCampaign {
    public struct Options {
        public var seed: UInt64
        public var cases: Int
        public var first = 0
        public var formats = FuzzFormat.allCases
        /// The `crucible` executable to run workers with; nil runs every case in this process.
        public var executable: String?
        public var timeLimit: Double = 20
        public var memoryLimit = 4 << 30
        /// Folder for the corpus, case files, `log.txt` and `summary.json`.
        public var work: String
        public var progress: ((FuzzSummary) -> Void)?

        public init(seed: UInt64, cases: Int, work: String) {
            self.seed = seed
            self.cases = cases
            self.work = work
        }
    }

    public static func run(_ o: Options) throws -> FuzzSummary {
        try FileManager.default.createDirectory(atPath: o.work, withIntermediateDirectories: true)
        let log = Log(path: (o.work as NSString).appendingPathComponent("log.txt"))
        log.write("seed \(o.seed), cases \(o.first)..<\(o.first + o.cases), formats \(o.formats.map(\.rawValue).joined(separator: ",")), "
            + (o.executable.map { "workers: \($0)" } ?? "in process"))
        var summary = FuzzSummary(seed: o.seed)
        let start = Date()
        func record(_ r: FuzzCaseResult) {
            summary.add(r)
            if r.outcome.isDefect { log.write("\(r.outcome.rawValue) case \(r.index) \(r.format.rawValue): \(r.mutation) => \(r.detail)") }
            if summary.cases % 1000 == 0 {
                summary.seconds = Date().timeIntervalSince(start)
                log.write("progress \(summary.cases) cases, \(summary.defectCount) defects, \(String(format: "%.0f", summary.seconds)) s")
                o.progress?(summary)
            }
        }
        if let exe = o.executable {
            try runInWorkers(o, executable: exe, record: record)
        } else {
            let bench = try FuzzWorkbench(work: o.work, seed: o.seed, formats: o.formats)
            for i in o.first..<(o.first + o.cases) { record(bench.run(i)) }
        }
        summary.seconds = Date().timeIntervalSince(start)
        log.write(summary.table)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try? encoder.encode(summary).write(to: URL(fileURLWithPath: (o.work as NSString).appendingPathComponent("summary.json")))
        return summary
    }

    /// The worker side: runs cases `range` in this process, printing `B i` before and a JSON result after each.
    public static func worker(seed: UInt64, range: Range<Int>, formats: [FuzzFormat], work: String) throws {
        let bench = try FuzzWorkbench(work: work, seed: seed, formats: formats)
        let encoder = JSONEncoder()
        setvbuf(stdout, nil, _IOLBF, 0)
        for i in range {
            print("B \(i)")
            fflush(stdout)
            let r = bench.run(i) { mutation in
                print("M " + mutation.replacingOccurrences(of: "\n", with: " "))
                fflush(stdout)
            }
            let line = (try? encoder.encode(r)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            print("E \(line)")
            fflush(stdout)
        }
    }

    // MARK: Supervision

    private static func runInWorkers(_ o: Options, executable: String, record: (FuzzCaseResult) -> Void) throws {
        var next = o.first
        let end = o.first + o.cases
        let decoder = JSONDecoder()
        while next < end {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = ["fuzz", "--worker", "--seed", String(o.seed), "--first", String(next), "--cases", String(end - next),
                           "--formats", o.formats.map(\.rawValue).joined(separator: ","), "--work", o.work]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            let lines = LineQueue()
            let reader = out.fileHandleForReading
            try p.run()
            Thread.detachNewThread {
                var buffer = Data()
                while true {
                    let chunk = reader.availableData
                    if chunk.isEmpty { lines.close(); return }
                    buffer.append(chunk)
                    while let nl = buffer.firstIndex(of: 0x0A) {
                        lines.push(String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self))
                        buffer.removeSubrange(buffer.startIndex...nl)
                    }
                }
            }
            var current: Int? = nil
            var currentMutation = ""
            var caseStart = Date()
            var stopped: FuzzOutcome? = nil
            while true {
                let line = lines.pop(timeout: 0.2)
                if let line {
                    if line.hasPrefix("B "), let i = Int(line.dropFirst(2)) {
                        current = i
                        currentMutation = ""
                        caseStart = Date()
                    } else if line.hasPrefix("M ") {
                        currentMutation = String(line.dropFirst(2))
                    } else if line.hasPrefix("E "), let r = try? decoder.decode(FuzzCaseResult.self, from: Data(line.dropFirst(2).utf8)) {
                        record(r)
                        next = r.index + 1
                        current = nil
                    }
                    continue
                }
                if lines.isClosed { break }
                if current != nil, Date().timeIntervalSince(caseStart) > o.timeLimit { stopped = .hang }
                if let rss = residentBytes(of: p.processIdentifier), rss > o.memoryLimit { stopped = .memory }
                if stopped != nil {
                    kill(p.processIdentifier, SIGKILL)
                    break
                }
            }
            p.waitUntilExit()
            if let i = current {
                let how: FuzzOutcome = stopped ?? .crash
                let status = p.terminationReason == .uncaughtSignal ? "signal \(p.terminationStatus)" : "exit status \(p.terminationStatus)"
                let detail = how == .crash ? "the worker died (\(status))"
                    : how == .hang ? "no result after \(o.timeLimit) s" : "resident memory passed \(o.memoryLimit) bytes"
                let reproduce = "reproduce: crucible fuzz --seed \(o.seed) --case \(i) "
                    + "--formats \(o.formats.map(\.rawValue).joined(separator: ",")) --keep DIR"
                record(FuzzCaseResult(index: i, format: o.formats[i % o.formats.count],
                                      mutation: currentMutation.isEmpty ? "(died while preparing the case)" : currentMutation,
                                      certainlyInvalid: false, outcome: how, detail: detail + "; " + reproduce))
                next = i + 1
            } else if stopped == nil && next < end && p.terminationStatus != 0 {
                throw FuzzError("the fuzz worker failed before running a case (exit status \(p.terminationStatus))")
            }
        }
    }

    /// VmRSS of a process, from /proc.
    static func residentBytes(of pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kb * 1024
    }

    final class LineQueue: @unchecked Sendable {
        private let condition = NSCondition()
        private var lines: [String] = []
        private var closed = false

        func push(_ s: String) { condition.lock(); lines.append(s); condition.signal(); condition.unlock() }
        func close() { condition.lock(); closed = true; condition.broadcast(); condition.unlock() }
        var isClosed: Bool { condition.lock(); defer { condition.unlock() }; return closed && lines.isEmpty }

        func pop(timeout: Double) -> String? {
            condition.lock(); defer { condition.unlock() }
            let deadline = Date().addingTimeInterval(timeout)
            while lines.isEmpty && !closed {
                if !condition.wait(until: deadline) { break }
            }
            return lines.isEmpty ? nil : lines.removeFirst()
        }
    }

    final class Log: @unchecked Sendable {
        let path: String
        init(path: String) {
            self.path = path
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        func write(_ line: String) {
            guard let h = FileHandle(forWritingAtPath: path) else { return }
            h.seekToEndOfFile()
            h.write(Data((ISO8601DateFormatter().string(from: Date()) + " " + line + "\n").utf8))
            try? h.close()
        }
    }
}
