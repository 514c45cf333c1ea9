import Foundation
import Host
import Inference
import MergeMethods
import Planner
import Recipes
import Tokenization

/// What `crucible evolve` reports as it goes.
public enum EvolveProgress: Sendable {
    /// The search is set up: its dimensions, candidates per generation, windows scored per candidate, evaluations
    /// already in the log (resumed).
    case started(dimensions: Int, population: Int, windows: Int, budget: Int, resumed: Int, notes: [String])
    /// One candidate is done (or taken from the log).
    case evaluated(EvaluationRecord, best: EvaluationRecord?, budget: Int, resumed: Bool)
    /// The final scores on the held-out part: which model is being scored.
    case finalScoring(String)
}

/// A model scored at the end on both parts of every text.
public struct FinalScore: Sendable {
    public let name: String
    /// `best`, `default` or `parent`.
    public let role: String
    public let search: [TextValue]
    public let heldOut: [TextValue]
    public let searchFitness: Double
    public let heldOutFitness: Double
    /// Why the model could not be scored (then the values are empty).
    public let error: String?
}

/// The outcome of `crucible evolve`.
public struct EvolveResult: Sendable {
    public let outputPath: String
    public let seed: UInt64
    public let optimizer: OptimizerKind
    public let dimensions: [SearchDimension]
    public let records: [EvaluationRecord]
    public let best: EvaluationRecord?
    public let bestRecipe: String?
    public let finals: [FinalScore]
    public let seconds: Double
    public let peakResidentBytes: Int?
    public let threads: Int
    public let notes: [String]
}

/// `crucible evolve CONFIG --out DIR`: searches the config's parameters for the merge that scores best on its texts.
/// Every candidate is the config's recipe with the searched values written in (`SearchGenome`), merged into memory and
/// scored in-process (`CandidateModel`, `ObjectiveScorer`); the optimizer (`CMAES`, `RandomSearch`) proposes
/// candidates from one seeded stream, so a seed and thread count give the same run. Each candidate is appended to
/// `evaluations.jsonl`; `--resume` replays the optimizer over the logged candidates and continues. At the end the best
/// candidate, the method's default recipe and each parent are scored on the held-out part of every text.
public struct EvolveJob {
    public var configPath: String
    public var outputPath: String
    public var budget: Int?
    public var seed: UInt64?
    public var resume = false
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var workingDirectory = FileManager.default.currentDirectoryPath
    public var environment = ProcessInfo.processInfo.environment
    /// Score the default recipe and the parents at the end (tests of the search alone turn it off).
    public var finalScores = true

    public init(configPath: String, outputPath: String) {
        self.configPath = configPath
        self.outputPath = outputPath
    }

    public func run(progress: ((EvolveProgress) -> Void)? = nil) throws -> EvolveResult {
        let started = Date()
        guard threads >= 1 else { throw EvolveError.invalidConfig("--threads must be at least 1, got \(threads)") }
        if let budget, budget < 1 { throw EvolveError.invalidConfig("--budget must be at least 1, got \(budget)") }
        let config = try EvolveConfigParser.parse(file: configPath, workingDirectory: workingDirectory)
        guard let method = MergeMethodRegistry.method(named: config.recipe.mergeMethod) else {
            throw RecipeError.invalidValue(config.recipe.mergeMethodLocation, key: "merge_method",
                                           reason: "unknown method `\(config.recipe.mergeMethod)`; known: "
                                               + MergeMethodRegistry.names.joined(separator: ", "))
        }
        let seed = self.seed ?? config.optimizer.seed
        let budget = self.budget ?? config.optimizer.budget
        let resolver = ModelResolver(recipe: config.recipe, workingDirectory: workingDirectory, environment: environment)
        let models = config.recipe.models ?? []
        let modelPaths = try models.map { URL(fileURLWithPath: try resolver.resolve($0.model)).standardizedFileURL.path }
        let first = try PlannedModel.open(models[0].model, resolver: resolver)
        let genome = try SearchGenome(config: config, method: method, layerCount: first.layerCount, modelPaths: modelPaths)

        let output = try prepareOutput()
        let planner = PlannerOptions(seed: config.recipe.randomSeed, threads: threads, workingDirectory: workingDirectory)
        let candidate = CandidateModel(planner: planner, contextLength: config.objective.contextLength)
        let header = "crucible evolve: \(configPath), seed \(seed)"
        let defaultText = genome.defaultRecipeText(method: method, comment: header + "\nthe method's default recipe")
        try candidate.load(recipeText: defaultText, file: "default.yml")
        guard let donor = candidate.tokenizerDonorPath, let engine = candidate.model else {
            throw EvolveError.invalidConfig("\(configPath): the default recipe built no model")
        }
        let tokenizer = try TokenizerLoader.load(path: donor)
        let texts = try config.objective.texts.map { try SplitText($0, heldOut: config.objective.heldOut) }
        let scorer = try ObjectiveScorer(texts: texts, tokenizer: tokenizer, vocabSize: engine.config.vocabSize,
                                         contextLength: config.objective.contextLength, threads: threads)
        try scorer.prepareReferences(folder: output) { text in
            let path = try resolver.resolve(text.reference!)
            return try LanguageModel(path: path, threads: threads)
        }

        // The run key: the search space, the objective and the optimizer, but not the budget (a resume may extend it).
        let optimizerKey = "\(config.optimizer.kind.rawValue) \(config.optimizer.population ?? 0) \(config.optimizer.sigma0)"
        let objectiveKey = config.objective.texts.map { "\($0.path) \($0.metric) \($0.windows) \($0.weight) \($0.maximize)" }
            .joined(separator: ";") + " \(config.objective.contextLength) \(config.objective.heldOut)"
        let key = runKey(configText: genome.recipeText(genome.dimensions.map { _ in 0.5 }, comment: "") + objectiveKey, seed: seed,
                         optimizer: optimizerKey)

        let logPath = (output as NSString).appendingPathComponent("evaluations.jsonl")
        let labels = genome.dimensions.map(\.label)
        let (logged, logBytes) = resume ? try EvaluationLog.read(path: logPath, dimensionLabels: labels) : ([], 0)
        if let bad = logged.first(where: { $0.runKey != key }) {
            throw EvolveError.resume("\(logPath): evaluation \(bad.index) was made with another config, seed or optimizer "
                + "(run key \(bad.runKey), this run \(key)); resume with the same ones or use another --out")
        }
        let log = try EvaluationLog(path: logPath, keepingBytes: logBytes)

        var strategy: any SearchStrategy = config.optimizer.kind == .cmaES
            ? CMAES(dimension: genome.dimensions.count, sigma0: config.optimizer.sigma0, population: config.optimizer.population,
                    seed: seed)
            : RandomSearch(dimension: genome.dimensions.count, population: config.optimizer.population, seed: seed)
        progress?(.started(dimensions: genome.dimensions.count, population: strategy.populationSize, windows: scorer.searchWindows,
                           budget: budget, resumed: min(logged.count, budget), notes: scorer.notes + config.warnings.map(\.description)))

        var records: [EvaluationRecord] = []
        var best: EvaluationRecord? = nil
        var generation = 0
        search: while records.count < budget {
            let points = strategy.ask()
            var fitness: [Double] = []
            for x in points {
                if records.count >= budget { break search }
                let index = records.count
                let record: EvaluationRecord
                let resumed = index < logged.count
                if resumed {
                    let old = logged[index]
                    guard old.x.count == x.count, zip(old.x, x).allSatisfy({ abs($0 - $1) <= 1e-12 }) else {
                        throw EvolveError.resume("\(logPath): evaluation \(index) is not the candidate this seed proposes; the log was "
                            + "made by another run")
                    }
                    record = old
                } else {
                    record = evaluate(x, index: index, generation: generation, genome: genome, candidate: candidate, scorer: scorer,
                                      header: header, key: key)
                    try log.append(record)
                }
                records.append(record)
                if let f = record.fitness, f < (best?.fitness ?? .infinity) {
                    best = record
                    try writeAtomically(genome.recipeText(record.x, comment: bestComment(header, record)),
                                        to: (output as NSString).appendingPathComponent("best.yml"))
                }
                fitness.append(record.fitness ?? .infinity)
                progress?(.evaluated(record, best: best, budget: budget, resumed: resumed))
            }
            strategy.tell(fitness)
            generation += 1
        }

        var finals: [FinalScore] = []
        let bestText = best.map { genome.recipeText($0.x, comment: bestComment(header, $0)) }
        if let bestText {
            progress?(.finalScoring("best"))
            finals.append(finalScore(name: "best", role: "best", scorer: scorer) {
                try candidate.load(recipeText: bestText, file: "best.yml")
                return (candidate.model!, candidate.cache!, scorer)
            })
        }
        if finalScores {
            progress?(.finalScoring("default"))
            finals.append(finalScore(name: "default (\(method.name) defaults)", role: "default", scorer: scorer) {
                try candidate.load(recipeText: defaultText, file: "default.yml")
                return (candidate.model!, candidate.cache!, scorer)
            })
            for (i, path) in modelPaths.enumerated() where !modelPaths[..<i].contains(path) {
                let name = URL(fileURLWithPath: path).lastPathComponent
                progress?(.finalScoring(name))
                finals.append(parentScore(path: path, name: name, scorer: scorer, texts: texts))
            }
        }
        let result = EvolveResult(outputPath: output, seed: seed, optimizer: config.optimizer.kind, dimensions: genome.dimensions,
                                  records: records, best: best, bestRecipe: bestText, finals: finals,
                                  seconds: Date().timeIntervalSince(started), peakResidentBytes: peakResidentBytes(), threads: threads,
                                  notes: scorer.notes)
        try writeAtomically(EvolveReport.html(result, configPath: configPath),
                            to: (output as NSString).appendingPathComponent("report.html"))
        return result
    }

    // MARK: - Pieces

    /// Creates DIR (or checks it): a log already there needs `--resume`.
    private func prepareOutput() throws -> String {
        let url = URL(fileURLWithPath: outputPath, relativeTo: URL(fileURLWithPath: workingDirectory, isDirectory: true))
            .standardizedFileURL
        let path = url.path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw EvolveError.output("\(path): --out must be a folder") }
            let log = url.appendingPathComponent("evaluations.jsonl").path
            if FileManager.default.fileExists(atPath: log) && !resume {
                throw EvolveError.output("\(path) already holds evaluations.jsonl: pass --resume to continue that search, or choose "
                    + "another --out")
            }
        } else {
            do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
                throw EvolveError.output("\(path): cannot create the output folder: \(error.localizedDescription)")
            }
        }
        return path
    }

    private func evaluate(_ x: [Double], index: Int, generation: Int, genome: SearchGenome, candidate: CandidateModel,
                          scorer: ObjectiveScorer, header: String, key: String) -> EvaluationRecord {
        let t0 = Date()
        let text = genome.recipeText(x, comment: header + "\ncandidate \(index)")
        do {
            try candidate.load(recipeText: text, file: "candidate-\(index).yml")
            let values = try scorer.score(candidate.model!, cache: candidate.cache!, part: .search)
            let f = scorer.fitness(values)
            return EvaluationRecord(index: index, generation: generation, x: x, parameters: genome.parameters(x),
                                    fitness: f.isFinite ? f : nil, scores: values, seconds: Date().timeIntervalSince(t0),
                                    error: f.isFinite ? nil : "the fitness is not finite", runKey: key)
        } catch {
            return EvaluationRecord(index: index, generation: generation, x: x, parameters: genome.parameters(x), fitness: nil, scores: [],
                                    seconds: Date().timeIntervalSince(t0), error: "\(error)", runKey: key)
        }
    }

    private func bestComment(_ header: String, _ r: EvaluationRecord) -> String {
        header + "\nbest of the search: candidate \(r.index), fitness \(r.fitness.map { "\($0)" } ?? "n/a") on the search part"
    }

    private func finalScore(name: String, role: String, scorer: ObjectiveScorer,
                            model: () throws -> (LanguageModel, KVCache, ObjectiveScorer)) -> FinalScore {
        do {
            let (m, cache, scorer) = try model()
            let search = try scorer.score(m, cache: cache, part: .search)
            let held = try scorer.score(m, cache: cache, part: .heldOut)
            return FinalScore(name: name, role: role, search: search, heldOut: held, searchFitness: scorer.fitness(search),
                              heldOutFitness: scorer.fitness(held), error: nil)
        } catch {
            return FinalScore(name: name, role: role, search: [], heldOut: [], searchFitness: .nan, heldOutFitness: .nan,
                              error: "\(error)")
        }
    }

    /// A parent scored with its own tokenizer: when it turns the texts into the merge's tokens it shares the merge's
    /// windows and reference logits, otherwise its `kl_divergence` values are not comparable (NaN).
    private func parentScore(path: String, name: String, scorer: ObjectiveScorer, texts: [SplitText]) -> FinalScore {
        finalScore(name: name, role: "parent", scorer: scorer) {
            let model = try LanguageModel(path: path, threads: threads)
            let own = try ObjectiveScorer(texts: texts, tokenizer: try TokenizerLoader.load(path: path), vocabSize: model.config.vocabSize,
                                          contextLength: scorer.contextLength, threads: threads)
            let shared = own.sameTokens(as: scorer) && model.config.vocabSize == scorer.vocabularySize
            return (model, model.makeCache(capacity: scorer.contextLength), shared ? scorer : own)
        }
    }

    private func writeAtomically(_ text: String, to path: String) throws {
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw EvolveError.output("\(path): cannot write: \(error.localizedDescription)")
        }
    }
}
