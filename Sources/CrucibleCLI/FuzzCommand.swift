import ArgumentParser
import Foundation
import Fuzz

/// `crucible fuzz`: mutate recipes, safetensors headers and indexes, GGUF headers and metadata, tokenizer.json and
/// config.json from a seed, drive the real entry points on each, and classify every case.
struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Fuzz Crucible's readers and entry points with mutated inputs (see docs/reliability.md).",
        discussion: "Cases run in a worker process that is watched: a worker that dies mid-case is a crash, "
            + "one silent past --time-limit a hang, one past --memory-limit a memory blow-up. "
            + "Exits non-zero when any case is a defect (crash, hang, memory blow-up, success on invalid input).")

    @Option(help: "Seed of the campaign; the same seed gives the same cases.")
    var seed: UInt64 = 1

    @Option(help: "Number of cases.")
    var cases: Int = 2000

    @Option(help: "Index of the first case.")
    var first: Int = 0

    @Option(help: "Formats to mutate, comma-separated: recipe, safetensors, gguf, tokenizer, config (default: all five, in turn).")
    var formats: String = FuzzFormat.allCases.map(\.rawValue).joined(separator: ",")

    @Option(help: "Seconds one case may take before it counts as a hang.")
    var timeLimit: Double = 20

    @Option(help: "Resident memory a worker may reach before the case counts as a memory blow-up.")
    var memoryLimit = ByteSize(4 << 30)

    @Option(help: "Folder for the corpus, case files, log.txt and summary.json (default: a new temporary folder).")
    var work: String?

    @Flag(help: "Run every case in this process (faster; a crash or hang then stops the campaign).")
    var inProcess = false

    @Option(name: .customLong("case"), help: "Run only this case, in this process, and print what it did.")
    var single: Int?

    @Option(help: "With --case: leave the case's files in this folder.")
    var keep: String?

    @Flag(help: "Print the summary as JSON.")
    var json = false

    @Flag(help: .hidden)
    var worker = false

    func run() throws {
        let list = try formats.split(separator: ",").map { name -> FuzzFormat in
            guard let f = FuzzFormat(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown format '\(name)'; "
                    + "choose from \(FuzzFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return f
        }
        guard !list.isEmpty, cases >= 0, first >= 0 else { throw ValidationError("--formats, --cases and --first must name some cases") }
        let folder = work ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("crucible-fuzz-\(getpid())")
        if worker {
            try FuzzCampaign.worker(seed: seed, range: first..<(first + cases), formats: list, work: folder)
            return
        }
        if let single {
            let bench = try FuzzWorkbench(work: folder, seed: seed, formats: list)
            let r = bench.run(single, keep: keep)
            print("case \(r.index) (\(r.format.rawValue)): \(r.mutation)")
            print("\(r.outcome.rawValue)\(r.certainlyInvalid ? " (input certainly invalid)" : ""): \(r.detail)")
            if let keep { print("files: \(keep)") }
            if r.outcome.isDefect { throw ExitCode.failure }
            return
        }
        var options = FuzzCampaign.Options(seed: seed, cases: cases, work: folder)
        options.first = first
        options.formats = list
        options.timeLimit = timeLimit
        options.memoryLimit = memoryLimit.bytes
        options.executable = inProcess ? nil : Self.executablePath
        options.progress = { s in
            FileHandle.standardError.write(Data(("fuzz: \(s.cases) cases, \(s.defectCount) defects, "
                + "\(String(format: "%.0f", s.seconds)) s\n").utf8))
        }
        let summary = try FuzzCampaign.run(options)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        } else {
            print(summary.table)
            print("log: \(folder)/log.txt")
        }
        if work == nil { try? FileManager.default.removeItem(atPath: folder + "/corpus") }
        if summary.defectCount > 0 { throw ExitCode.failure }
    }

    /// This executable, to start workers with.
    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
