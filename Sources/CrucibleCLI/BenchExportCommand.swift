import ArgumentParser
import Foundation
import Host

/// `crucible bench export`: a SmolLM2-135M-shaped BF16 checkpoint to GGUF, whole-process, against llama.cpp's
/// two-step path (`convert_hf_to_gguf.py` to F16 or BF16, then `llama-quantize`) when a llama.cpp checkout is given.
struct BenchExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export SmolLM2-135M-shaped BF16 parents (cached) to GGUF types, optionally against llama.cpp's convert + quantize.")

    @OptionGroup var cache: BenchCache

    @Option(help: ArgumentHelp("Export this Hugging Face folder instead of the synthetic parent "
                               + "(llama.cpp's converter only accepts tokenizers it recognises)."))
    var model: String?

    @Option(help: "Comma-separated GGUF file types.")
    var types: String = "F16,Q8_0,Q4_K_M"

    @Option(help: "Runs per case (the best is reported; all are printed).")
    var runs: Int = 3

    @Option(help: "A llama.cpp checkout with convert_hf_to_gguf.py and a built build/bin/llama-quantize, to time its two-step path.")
    var llamaCpp: String?

    @Option(help: "The Python that runs convert_hf_to_gguf.py (with torch, transformers and its gguf package).")
    var python: String = "python3"

    func run() throws {
        let model = try self.model ?? BenchParents(cache: cache.root, preset: "smollm2-135m", fineTunes: 1).base
        let fm = FileManager.default
        let work = fm.temporaryDirectory.appendingPathComponent("crucible-bench-export-\(getpid())").path
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: work) }
        let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        print("model: \(model); \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("type      tool                          best wall   peak RSS    (all runs)")
        func report(_ type: String, _ tool: String, _ results: [(Double, Int)]) {
            let best = results.min { $0.0 < $1.0 }!
            let all = results.map { String(format: "%.2fs", $0.0) }.joined(separator: " ")
            func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
            print(pad(type, 10) + pad(tool, 30) + String(format: "%8.2f s   ", best.0) + pad(formatBytes(results.map(\.1).max()!), 12)
                  + "(\(all))")
        }
        for type in types.split(separator: ",").map(String.init) {
            var ours: [(Double, Int)] = []
            for _ in 0..<max(1, runs) {
                let out = work + "/crucible-\(type).gguf"
                let r = try runChild(exe, ["export", model, "--gguf", type, "--out", out, "--overwrite", "--quiet"])
                guard r.status == 0 else { throw CLIFailure("crucible export \(type) failed (exit \(r.status))") }
                ours.append((r.seconds, r.maxRSS))
                try? fm.removeItem(atPath: out)
            }
            report(type, "crucible export", ours)
            guard let llama = llamaCpp else { continue }
            let convert = (llama as NSString).appendingPathComponent("convert_hf_to_gguf.py")
            let quantizer = (llama as NSString).appendingPathComponent("build/bin/llama-quantize")
            let python = try resolveExecutable(self.python)
            var theirs: [(Double, Int)] = []
            for _ in 0..<max(1, runs) {
                let direct = ["F16", "BF16", "Q8_0", "F32"].contains(type.uppercased())
                let mid = work + "/llama-mid.gguf", out = work + "/llama-\(type).gguf"
                let outtype = direct ? type.lowercased() : "bf16"
                let c = try runChild(python, [convert, model, "--outtype", outtype, "--outfile", direct ? out : mid], quiet: true)
                guard c.status == 0 else { throw CLIFailure("convert_hf_to_gguf.py failed (exit \(c.status))") }
                var seconds = c.seconds, rss = c.maxRSS
                if !direct {
                    let q = try runChild(quantizer, [mid, out, type], quiet: true)
                    guard q.status == 0 else { throw CLIFailure("llama-quantize failed (exit \(q.status))") }
                    seconds += q.seconds
                    rss = max(rss, q.maxRSS)
                }
                theirs.append((seconds, rss))
                try? fm.removeItem(atPath: mid)
                try? fm.removeItem(atPath: out)
            }
            report(type, "llama.cpp convert (+quantize)", theirs)
        }
    }

    private func resolveExecutable(_ name: String) throws -> String {
        if name.contains("/") { return name }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        throw CLIFailure("\(name) is not on PATH")
    }
}
