import ArgumentParser
import Foundation
import Host

/// The cache folder and the SmolLM2-135M GGUF of the benchmarks that run the real model.
struct SmolLM2BenchOptions: ParsableArguments {
    @OptionGroup var cache: BenchCache

    @Option(help: "The SmolLM2-135M GGUF (default: CACHE/SmolLM2-135M-Instruct.Q4_1.gguf).")
    var gguf: String?

    /// The cache root and the GGUF's path, checked to exist.
    func resolve() throws -> (root: String, gguf: String) {
        let root = cache.root
        let parent = gguf ?? (root as NSString).appendingPathComponent("SmolLM2-135M-Instruct.Q4_1.gguf")
        guard FileManager.default.fileExists(atPath: parent) else {
            throw CLIFailure("\(parent) is missing: fetch it with scripts/fetch-smollm2.sh or give --gguf")
        }
        return (root, parent)
    }
}

/// `crucible bench evolve`: what one `crucible evolve` candidate costs against `crucible ppl` on the same windows.
struct BenchEvolve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evolve",
        abstract: "Time one `crucible evolve` candidate (merge in memory, then score) against `crucible ppl` on the same windows.",
        discussion: """
        Parents: the SmolLM2-135M-Instruct Q4_1 GGUF and a seeded BF16 fine-tune of it (built once in the cache folder). \
        Runs `crucible evolve` (linear weights, random search, --runs candidates) on two texts, 8 windows of 512 each, and \
        reads each candidate's time from evaluations.jsonl; then merges the default recipe to disk once and times \
        `crucible ppl` on each text over the same 8 windows, --runs times. Prints best-of-N figures and the ratio \
        (target: a candidate ≤ 1.2 × the two ppl runs).
        """)

    @OptionGroup var model: SmolLM2BenchOptions

    @Option(help: "The first text (default: ../shared/data/wikitext-2-raw/wiki.test.raw).")
    var data: String = "../shared/data/wikitext-2-raw/wiki.test.raw"

    @Option(help: "The second text.")
    var data2: String = "/usr/share/common-licenses/GPL-3"

    @Option(help: "Candidates, and ppl runs per text (best of N is reported).")
    var runs: Int = 3

    @Option(help: "Threads for every run (default: all cores).")
    var threads: Int?

    func run() throws {
        let (root, parent) = try model.resolve()
        let fm = FileManager.default
        let texts = [data, data2].map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        for t in texts where !fm.isReadableFile(atPath: t) { throw CLIFailure("\(t): the text cannot be read; give --data / --data2") }
        guard runs >= 1 else { throw CLIFailure("--runs must be at least 1") }
        let dir = (root as NSString).appendingPathComponent("bench-evolve-smollm2")
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let ft = dir + "/ft"
        let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        if !fm.fileExists(atPath: ft + "/model.safetensors") {
            FileHandle.standardError.write(Data("building the fine-tune in \(ft) (once)...\n".utf8))
            let r = try runChild(exe, ["synth", "--finetune-of", parent, "--delta", "0.02", "--seed", "2", "--dtype", "bf16",
                                       "--out", ft], quiet: true)
            if r.status != 0 { throw CLIFailure("building the fine-tune failed (exit \(r.status))") }
        }
        let threadArgs = threads.map { ["--threads", String($0)] } ?? []
        let config = dir + "/evolve.yml"
        try """
            merge_method: linear
            models:
              - model: "\(parent)"
              - model: "\(ft)"
            search:
              parameters:
                weight: {min: 0, max: 1}
            objective:
              context: 512
              held_out: 0.25
              texts:
            \(texts.map { "    - path: \"\($0)\"\n      windows: 8\n" }.joined())optimizer:
              method: random
              budget: \(runs)
              seed: 1
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let out = dir + "/run"
        try? fm.removeItem(atPath: out)
        setvbuf(stdout, nil, _IOLBF, 0)
        print("parents: \(parent) (Q4_1) and \(ft) (BF16 fine-tune); texts: \(texts.joined(separator: ", ")); 8 windows of 512 each; "
              + "\(ProcessInfo.processInfo.activeProcessorCount) cores; best of \(runs)")
        let e = try runChild(exe, ["evolve", config, "--out", out, "--no-final-scores", "--quiet"] + threadArgs, quiet: true)
        if e.status != 0 { throw CLIFailure("crucible evolve \(config) failed (exit \(e.status))") }
        let log = try String(contentsOfFile: out + "/evaluations.jsonl", encoding: .utf8)
        let candidates = log.split(separator: "\n").compactMap { line -> Double? in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return (o["seconds"] as? NSNumber)?.doubleValue
        }
        guard let candidate = candidates.min() else { throw CLIFailure("\(out)/evaluations.jsonl holds no candidate") }
        print(String(format: "evolve candidate (merge in memory + 16 windows): best %.2f s  (all: %@); evolve process peak RSS %@",
                     candidate, candidates.map { String(format: "%.2f", $0) }.joined(separator: " ") as NSString,
                     formatBytes(e.maxRSS) as NSString))

        // The same merge on disk, scored by `crucible ppl` on the same windows of each text.
        let merged = dir + "/merged"
        if !fm.fileExists(atPath: merged + "/model.safetensors") {
            let r = try runChild(exe, ["merge", out + "/best.yml", "--out", merged, "--overwrite", "--quiet"], quiet: true)
            if r.status != 0 { throw CLIFailure("crucible merge \(out)/best.yml failed (exit \(r.status))") }
        }
        var pplTotal = 0.0, evalTotal = 0.0
        for t in texts {
            var walls: [Double] = [], evals: [Double] = []
            for _ in 0..<runs {
                let args = ["ppl", merged, "--data", t, "--ctx", "512", "--chunks", "8", "--json"] + threadArgs
                let (status, stdout, wall) = try Self.capture(exe, args)
                guard status == 0, let o = try? JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any],
                      let seconds = (o["seconds"] as? NSNumber)?.doubleValue else {
                    throw CLIFailure("crucible \(args.joined(separator: " ")) failed (exit \(status))")
                }
                walls.append(wall)
                evals.append(seconds)
            }
            pplTotal += walls.min()!
            evalTotal += evals.min()!
            print(String(format: "ppl %@: best %.2f s wall, %.2f s of it scoring the windows  (walls: %@)",
                         (t as NSString).lastPathComponent as NSString, walls.min()!, evals.min()!,
                         walls.map { String(format: "%.2f", $0) }.joined(separator: " ") as NSString))
        }
        print(String(format: "candidate / (two ppl runs, %.2f s wall) = %.3f   (target ≤ 1.2)", pplTotal, candidate / pplTotal))
        print(String(format: "candidate / (their window scoring alone, %.2f s; no process start, loading or tokenizing) = %.3f",
                     evalTotal, candidate / evalTotal))
    }

    /// Runs a child process, returning its exit status, its standard output and the wall time.
    static func capture(_ exe: String, _ args: [String]) throws -> (Int32, String, Double) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        let start = Date()
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self), Date().timeIntervalSince(start))
    }
}
