import Architectures
import ArgumentParser
import Foundation
import Planner
import Tensors
#if canImport(Glibc)
import Glibc
#endif

/// `crucible bench`: whole-process benchmarks with wall time, throughput and peak RSS.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks, each run as a whole child process (wall time, GB/s, peak RSS).",
        subcommands: [BenchMerge.self, BenchMoE.self])
}

struct BenchMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge SmolLM2-135M-shaped BF16 parents (made once by `crucible synth`, cached) with linear, SLERP, TIES and DARE-TIES.")

    @Option(help: "Where the parents are cached (default $CRUCIBLE_CACHE or ~/.cache/crucible).")
    var cache: String?

    @Option(help: "Comma-separated cases to run: linear, slerp, ties, dare_ties.")
    var cases: String = "linear,slerp,ties,dare_ties"

    @Option(help: "Runs per case (the best is reported; all are printed).")
    var runs: Int = 3

    @Option(help: "Preset of the parents (smollm2-135m or tiny).")
    var preset: String = "smollm2-135m"

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        let root = cache ?? env["CRUCIBLE_CACHE"] ?? (FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/crucible")
        let dir = (root as NSString).appendingPathComponent("bench-\(preset)-bf16")
        let base = dir + "/base", ft1 = dir + "/ft1", ft2 = dir + "/ft2"
        let fm = FileManager.default
        if !fm.fileExists(atPath: ft2 + "/model.safetensors") {
            FileHandle.standardError.write(Data("building parents in \(dir) (once)...\n".utf8))
            try SyntheticCheckpoint.write(arch: "llama", preset: preset, seed: 1, dtype: .bf16, to: base)
            try SyntheticCheckpoint.writeFineTune(of: base, delta: 0.02, seed: 2, dtype: .bf16, to: ft1)
            try SyntheticCheckpoint.writeFineTune(of: base, delta: 0.02, seed: 3, dtype: .bf16, to: ft2)
        }
        /// Base plus two fine-tunes at density 0.5, weight 0.5 each (the benchmark setting).
        func taskVectorRecipe(_ method: String) -> String {
            """
            merge_method: \(method)
            base_model: \(base)
            models:
              - model: \(base)
              - model: \(ft1)
                parameters: {density: 0.5, weight: 0.5}
              - model: \(ft2)
                parameters: {density: 0.5, weight: 0.5}
            dtype: bfloat16
            """
        }
        let recipes: [String: String] = [
            "linear": """
                merge_method: linear
                models:
                  - model: \(ft1)
                    parameters: {weight: 0.5}
                  - model: \(ft2)
                    parameters: {weight: 0.5}
                dtype: bfloat16
                """,
            "slerp": """
                merge_method: slerp
                base_model: \(ft1)
                models:
                  - model: \(ft1)
                  - model: \(ft2)
                parameters: {t: 0.5}
                dtype: bfloat16
                """,
            "ties": taskVectorRecipe("ties"),
            "dare_ties": taskVectorRecipe("dare_ties") + "\nrandom_seed: 1",
        ]
        let work = fm.temporaryDirectory.appendingPathComponent("crucible-bench-\(getpid())").path
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: work) }
        let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let parentBytes = ["model.safetensors"].reduce(0) { acc, f in
            acc + ((try? fm.attributesOfItem(atPath: ft1 + "/" + f)[.size] as? Int) ?? 0)
        }
        print("parents: \(preset), BF16, \(formatBytes(parentBytes)) each; \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("case        inputs    best wall   input GB/s   peak RSS    (all runs)")
        for name in cases.split(separator: ",").map(String.init) {
            guard let text = recipes[name] else { throw ValidationError("unknown case '\(name)'") }
            let recipePath = work + "/\(name).yml"
            try text.write(toFile: recipePath, atomically: true, encoding: .utf8)
            let inputs = name == "ties" || name == "dare_ties" ? 3 : 2
            var results: [(Double, Int)] = []
            for _ in 0..<max(1, runs) {
                let out = work + "/out-\(name)"
                try? fm.removeItem(atPath: out)
                let r = try runChild(exe, ["merge", recipePath, "--out", out, "--quiet"])
                if r.status != 0 { throw ValidationError("bench case \(name) failed (exit \(r.status))") }
                results.append((r.seconds, r.maxRSS))
                try? fm.removeItem(atPath: out)
            }
            let best = results.min { $0.0 < $1.0 }!
            let gbps = Double(parentBytes * inputs) / best.0 / 1e9
            let all = results.map { String(format: "%.2fs", $0.0) }.joined(separator: " ")
            print(String(format: "%-10@ %6d   %8.3f s   %8.2f    %9@   (%@)", name as NSString, inputs, best.0, gbps,
                         formatBytes(results.map(\.1).max()!) as NSString, all as NSString))
        }
    }
}

/// Runs a command as a child process; returns its exit status, wall time and peak RSS (from wait4's rusage).
func runChild(_ exe: String, _ args: [String]) throws -> (status: Int32, seconds: Double, maxRSS: Int) {
    var pid: pid_t = 0
    let argv = ([exe] + args).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let start = Date()
    let rc = posix_spawn(&pid, exe, nil, nil, argv, environ)
    guard rc == 0 else { throw ValidationError("cannot start \(exe): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    var usage = rusage()
    _ = wait4(pid, &status, 0, &usage)
    let seconds = Date().timeIntervalSince(start)
    let exited = (status & 0x7f) == 0
    return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), seconds, Int(usage.ru_maxrss) * 1024)
}
