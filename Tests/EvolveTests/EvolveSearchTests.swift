import Checkpoints
import Evolve
import Foundation
import Inference
import MergeMethods
import Planner
import Recipes
import TestSupport
import Tokenization
import XCTest

/// The acceptance tests of `crucible evolve` on the tiny fixture llamas: a one-parameter search finds what an
/// exhaustive grid finds, a resumed search reaches the same result, the in-memory candidate is bit for bit the merge
/// `crucible merge` writes, and best.yml is a plain recipe.
final class EvolveSearchTests: XCTestCase {
    var folder: URL!
    override func setUpWithError() throws { folder = Fixtures.temporaryFolder("evolve-search") }
    override func tearDown() { try? FileManager.default.removeItem(at: folder) }

    /// A SLERP-t search of llama-base and llama-ft1 whose objective is the KL divergence from `reference`.
    func slerpConfig(reference: String?, budget: Int = 24, method: String = "cma_es", seed: Int = 5) throws -> String {
        _ = try writeEvolveText(in: folder)
        let objective = reference.map { "      metric: kl_divergence\n      reference: \"\($0)\"\n" } ?? "      metric: perplexity\n"
        return try writeEvolveConfig(in: folder, body: """
            merge_method: slerp
            base_model: "\(llamaBase)"
            models:
              - model: "\(llamaBase)"
              - model: "\(llamaFT1)"
            search:
              parameters:
                t: {min: 0, max: 1}
            objective:
              context: 32
              held_out: 0.25
              texts:
                - path: text.txt
                  windows: 4
            \(objective)optimizer:
              method: \(method)
              sigma0: 0.3
              budget: \(budget)
              seed: \(seed)
            """)
    }

    /// Writes the SLERP merge at `t` with the planner and executor (what `crucible merge` runs).
    func writeSlerp(t: Double, to path: String) throws {
        let recipe = try RecipeParser.parse(text: """
            merge_method: slerp
            base_model: "\(llamaBase)"
            models:
              - model: "\(llamaBase)"
              - model: "\(llamaFT1)"
            parameters:
              t: \(t)
            """, file: folder.appendingPathComponent("ref.yml").path)
        _ = try PlanExecutor.execute(try MergePlanner.plan(recipe, options: PlannerOptions(threads: 2)), outputPath: path,
                                     options: ExecutionOptions(overwrite: true))
    }

    func run(_ config: String, out: String, budget: Int? = nil, resume: Bool = false, threads: Int = 2) throws -> EvolveResult {
        var job = EvolveJob(configPath: config, outputPath: folder.appendingPathComponent(out).path)
        job.budget = budget
        job.resume = resume
        job.threads = threads
        job.finalScores = false
        job.workingDirectory = folder.path
        return try job.run()
    }

    /// The fitness of each grid value of t, scored exactly as the search scores its candidates.
    func grid(_ config: String, step: Double) throws -> [(t: Double, fitness: Double)] {
        let parsed = try EvolveConfigParser.parse(file: config, workingDirectory: folder.path)
        let slerp = try XCTUnwrap(MergeMethodRegistry.method(named: "slerp"))
        let g = try SearchGenome(config: parsed, method: slerp, layerCount: 4, modelPaths: [llamaBase, llamaFT1])
        XCTAssertEqual(g.dimensions.count, 1)
        let candidate = CandidateModel(planner: PlannerOptions(threads: 2, workingDirectory: folder.path), contextLength: 32)
        try candidate.load(recipeText: g.recipeText([0.5], comment: "probe"), file: "probe.yml")
        let tokenizer = try TokenizerLoader.load(path: try XCTUnwrap(candidate.tokenizerDonorPath))
        let texts = try parsed.objective.texts.map { try SplitText($0, heldOut: parsed.objective.heldOut) }
        let scorer = try ObjectiveScorer(texts: texts, tokenizer: tokenizer, vocabSize: try XCTUnwrap(candidate.model).config.vocabSize,
                                         contextLength: 32, threads: 2)
        let probe = folder.appendingPathComponent("grid-references").path
        try FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        try scorer.prepareReferences(folder: probe) { text in try LanguageModel(path: text.reference!.raw, threads: 2) }
        var out: [(Double, Double)] = []
        for k in 0...Int((1 / step).rounded()) {
            let t = Double(k) * step
            try candidate.load(recipeText: g.recipeText([t], comment: "grid"), file: "grid.yml")
            out.append((t, scorer.fitness(try scorer.score(candidate.model!, cache: candidate.cache!, part: .search))))
        }
        return out
    }

    func testOneParameterSearchFindsTheGridOptimum() throws {
        // The reference is the SLERP at t = 0.37: the KL divergence from it is lowest there, inside the range.
        let reference = folder.appendingPathComponent("reference").path
        try writeSlerp(t: 0.37, to: reference)
        let config = try slerpConfig(reference: reference, budget: 40)
        let step = 0.05
        let g = try grid(config, step: step)
        let gridBest = g.min { $0.fitness < $1.fitness }!
        XCTAssertEqual(gridBest.t, 0.35, accuracy: 1e-9, "the grid's optimum: \(g)")
        let result = try run(config, out: "search")
        let best = try XCTUnwrap(result.best)
        let t = best.parameters[0].value
        XCTAssertEqual(t, gridBest.t, accuracy: step, "the search's t \(t), the grid's \(gridBest.t)")
        XCTAssertLessThanOrEqual(try XCTUnwrap(best.fitness), gridBest.fitness)
        // best.yml holds that t and is a plain recipe.
        let bestText = try String(contentsOfFile: folder.appendingPathComponent("search/best.yml").path, encoding: .utf8)
        let recipe = try RecipeParser.parse(text: bestText, file: "best.yml")
        guard case let .scalar(.number(written))? = recipe.parameters["t"]?.setting else { return XCTFail("no t in \(bestText)") }
        XCTAssertEqual(written, t)
        XCTAssertEqual(recipe.models?.count, 2)
    }

    func testPerplexitySearchMatchesTheGrid() throws {
        let config = try slerpConfig(reference: nil, budget: 20)
        let step = 0.05
        let g = try grid(config, step: step)
        let gridBest = g.min { $0.fitness < $1.fitness }!
        let best = try XCTUnwrap(try run(config, out: "ppl").best)
        XCTAssertEqual(best.parameters[0].value, gridBest.t, accuracy: step, "grid \(g)")
    }

    func testResumeReachesTheSameResult() throws {
        let config = try slerpConfig(reference: nil, budget: 14)
        let whole = try run(config, out: "whole")
        // The same search stopped after 6 candidates (mid-generation), then resumed to 14.
        let part = try run(config, out: "parts", budget: 6)
        XCTAssertEqual(part.records.count, 6)
        XCTAssertThrowsError(try run(config, out: "parts")) { XCTAssertTrue("\($0)".contains("--resume"), "\($0)") }
        let resumed = try run(config, out: "parts", resume: true)
        XCTAssertEqual(resumed.records.count, 14)
        XCTAssertEqual(resumed.records.map(\.x), whole.records.map(\.x))
        XCTAssertEqual(resumed.records.map(\.fitness), whole.records.map(\.fitness))
        XCTAssertEqual(resumed.best?.index, whole.best?.index)
        let lines = try String(contentsOfFile: folder.appendingPathComponent("parts/evaluations.jsonl").path, encoding: .utf8)
            .split(separator: "\n")
        XCTAssertEqual(lines.count, 14)
        // Deterministic: a second run from scratch gives the same candidates and scores.
        let again = try run(config, out: "again")
        XCTAssertEqual(again.records.map(\.fitness), whole.records.map(\.fitness))
        // Another seed is refused on resume.
        var job = EvolveJob(configPath: config, outputPath: folder.appendingPathComponent("parts").path)
        job.seed = 99
        job.resume = true
        job.finalScores = false
        job.workingDirectory = folder.path
        XCTAssertThrowsError(try job.run()) { XCTAssertTrue("\($0)".contains("another config, seed or optimizer"), "\($0)") }
    }

    /// The candidate merged in memory is bit for bit the checkpoint `crucible merge` writes from best.yml, so the
    /// search's score is the merge's score.
    func testInMemoryCandidateEqualsTheWrittenMerge() throws {
        let config = try slerpConfig(reference: nil, budget: 4, method: "random")
        var job = EvolveJob(configPath: config, outputPath: folder.appendingPathComponent("small").path)
        job.workingDirectory = folder.path
        let result = try job.run()
        let bestPath = folder.appendingPathComponent("small/best.yml").path
        let recipe = try RecipeParser.parse(file: bestPath)
        let plan = try MergePlanner.plan(recipe, options: PlannerOptions(threads: 2))
        let merged = folder.appendingPathComponent("best-merged").path
        _ = try PlanExecutor.execute(plan, outputPath: merged)
        let memory = InMemoryCheckpoint(layoutOf: plan)
        try PlanExecutor.execute(plan, into: memory)
        let file = try SafetensorsFile(path: merged + "/model.safetensors")
        for name in memory.tensorNames {
            let a = try XCTUnwrap(try memory.rawBytes(name)), b = try XCTUnwrap(try file.rawBytes(name))
            XCTAssertEqual(Array(a), Array(b), name)
        }
        // The final scores name the best, the default recipe and each parent.
        XCTAssertEqual(result.finals.map(\.role), ["best", "default", "parent", "parent"])
        XCTAssertTrue(result.finals.allSatisfy { $0.error == nil && $0.heldOutFitness.isFinite }, "\(result.finals)")
        XCTAssertEqual(result.finals[0].searchFitness, try XCTUnwrap(result.best?.fitness))
        let html = try String(contentsOfFile: folder.appendingPathComponent("small/report.html").path, encoding: .utf8)
        XCTAssertTrue(html.contains("seed <b>5</b>"))
        XCTAssertTrue(html.contains("<svg"))
    }
}
