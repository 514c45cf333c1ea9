import ArgumentParser
import Foundation
import Reports

extension ComparisonMetric: ExpressibleByArgument {}

/// `crucible compare A B [--base C]`: per-layer, per-module similarity of two checkpoints of one architecture.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two checkpoints per layer and module: cosine, relative distance, sign agreement (of task vectors with --base).",
        discussion: """
        A and B (and --base) are model folders, .gguf files or cached hub ids of the same architecture. Shapes are \
        checked from the headers first; tensors are then read block by block on all threads (results do not depend \
        on the thread count). Without --base: cosine(A, B), ||A - B|| / ||A||, and the fraction of elements non-zero \
        in both whose signs agree. With --base C the same metrics are computed on the task vectors A - C and B - C, \
        plus each task vector's size relative to C. Definitions and the JSON schema: docs/inspect.md.
        """)

    @Argument(help: "First model (its norm is the distance's denominator).")
    var a: String

    @Argument(help: "Second model.")
    var b: String

    @Option(help: "Common base model: compare the task vectors A - base and B - base.")
    var base: String?

    @Option(help: "Metric of the layer table and the heatmap: cosine, distance or agreement.")
    var metric: ComparisonMetric = .cosine

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "Also write an SVG heatmap (layers x modules) to this file.")
    var svg: String?

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let report = try ModelComparison.compare(a, b, base: base, options: CompareOptions(threads: threads))
        if let svg {
            do {
                try report.heatmapSVG(metric: metric).write(toFile: svg, atomically: true, encoding: .utf8)
            } catch {
                throw CLIFailure("\(svg): cannot write the heatmap: \(error.localizedDescription)")
            }
        }
        if json {
            print(report.json(metric: metric).serialized())
        } else {
            print(report.text(metric: metric), terminator: "")
            if let svg { print("heatmap: \(svg)") }
        }
    }
}
