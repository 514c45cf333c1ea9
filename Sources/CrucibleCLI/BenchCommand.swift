import Architectures
import ArgumentParser
import Foundation
import Planner
import Host
#if canImport(Glibc)
import Glibc
#endif

/// `crucible bench`: whole-process benchmarks with wall time, throughput and peak RSS.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks, each run as a whole child process (wall time, GB/s, peak RSS).",
        subcommands: [BenchMerge.self, BenchMoE.self, BenchScore.self, BenchExport.self, BenchEvolve.self, BenchPerplexity.self,
                      BenchGenerate.self])
}

struct BenchMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge SmolLM2-135M-shaped BF16 parents (made once by `crucible synth`, cached) with linear, SLERP, TIES and DARE-TIES.",
        discussion: """
        `linear_lora` is the `linear` case with a seeded rank-16 LoRA adapter on q_proj, v_proj and down_proj applied to \
        the first parent (`crucible synth --lora-of`, cached beside the parents); the ratio of the two is printed.
        """)

    @OptionGroup var cache: BenchCache

    @Option(help: "Comma-separated cases to run: linear, linear_lora, slerp, ties, dare_ties.")
    var cases: String = "linear,linear_lora,slerp,ties,dare_ties"

    @Option(help: "Runs per case (the best is reported; all are printed).")
    var runs: Int = 3

    @Option(help: "Preset of the parents.")
    var preset = SynthPreset(argument: "smollm2-135m")!

    @Option(help: "Architecture of the parents, as `crucible synth --arch` takes it (qwen3 for the Qwen3-shaped case).")
    var arch = SynthArchitecture(argument: "llama")!

    func run() throws {
        let parents = try BenchParents(cache: cache.root, preset: preset.name, fineTunes: 2, arch: arch.name)
        let base = parents.base, ft1 = parents.fineTunes[0], ft2 = parents.fineTunes[1]
        let fm = FileManager.default
        let adapter = parents.folder + "/lora-qvd-r16"
        if cases.contains("linear_lora"), !fm.fileExists(atPath: adapter + "/adapter_config.json") {
            try SyntheticCheckpoint.writeLoRA(of: base, rank: 16, targets: ["q_proj", "v_proj", "down_proj"], seed: 7, to: adapter)
        }
        func linear(_ first: String) -> String {
            """
            merge_method: linear
            models:
              - model: \(first)
                parameters: {weight: 0.5}
              - model: \(ft2)
                parameters: {weight: 0.5}
            dtype: bfloat16
            """
        }
        /// Base plus two fine-tunes at density 0.5, weight 0.5 each (the setting docs/performance.md quotes).
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
            "linear": linear(ft1),
            "linear_lora": linear(ft1 + "+" + adapter),
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
        print("parents: \(arch.name) \(preset.name), BF16, \(formatBytes(parentBytes)) each; "
              + "\(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("case          inputs    best wall   input GB/s   peak RSS   best CPU   (all runs)")
        var best: [String: (wall: Double, cpu: Double)] = [:]
        for name in cases.split(separator: ",").map(String.init) {
            guard let text = recipes[name] else { throw ValidationError("unknown case '\(name)'") }
            let recipePath = work + "/\(name).yml"
            try text.write(toFile: recipePath, atomically: true, encoding: .utf8)
            let inputs = name == "ties" || name == "dare_ties" ? 3 : 2
            var results: [(Double, Int, Double)] = []
            for _ in 0..<max(1, runs) {
                let out = work + "/out-\(name)"
                try? fm.removeItem(atPath: out)
                let r = try runChild(exe, ["merge", recipePath, "--out", out, "--quiet"])
                if r.status != 0 { throw CLIFailure("bench case \(name) failed (exit \(r.status))") }
                results.append((r.seconds, r.maxRSS, r.cpuSeconds))
                try? fm.removeItem(atPath: out)
            }
            let fastest = results.map(\.0).min()!, cpu = results.map(\.2).min()!
            // A case listed twice keeps its best over both.
            best[name] = (min(fastest, best[name]?.wall ?? .infinity), min(cpu, best[name]?.cpu ?? .infinity))
            let gbps = Double(parentBytes * inputs) / fastest / 1e9
            let all = results.map { String(format: "%.2fs", $0.0) }.joined(separator: " ")
            print(name.padding(toLength: 12, withPad: " ", startingAt: 0)
                  + String(format: " %5d   %8.3f s   %8.2f    %9@   %6.2f s   (%@)", inputs, fastest, gbps,
                           formatBytes(results.map(\.1).max()!) as NSString, cpu, all as NSString))
        }
        if let plain = best["linear"], let lora = best["linear_lora"] {
            // CPU time (user + system) is the steadier figure on a shared machine.
            print(String(format: "linear_lora / linear: wall %.3f, CPU %.3f   (best of each; target ≤ 1.3)", lora.wall / plain.wall,
                         lora.cpu / plain.cpu))
        }
    }
}

struct BenchScore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Time `crucible score` of a SmolLM2-135M merge against its two parents, and the three `crucible ppl` runs it replaces.",
        discussion: """
        Builds once, in the cache folder: a seeded fine-tune of the SmolLM2-135M-Instruct Q4_1 GGUF (delta 0.02, seed 2, \
        BF16) and the SLERP merge (t = 0.5) of the GGUF with it. Then runs, as whole child processes, `crucible ppl` on \
        each of the three models and `crucible score merged --parents GGUF FT` on the same text and windows, and prints \
        wall times, peak RSS and the ratios (targets: time ≤ 1.1 × the three ppl runs, peak RSS ≤ 1.5 × one ppl run).
        """)

    @OptionGroup var model: SmolLM2BenchOptions

    @Option(help: "The text scored (default: ../shared/data/wikitext-2-raw/wiki.test.raw beside the working directory).")
    var data: String = "../shared/data/wikitext-2-raw/wiki.test.raw"

    @Option(help: "Windows of 512 tokens per run.")
    var chunks: Int = 40

    @Option(help: "Threads for every run (default: all cores).")
    var threads: Int?

    func run() throws {
        let (root, parent) = try model.resolve()
        let fm = FileManager.default
        guard fm.isReadableFile(atPath: data) else { throw CLIFailure("\(data): the text to score cannot be read; give --data") }
        let dir = (root as NSString).appendingPathComponent("bench-score-smollm2")
        let ft = dir + "/ft", merged = dir + "/merged"
        let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        // Built by child processes: a child's peak RSS starts from this process's size when it is spawned, so this
        // process stays small.
        if !fm.fileExists(atPath: ft + "/model.safetensors") {
            FileHandle.standardError.write(Data("building the fine-tune in \(ft) (once)...\n".utf8))
            let r = try runChild(exe, ["synth", "--finetune-of", parent, "--delta", "0.02", "--seed", "2", "--dtype", "bf16",
                                       "--out", ft], quiet: true)
            if r.status != 0 {
                throw CLIFailure("building the fine-tune failed (exit \(r.status)); run `crucible synth --finetune-of \(parent) "
                    + "--out \(ft)`")
            }
        }
        if !fm.fileExists(atPath: merged + "/model.safetensors") {
            FileHandle.standardError.write(Data("building the SLERP merge in \(merged) (once)...\n".utf8))
            let recipe = dir + "/slerp.yml"
            try """
                merge_method: slerp
                base_model: \(parent)
                models:
                  - model: \(parent)
                  - model: \(ft)
                parameters:
                  t: 0.5
                dtype: bfloat16
                """.write(toFile: recipe, atomically: true, encoding: .utf8)
            let r = try runChild(exe, ["merge", recipe, "--out", merged, "--overwrite", "--quiet"], quiet: true)
            if r.status != 0 {
                throw CLIFailure("building the merge failed (exit \(r.status)); run `crucible merge \(recipe) --out \(merged)`")
            }
        }
        setvbuf(stdout, nil, _IOLBF, 0)  // each line as it is measured, also into a file
        let common = ["--ctx", "512", "--chunks", String(chunks)] + (threads.map { ["--threads", String($0)] } ?? [])
        print("models: \(parent) (Q4_1), \(ft) (BF16 fine-tune), \(merged) (BF16 SLERP); \(chunks) windows of 512; "
              + "\(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("load average before: \(loadAverage())")
        func row(_ name: String, _ r: (status: Int32, seconds: Double, maxRSS: Int, cpuSeconds: Double)) {
            print(name.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: "%8.1f s  %8.1f s   ", r.seconds, r.cpuSeconds)
                  + formatBytes(r.maxRSS))
        }
        print("run                                 wall   CPU time   peak RSS")
        var ppl: [(String, Double, Int, Double)] = []
        for (name, model) in [("ppl GGUF", parent), ("ppl fine-tune", ft), ("ppl merge", merged)] {
            let r = try runChild(exe, ["ppl", model, "--data", data, "--json"] + common, quiet: true)
            if r.status != 0 { throw CLIFailure("\(name) failed (exit \(r.status)): crucible ppl \(model) --data \(data)") }
            ppl.append((name, r.seconds, r.maxRSS, r.cpuSeconds))
            row(name, r)
        }
        let s = try runChild(exe, ["score", merged, "--parents", parent, ft, "--eval", data, "--json"] + common, quiet: true)
        if s.status != 0 {
            throw CLIFailure("score failed (exit \(s.status)): crucible score \(merged) --parents \(parent) \(ft) --eval \(data)")
        }
        row("score (merge + 2 parents)", s)
        let pplTime = ppl.reduce(0) { $0 + $1.1 }, pplCPU = ppl.reduce(0) { $0 + $1.3 }
        let largest = ppl.map(\.2).max() ?? 1, smallest = ppl.map(\.2).min() ?? 1
        print(String(format: "time: score / (sum of the three ppl runs, %.1f s) = %.3f   (target ≤ 1.1); CPU time: %.3f",
                     pplTime, s.seconds / pplTime, s.cpuSeconds / pplCPU))
        print(String(format: "peak RSS: score / largest ppl run (%@) = %.3f, / smallest (%@) = %.3f   (target ≤ 1.5)",
                     formatBytes(largest) as NSString, Double(s.maxRSS) / Double(largest), formatBytes(smallest) as NSString,
                     Double(s.maxRSS) / Double(smallest)))
        print("load average after: \(loadAverage())")
    }
}

/// Runs a command as a child process; returns its exit status, wall time and peak RSS (from wait4's rusage).
/// With `quiet`, the child's stdout and stderr go to /dev/null.
func runChild(_ exe: String, _ args: [String],
              quiet: Bool = false) throws -> (status: Int32, seconds: Double, maxRSS: Int, cpuSeconds: Double) {
    let r = try ChildProcess.run(exe, args, stdout: quiet ? .discard : .inherit, stderr: quiet ? .discard : .inherit)
    return (r.status, r.seconds, r.maxRSS, r.cpuSeconds)
}

/// Where the benchmarks keep the models they make or fetch once.
struct BenchCache: ParsableArguments {
    @Option(name: .customLong("cache"), help: "Where models are cached (default $CRUCIBLE_CACHE or ~/.cache/crucible).")
    var folder: String?

    /// `--cache`, else `$CRUCIBLE_CACHE`, else `~/.cache/crucible`.
    var root: String {
        folder ?? ProcessInfo.processInfo.environment["CRUCIBLE_CACHE"]
            ?? (FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/crucible")
    }
}

/// The benchmarks' synthetic parents, made once and cached: a base of `preset` dimensions (seed 1, BF16) in
/// `ROOT/bench-PRESET-bf16/base` (`bench-ARCH-PRESET-bf16` for an architecture other than Llama) and `fineTunes`
/// fine-tunes of it (`ft1`, `ft2`…, seeds 2, 3…, delta 0.02).
struct BenchParents {
    let root: String
    let folder: String
    let base: String
    let fineTunes: [String]

    /// `cache`: the cache root (`BenchCache.root`).
    init(cache: String, preset: String, fineTunes count: Int, arch: String = "llama") throws {
        root = cache
        let folder = (root as NSString).appendingPathComponent(arch == "llama" ? "bench-\(preset)-bf16" : "bench-\(arch)-\(preset)-bf16")
        self.folder = folder
        base = folder + "/base"
        fineTunes = (1...max(1, count)).map { "\(folder)/ft\($0)" }
        let fm = FileManager.default
        if !fm.fileExists(atPath: base + "/model.safetensors") {
            FileHandle.standardError.write(Data("building parents in \(folder) (once)...\n".utf8))
            try SyntheticCheckpoint.write(arch: arch, preset: preset, seed: 1, dtype: .bf16, to: base)
        }
        for (i, path) in fineTunes.enumerated() where !fm.fileExists(atPath: path + "/model.safetensors") {
            try SyntheticCheckpoint.writeFineTune(of: base, delta: 0.02, seed: UInt64(2 + i), dtype: .bf16, to: path)
        }
    }
}
