import Foundation
import Yams

/// A `crucible evolve` configuration: a merge recipe (`merge_method`, `base_model`, `models`, fixed `parameters`,
/// `dtype`…) whose parameters named under `search:` are searched, the `objective` they are searched for and the
/// `optimizer`. docs/evolve.md documents the schema.
public struct EvolveConfig: Sendable {
    public let file: String
    /// The recipe part, as `RecipeParser` reads it (the evolve sections are not recipe keys).
    public let recipe: MergeRecipe
    public let search: SearchSpace
    public let objective: EvolveObjective
    public let optimizer: OptimizerSettings
    public let warnings: [RecipeWarning]
}

/// What is searched.
public struct SearchSpace: Sendable, Equatable {
    /// Layers per group, each group with its own values (nil: one group for the whole stack).
    public let layerGranularity: Int?
    /// Module filters (`self_attn`, `mlp`): each gets its own values, tensors matching none a value of their own.
    public let filters: [String]
    public let parameters: [SearchedParameter]
    public let location: SourceLocation
}

/// One parameter searched between bounds (per model when the method declares it per model).
public struct SearchedParameter: Sendable, Equatable {
    public let name: String
    public let lower: Double
    public let upper: Double
    public let location: SourceLocation
}

public enum EvolveMetric: String, Sendable, CaseIterable {
    case perplexity
    case bitsPerByte = "bits_per_byte"
    case klDivergence = "kl_divergence"
}

/// One text of the objective.
public struct ObjectiveText: Sendable, Equatable {
    /// The text file, resolved (beside the config first, then the working directory).
    public let path: String
    public let weight: Double
    public let metric: EvolveMetric
    public let maximize: Bool
    /// The model the KL divergence is measured from (`kl_divergence` only).
    public let reference: ModelReference?
    /// Windows of the search part scored per candidate.
    public let windows: Int
    /// Windows of the held-out part scored at the end (default: `windows`).
    public let heldOutWindows: Int
    public let location: SourceLocation
}

public struct EvolveObjective: Sendable, Equatable {
    /// Window length `n_ctx`.
    public let contextLength: Int
    /// The share of each text (its end, cut at a line break) kept out of the search and scored only at the end.
    public let heldOut: Double
    public let texts: [ObjectiveText]
}

public enum OptimizerKind: String, Sendable, CaseIterable {
    case cmaES = "cma_es"
    case random
}

public struct OptimizerSettings: Sendable, Equatable {
    public let kind: OptimizerKind
    /// Candidates per generation (CMA-ES λ; default 4 + ⌊3 ln n⌋).
    public let population: Int?
    /// Initial step size, in units of each parameter's range.
    public let sigma0: Double
    /// Candidates evaluated in all.
    public let budget: Int
    public let seed: UInt64
}

/// Reads `crucible evolve` configurations; every error names `file:line:column`, as recipes' do.
public enum EvolveConfigParser {
    /// The parameters `search:` may name.
    public static let searchable = ["weight", "density", "t", "epsilon", "lambda"]
    static let evolveKeys = ["search", "objective", "optimizer"]

    public static func parse(file: String, workingDirectory: String = FileManager.default.currentDirectoryPath) throws -> EvolveConfig {
        try parse(text: RecipeParser.readText(file: file), file: file, workingDirectory: workingDirectory)
    }

    public static func parse(text: String, file: String,
                             workingDirectory: String = FileManager.default.currentDirectoryPath) throws -> EvolveConfig {
        let reader = NodeReader(file: file)
        let root = try reader.compose(text)
        let top = try reader.entries(of: root, what: "the evolve config")
        let recipe = try RecipeParser.parse(text: text, file: file)
        if let slices = top["slices"] {
            throw RecipeError.unsupported(slices.keyLocation, feature: "`slices:` in an evolve config",
                                          advice: "list the parents under `models:`; `search: layer_granularity` makes the slices")
        }
        // The evolve sections are not recipe keys: drop the recipe parser's unknown-key warnings about them.
        let warnings = recipe.warnings.filter { w in !evolveKeys.contains { w.message.hasPrefix("unknown key `\($0)`") } }
        let d = Decoder(reader: reader, file: file, workingDirectory: workingDirectory)
        guard let search = top["search"] else {
            throw RecipeError.missingKey(top.location, key: "search", context: "the evolve config", suggestion: nil)
        }
        guard let objective = top["objective"] else {
            throw RecipeError.missingKey(top.location, key: "objective", context: "the evolve config", suggestion: nil)
        }
        return EvolveConfig(file: file, recipe: recipe, search: try d.search(search.value), objective: try d.objective(objective.value),
                            optimizer: try top.given("optimizer").map { try d.optimizer($0.value) } ?? d.defaultOptimizer,
                            warnings: warnings + d.warnings)
    }

    /// Decoding helpers over one config's nodes.
    private final class Decoder {
        let reader: NodeReader
        let file: String
        let workingDirectory: String
        var warnings: [RecipeWarning] = []

        init(reader: NodeReader, file: String, workingDirectory: String) {
            self.reader = reader
            self.file = file
            self.workingDirectory = workingDirectory
        }

        var defaultOptimizer: OptimizerSettings { OptimizerSettings(kind: .cmaES, population: nil, sigma0: 0.3, budget: 64, seed: 0) }

        func mapping(_ node: Node, what: String, known: [String]) throws -> YAMLMapping {
            let m = try reader.entries(of: node, what: what)
            warnings += reader.unknownKeyWarnings(m, known: known, context: what)
            return m
        }

        func number(_ entry: YAMLMapping.Entry, expected: String = "a number") throws -> Double {
            switch reader.resolve(entry.value) {
            case .int(let i)?: return Double(i)
            case .float(let d)? where d.isFinite: return d
            default:
                throw RecipeError.wrongType(reader.location(entry.value), key: entry.key, expected: expected,
                                            found: reader.describe(entry.value))
            }
        }

        func integer(_ entry: YAMLMapping.Entry, minimum: Int) throws -> Int {
            guard case .int(let i)? = reader.resolve(entry.value) else {
                throw RecipeError.wrongType(reader.location(entry.value), key: entry.key, expected: "a whole number",
                                            found: reader.describe(entry.value))
            }
            guard i >= minimum else {
                throw RecipeError.invalidValue(reader.location(entry.value), key: entry.key,
                                               reason: "expected at least \(minimum), found \(i)")
            }
            return i
        }

        func choice<T: RawRepresentable & CaseIterable>(_ entry: YAMLMapping.Entry, _: T.Type) throws -> T where T.RawValue == String {
            let names = T.allCases.map(\.rawValue)
            guard let text = reader.text(entry.value), let value = T(rawValue: text) else {
                let found = reader.text(entry.value).map { text in
                    "`\(text)`" + (closestName(to: text, among: names).map { " (did you mean `\($0)`?)" } ?? "")
                }
                throw RecipeError.wrongType(reader.location(entry.value), key: entry.key,
                                            expected: "one of " + names.map { "`\($0)`" }.joined(separator: ", "),
                                            found: found ?? reader.describe(entry.value))
            }
            return value
        }

        func search(_ node: Node) throws -> SearchSpace {
            let m = try mapping(node, what: "`search`", known: ["layer_granularity", "filters", "parameters"])
            let granularity = try m.given("layer_granularity").map { try integer($0, minimum: 1) }
            var filters: [String] = []
            if let f = m.given("filters") {
                guard case .sequence(let items) = f.value else {
                    throw RecipeError.wrongType(reader.location(f.value), key: "filters", expected: "a list of tensor-name filters "
                        + "such as `[self_attn, mlp]`", found: reader.describe(f.value))
                }
                for item in items {
                    guard let text = reader.text(item), !text.isEmpty else {
                        throw RecipeError.wrongType(reader.location(item), key: "filters", expected: "a filter text such as `self_attn`",
                                                    found: reader.describe(item))
                    }
                    guard !filters.contains(text) else {
                        throw RecipeError.invalidValue(reader.location(item), key: "filters", reason: "`\(text)` is listed twice")
                    }
                    filters.append(text)
                }
            }
            guard let p = m["parameters"] else {
                throw RecipeError.missingKey(m.location, key: "parameters", context: "`search`", suggestion: nil)
            }
            let pm = try reader.entries(of: p.value, what: "`search.parameters`")
            guard !pm.entries.isEmpty else {
                throw RecipeError.wrongType(reader.location(p.value), key: "parameters",
                                            expected: "at least one parameter to search (`weight: {min: 0, max: 1}`)", found: "none")
            }
            var parameters: [SearchedParameter] = []
            for entry in pm.entries {
                guard EvolveConfigParser.searchable.contains(entry.key) else {
                    throw RecipeError.invalidParameter(entry.keyLocation, name: entry.key,
                        reason: "cannot be searched; searchable: " + EvolveConfigParser.searchable.joined(separator: ", ")
                            + (closestName(to: entry.key, among: EvolveConfigParser.searchable).map { " (did you mean `\($0)`?)" } ?? ""))
                }
                let bounds = try mapping(entry.value, what: "the bounds of `\(entry.key)`", known: ["min", "max"])
                guard let lo = bounds["min"] else {
                    throw RecipeError.missingKey(bounds.location, key: "min", context: "the bounds of `\(entry.key)`", suggestion: nil)
                }
                guard let hi = bounds["max"] else {
                    throw RecipeError.missingKey(bounds.location, key: "max", context: "the bounds of `\(entry.key)`", suggestion: nil)
                }
                let lower = try number(lo), upper = try number(hi)
                guard lower < upper else {
                    throw RecipeError.invalidValue(reader.location(hi.value), key: "max",
                                                   reason: "must be above `min` (\(lower)), found \(upper)")
                }
                parameters.append(SearchedParameter(name: entry.key, lower: lower, upper: upper, location: entry.keyLocation))
            }
            return SearchSpace(layerGranularity: granularity, filters: filters, parameters: parameters, location: m.location)
        }

        func objective(_ node: Node) throws -> EvolveObjective {
            let m = try mapping(node, what: "`objective`", known: ["context", "held_out", "texts"])
            let context = try m.given("context").map { try integer($0, minimum: 4) } ?? 512
            var heldOut = 0.25
            if let h = m.given("held_out") {
                heldOut = try number(h, expected: "a share of each text between 0 and 1, such as 0.25")
                guard heldOut > 0, heldOut < 1 else {
                    throw RecipeError.invalidValue(reader.location(h.value), key: "held_out",
                                                   reason: "expected a share strictly between 0 and 1 (the end of each text kept out "
                                                       + "of the search), found \(heldOut)")
                }
            }
            guard let t = m["texts"] else {
                throw RecipeError.missingKey(m.location, key: "texts", context: "`objective`", suggestion: nil)
            }
            guard case .sequence(let items) = t.value, items.count > 0 else {
                throw RecipeError.wrongType(reader.location(t.value), key: "texts",
                                            expected: "a non-empty list of texts (`- path: eval.txt`)", found: reader.describe(t.value))
            }
            return EvolveObjective(contextLength: context, heldOut: heldOut, texts: try items.map { try text($0) })
        }

        func text(_ node: Node) throws -> ObjectiveText {
            let m = try mapping(node, what: "an objective text",
                                known: ["path", "weight", "metric", "goal", "reference", "windows", "held_out_windows"])
            guard let p = m["path"] else { throw RecipeError.missingKey(m.location, key: "path", context: "this text", suggestion: nil) }
            guard let raw = reader.rawText(p.value), !raw.isEmpty else {
                throw RecipeError.wrongType(reader.location(p.value), key: "path", expected: "a text file's path",
                                            found: reader.describe(p.value))
            }
            let path = try resolveFile(raw, at: reader.location(p.value))
            let weight = try m.given("weight").map { try number($0) } ?? 1
            guard weight > 0 else {
                throw RecipeError.invalidValue(reader.location(m["weight"]!.value), key: "weight", reason: "expected a positive number")
            }
            let metric = try m.given("metric").map { try choice($0, EvolveMetric.self) } ?? .perplexity
            var maximize = false
            if let g = m.given("goal") {
                switch reader.text(g.value) {
                case "minimize": maximize = false
                case "maximize": maximize = true
                default:
                    throw RecipeError.wrongType(reader.location(g.value), key: "goal", expected: "`minimize` or `maximize`",
                                                found: reader.describe(g.value))
                }
            }
            var reference: ModelReference? = nil
            if let r = m.given("reference") {
                guard metric == .klDivergence else {
                    throw RecipeError.invalidValue(r.keyLocation, key: "reference",
                                                   reason: "only `metric: kl_divergence` uses a reference model")
                }
                reference = try reader.modelReference(r.value, key: "reference", warnings: &warnings)
            } else if metric == .klDivergence {
                throw RecipeError.missingKey(m.location, key: "reference", context: "a `kl_divergence` text (the model to stay close to)",
                                             suggestion: nil)
            }
            let windows = try m.given("windows").map { try integer($0, minimum: 1) } ?? 8
            let heldOutWindows = try m.given("held_out_windows").map { try integer($0, minimum: 1) } ?? windows
            return ObjectiveText(path: path, weight: weight, metric: metric, maximize: maximize, reference: reference, windows: windows,
                                 heldOutWindows: heldOutWindows, location: m.location)
        }

        /// A text path: beside the config first, then in the working directory.
        func resolveFile(_ raw: String, at location: SourceLocation) throws -> String {
            let expanded = (raw as NSString).expandingTildeInPath
            let cwd = URL(fileURLWithPath: workingDirectory, isDirectory: true)
            let configFolder = URL(fileURLWithPath: file, relativeTo: cwd).deletingLastPathComponent()
            let candidates = expanded.hasPrefix("/") ? [expanded] : [
                URL(fileURLWithPath: expanded, relativeTo: configFolder).standardizedFileURL.path,
                URL(fileURLWithPath: expanded, relativeTo: cwd).standardizedFileURL.path,
            ]
            for c in candidates where FileManager.default.isReadableFile(atPath: c) { return c }
            throw RecipeError.invalidValue(location, key: "path", reason: "no readable file `\(raw)`; looked in: "
                + candidates.joined(separator: ", "))
        }

        func optimizer(_ node: Node) throws -> OptimizerSettings {
            let m = try mapping(node, what: "`optimizer`", known: ["method", "population", "sigma0", "budget", "seed"])
            let kind = try m.given("method").map { try choice($0, OptimizerKind.self) } ?? .cmaES
            let population = try m.given("population").map { try integer($0, minimum: 2) }
            var sigma0 = 0.3
            if let s = m.given("sigma0") {
                sigma0 = try number(s)
                guard sigma0 > 0, sigma0 <= 1 else {
                    throw RecipeError.invalidValue(reader.location(s.value), key: "sigma0",
                                                   reason: "expected a step size above 0 and at most 1 (a share of each "
                                                       + "parameter's range), found \(sigma0)")
                }
            }
            let budget = try m.given("budget").map { try integer($0, minimum: 1) } ?? 64
            let seed = try m.given("seed").map { UInt64(try integer($0, minimum: 0)) } ?? 0
            return OptimizerSettings(kind: kind, population: population, sigma0: sigma0, budget: budget, seed: seed)
        }
    }
}
