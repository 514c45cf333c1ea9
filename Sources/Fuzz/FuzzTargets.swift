import Checkpoints
import Evaluation
import Foundation
import Inference
import MoE
import Planner
import Recipes
import Tokenization
#if canImport(Glibc)
import Glibc
#endif

/// The five kinds of input a campaign mutates.
public enum FuzzFormat: String, CaseIterable, Sendable, Codable {
    case recipe, safetensors, gguf, tokenizer, config
}

/// How one case ended.
public enum FuzzOutcome: String, CaseIterable, Sendable, Codable {
    /// Every entry point either worked or threw an error with a message.
    case cleanError = "clean-error"
    case success
    /// An input known to be invalid was accepted, or a result was nonsense (NaN written or reported, ids outside
    /// the vocabulary).
    case successOnInvalid = "success-on-invalid"
    /// The process died (a trap, a signal): found only when cases run in a child process.
    case crash
    /// A case ran past its time limit.
    case hang
    /// The process grew past its memory limit.
    case memory = "memory-blow-up"

    /// Outcomes that are defects.
    public var isDefect: Bool { self != .cleanError && self != .success }
}

/// One case's result.
public struct FuzzCaseResult: Sendable, Codable {
    public let index: Int
    public let format: FuzzFormat
    public let mutation: String
    public let certainlyInvalid: Bool
    public var outcome: FuzzOutcome
    public var detail: String
}

/// Builds a case's input from the corpus and drives the real entry points on it, in this process.
public final class FuzzWorkbench {
    public let corpus: FuzzCorpus
    public let seed: UInt64
    public let formats: [FuzzFormat]
    let caseFolder: String
    /// Text scored by the one-window perplexity check.
    static let sampleText = "the cat sat on the mat and the dog ran to the park while it rained in the city of light"

    /// `work` holds the corpus (`corpus/`, shared by workers of one campaign) and this process's case files.
    public init(work: String, seed: UInt64, formats: [FuzzFormat] = FuzzFormat.allCases) throws {
        let corpusFolder = (work as NSString).appendingPathComponent("corpus")
        corpus = try FuzzCorpus(folder: corpusFolder + "-\(getpid())")
        self.seed = seed
        self.formats = formats
        caseFolder = (work as NSString).appendingPathComponent("case-\(getpid())")
    }

    deinit {
        try? FileManager.default.removeItem(atPath: caseFolder)
        try? FileManager.default.removeItem(atPath: corpus.folder)
    }

    public func format(of index: Int) -> FuzzFormat { formats[index % formats.count] }

    /// Writes case `index`'s files into `folder` (emptied first) and returns how to drive them.
    func prepare(_ index: Int, in folder: String) throws -> (FuzzMutation, () throws -> String?) {
        let fm = FileManager.default
        try? fm.removeItem(atPath: folder)
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var r = FuzzRandom(seed: seed, index: index)
        var m = FuzzMutation()
        let rounds = r.pick([1, 1, 1, 2, 3])
        switch format(of: index) {
        case .recipe:
            var text = corpus.recipe(r.pick(corpus.recipes))
            for _ in 0..<rounds {
                if r.chance(0.3) {
                    text = Self.invalidParameter(text, &r, &m)
                } else {
                    text = FuzzMutators.mutateText(text, &r, &m, yaml: true)
                }
            }
            // A parameter made invalid is certainly refused only in an otherwise intact recipe: another round may have
            // moved it where nothing reads it.
            if rounds > 1 { m.certainlyInvalid = false }
            let path = folder + "/recipe.yml"
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            return (m, { [corpus] in try Self.runRecipe(path, corpus: corpus, out: folder + "/out") })

        case .safetensors:
            let model = folder + "/model"
            if r.chance(0.25) {
                try fm.copyItem(atPath: corpus.sharded, toPath: model)
                let index = model + "/model.safetensors.index.json"
                if r.chance(0.7) {
                    let json = try JSONValue.parse(file: index)
                    var mutated = json
                    for _ in 0..<rounds { mutated = FuzzMutators.mutateJSON(mutated, &r, &m) { _, _, _ in false } }
                    // Every tensor must be found where the map says; a changed map cannot be right.
                    if !FuzzMutators.equivalent(json["weight_map"], mutated["weight_map"]) {
                        m.note("the weight map changed", invalid: true)
                    }
                    try mutated.serialized(indent: 1).write(toFile: index, atomically: false, encoding: .utf8)
                } else {
                    let shard = model + "/model-0000\(r.int(1..<3))-of-00002.safetensors"
                    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: shard)))
                    let mutated = FuzzMutators.mutateSafetensors(bytes, &r, &m)
                    if let why = FuzzMutators.safetensorsInvalid(original: bytes, final: mutated) { m.note(why, invalid: true) }
                    try Data(mutated).write(to: URL(fileURLWithPath: shard))
                }
            } else {
                try fm.copyItem(atPath: corpus.models[0], toPath: model)
                let file = model + "/model.safetensors"
                if r.chance(0.04) {
                    try fm.removeItem(atPath: file)
                    switch r.int(0..<3) {
                    case 0: mkfifo(file, 0o600); m.note("model.safetensors is a FIFO", invalid: true)
                    case 1:
                        try fm.createDirectory(atPath: file, withIntermediateDirectories: false)
                        m.note("model.safetensors is a folder", invalid: true)
                    default:
                        try fm.createSymbolicLink(atPath: file, withDestinationPath: "/dev/zero")
                        m.note("model.safetensors links to /dev/zero", invalid: true)
                    }
                } else {
                    let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
                    var bytes = original
                    for _ in 0..<rounds where bytes.count >= 8 {
                        let n = bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                        guard n > 0, n < UInt64(bytes.count - 8) else { break }
                        bytes = FuzzMutators.mutateSafetensors(bytes, &r, &m)
                    }
                    if let why = FuzzMutators.safetensorsInvalid(original: original, final: bytes) { m.note(why, invalid: true) }
                    try Data(bytes).write(to: URL(fileURLWithPath: file))
                }
            }
            let withMerge = r.chance(0.5)
            return (m, { [corpus] in try Self.runModel(model, corpus: corpus, merge: withMerge, out: folder + "/out") })

        case .gguf:
            var bytes = corpus.ggufBytes
            for _ in 0..<rounds { bytes = FuzzMutators.mutateGGUF(bytes, fields: corpus.ggufFields, &r, &m) }
            if let why = FuzzMutators.ggufInvalid(original: corpus.ggufBytes, final: bytes, fields: corpus.ggufFields) {
                m.note(why, invalid: true)
            }
            let path = folder + "/model.gguf"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let withMerge = r.chance(0.3)
            return (m, { [corpus] in try Self.runModel(path, corpus: corpus, merge: withMerge, out: folder + "/out") })

        case .tokenizer:
            let model = folder + "/model"
            try fm.copyItem(atPath: corpus.models[0], toPath: model)
            let path = model + "/tokenizer.json"
            if r.chance(0.7) {
                let original = try JSONValue.parse(file: path)
                var json = original
                for _ in 0..<rounds { json = FuzzMutators.mutateJSON(json, &r, &m) { _, _, _ in false } }
                // Without a model object, or with a model type that is not BPE, there is no tokenizer.
                if json["model"]?.objectValue == nil { m.note("no model object", invalid: true) }
                if let type = json["model"]?["type"], type.stringValue != "BPE" { m.note("model.type is \(type)", invalid: true) }
                try json.serialized(indent: 1).write(toFile: path, atomically: false, encoding: .utf8)
            } else {
                var text = try String(contentsOfFile: path, encoding: .utf8)
                for _ in 0..<rounds { text = FuzzMutators.mutateText(text, &r, &m, yaml: false) }
                try text.write(toFile: path, atomically: false, encoding: .utf8)
            }
            return (m, { try Self.runTokenizer(model) })

        case .config:
            let model = folder + "/model"
            try fm.copyItem(atPath: corpus.models[0], toPath: model)
            let path = model + "/config.json"
            if r.chance(0.75) {
                let original = try JSONValue.parse(file: path)
                var json = original
                for _ in 0..<rounds { json = FuzzMutators.mutateJSON(json, &r, &m) { _, _, _ in false } }
                for key in ["hidden_size", "intermediate_size", "vocab_size", "num_attention_heads", "num_key_value_heads", "head_dim",
                            "num_hidden_layers", "rms_norm_eps", "rope_theta"]
                where !FuzzMutators.same(original[key], json[key]) && Self.configChangeIsInvalid([key], original[key], json[key]) {
                    m.note("\(key) is now \(json[key].map { "\($0)" } ?? "absent")", invalid: true)
                }
                try json.serialized(indent: 2).write(toFile: path, atomically: false, encoding: .utf8)
            } else {
                var text = try String(contentsOfFile: path, encoding: .utf8)
                for _ in 0..<rounds { text = FuzzMutators.mutateText(text, &r, &m, yaml: false) }
                try text.write(toFile: path, atomically: false, encoding: .utf8)
            }
            let withMerge = r.chance(0.5)
            return (m, { [corpus] in try Self.runModel(model, corpus: corpus, merge: withMerge, out: folder + "/out") })
        }
    }

    /// Runs case `index` in this process and classifies it (crashes and hangs need `FuzzCampaign`'s child process).
    public func run(_ index: Int, keep folder: String? = nil, prepared: ((String) -> Void)? = nil) -> FuzzCaseResult {
        let format = format(of: index)
        let dir = folder ?? caseFolder
        var mutation = FuzzMutation()
        let outcome: FuzzOutcome
        var detail = ""
        do {
            let (m, drive) = try prepare(index, in: dir)
            mutation = m
            prepared?(m.description.joined(separator: "; "))
            do {
                if let nonsense = try drive() {
                    outcome = .successOnInvalid
                    detail = nonsense
                } else if m.certainlyInvalid {
                    outcome = .successOnInvalid
                    detail = "every entry point accepted it"
                } else {
                    outcome = .success
                }
            } catch {
                detail = String("\(error)".prefix(300))
                outcome = detail.isEmpty ? .successOnInvalid : .cleanError
                if detail.isEmpty { detail = "an error without a message: \(type(of: error))" }
            }
        } catch {
            return FuzzCaseResult(index: index, format: format, mutation: "could not prepare the case: \(error)", certainlyInvalid: false,
                                  outcome: .cleanError, detail: "")
        }
        if folder == nil { try? FileManager.default.removeItem(atPath: dir) }
        return FuzzCaseResult(index: index, format: format, mutation: mutation.description.joined(separator: "; "),
                              certainlyInvalid: mutation.certainlyInvalid, outcome: outcome, detail: detail)
    }

    // MARK: Entry points

    /// Parse, plan and build a recipe (merge or MoE); a successful build must load and hold only finite values.
    static func runRecipe(_ path: String, corpus: FuzzCorpus, out: String) throws -> String? {
        let text = try RecipeParser.readText(file: path)
        if MoERecipeParser.isMoERecipe(text: text) {
            let recipe = try MoERecipeParser.parse(file: path)
            let plan = try MoEPlanner.plan(recipe, options: MoEOptions(threads: 1, workingDirectory: corpus.folder))
            _ = try MoEBuilder.build(plan, outputPath: out, options: ExecutionOptions(writeModelCard: false))
        } else {
            let recipe = try RecipeParser.parse(file: path)
            let plan = try MergePlanner.plan(recipe, options: PlannerOptions(threads: 1, workingDirectory: corpus.folder))
            _ = try PlanExecutor.execute(plan, outputPath: out, options: ExecutionOptions(writeModelCard: false))
        }
        return try checkOutput(out)
    }

    /// Open a model (folder or GGUF), read every tensor, load it in the engine with its tokenizer and score one
    /// window; optionally merge it with a corpus model first.
    static func runModel(_ path: String, corpus: FuzzCorpus, merge: Bool, out: String) throws -> String? {
        let checkpoint = try Checkpoint.open(path)
        var buffer = [Float]()
        for name in checkpoint.source.tensorNames {
            guard let info = checkpoint.source.info(name), info.dtype.isFloatingPoint else { continue }
            guard info.elementCount <= 1 << 24 else { throw FuzzError("tensor '\(name)' claims \(info.elementCount) elements") }
            buffer = [Float](repeating: 0, count: info.elementCount)
            try buffer.withUnsafeMutableBufferPointer {
                try checkpoint.source.readFloats(name, range: 0..<info.elementCount, into: $0.baseAddress!)
            }
        }
        if merge {
            let text = "merge_method: linear\nmodels:\n  - model: \(path)\n    parameters: {weight: 0.5}\n"
                + "  - model: \(corpus.models[1])\n    parameters: {weight: 0.5}\n"
            let recipe = try RecipeParser.parse(text: text, file: "fuzz-merge.yml")
            let plan = try MergePlanner.plan(recipe, options: PlannerOptions(threads: 1, workingDirectory: corpus.folder))
            _ = try PlanExecutor.execute(plan, outputPath: out, options: ExecutionOptions(writeModelCard: false))
            if let nonsense = try checkOutput(out) { return nonsense }
        }
        let model = try LanguageModel(path: path, threads: 1)
        let tokenizer = try TokenizerLoader.load(path: path)
        return try scoreOneWindow(model, tokenizer)
    }

    /// Load a tokenizer and round-trip texts; ids must lie inside its vocabulary.
    static func runTokenizer(_ path: String) throws -> String? {
        let tokenizer = try TokenizerLoader.load(path: path)
        for text in [sampleText, "héllo wörld 你好 🙂", "<s> special </s>", "", "   \n\t", String(repeating: "ab", count: 300)] {
            let ids = tokenizer.encode(text, addSpecial: true, parseSpecial: true)
            if let bad = ids.first(where: { $0 < 0 || $0 >= tokenizer.vocabularySize }) {
                return "token id \(bad) outside the vocabulary of \(tokenizer.vocabularySize)"
            }
            _ = tokenizer.decode(ids, skipSpecial: false)
        }
        return nil
    }

    /// Scores one window of 8 tokens through `PerplexityEvaluator`; the value must be finite.
    static func scoreOneWindow(_ model: LanguageModel, _ tokenizer: Tokenizer) throws -> String? {
        var tokens = tokenizer.encode(sampleText, addSpecial: true, parseSpecial: false)
        guard tokens.count >= 8 else { throw FuzzError("the sample text has \(tokens.count) tokens") }
        tokens = Array(tokens.prefix(8))
        let evaluator = PerplexityEvaluator(options: PerplexityOptions(contextLength: 8, batchSize: 8, maxChunks: 1,
                                                                       bosToken: tokenizer.addsBOS ? tokenizer.bosID : nil, threads: 1))
        let result = try evaluator.evaluate(tokens: tokens, logits: evaluator.modelLogits(model))
        return try scoreWindowOracle(perplexity: result.perplexity)
    }

    /// What a returned perplexity says: nil when it is a number, else the nonsense it is.
    public static func scoreWindowOracle(perplexity: Double) throws -> String? {
        perplexity.isFinite ? nil : "perplexity \(perplexity) reported as a result"
    }

    /// A finished output must open and hold only finite values (the non-finite policy forbids anything else).
    static func checkOutput(_ out: String) throws -> String? {
        let checkpoint = try Checkpoint.open(out)
        for name in checkpoint.source.tensorNames {
            guard let info = checkpoint.source.info(name), info.dtype.isFloatingPoint else { continue }
            var values = [Float](repeating: 0, count: info.elementCount)
            try values.withUnsafeMutableBufferPointer {
                try checkpoint.source.readFloats(name, range: 0..<info.elementCount, into: $0.baseAddress!)
            }
            if let i = values.firstIndex(where: { !$0.isFinite }) {
                return "the output's '\(name)' holds \(values[i]) at \(i), written without an error"
            }
        }
        return nil
    }

    // MARK: Known-invalid changes

    /// Replaces a numeric parameter in a recipe with a value no method accepts.
    static func invalidParameter(_ text: String, _ r: inout FuzzRandom, _ m: inout FuzzMutation) -> String {
        let keys = ["weight", "density", "t", "lambda", "epsilon", "gamma", "select_topk", "max_iter", "tol"]
        let pattern = "(?<![A-Za-z_])(\(keys.joined(separator: "|"))): *(-?[0-9.]+)"
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return text }
        let ns = text as NSString
        let matches = regex.matches(in: text, range: NSRange(location: 0, length: ns.length))
        guard !matches.isEmpty else { return text }
        let match = r.pick(matches)
        let key = ns.substring(with: match.range(at: 1))
        let value = r.pick(["heavy", ".nan", ".inf", "-.inf", "[]", "{}"])
        m.note("parameter \(key) -> \(value)", invalid: true)
        return ns.replacingCharacters(in: match.range(at: 2), with: value)
    }

    /// Config changes that no loader may accept: sizes that contradict the tensors, missing or non-positive
    /// required numbers, non-finite epsilons.
    static func configChangeIsInvalid(_ path: [String], _ old: JSONValue?, _ new: JSONValue?) -> Bool {
        guard path.count == 1 else { return false }
        switch path[0] {
        case "hidden_size", "intermediate_size", "vocab_size", "num_attention_heads":
            return true
        case "num_key_value_heads":
            return new != nil
        case "head_dim":
            // Absent, it is hidden / heads, which is the same 8.
            guard let new, !new.isNull else { return false }
            return new.intValue != 8
        case "num_hidden_layers":
            // Fewer layers than tensors is accepted (the rest are unused, as transformers does); more is not.
            guard let n = new?.intValue else { return true }   // removed, or not a number
            return n > FuzzCorpus.layers || n <= 0
        case "rms_norm_eps":
            guard let new else { return false }
            guard let d = new.doubleValue else { return !new.isNull }
            return !(d.isFinite && d > 0 && d < 1)
        case "rope_theta":
            guard let new else { return false }
            guard let d = new.doubleValue else { return !new.isNull }
            return !(d.isFinite && d > 0)
        default:
            return false
        }
    }
}

struct FuzzError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
