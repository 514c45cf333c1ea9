import Checkpoints
import Foundation
import MergeMethods
import Recipes

/// One searched number: a parameter, for one model (per-model parameters) or the whole merge (global ones), in one
/// group of layers, for the tensors of one module filter (nil: tensors no filter matches, or all when there are none).
public struct SearchDimension: Sendable, Equatable {
    public let parameter: String
    /// Index into the config's `models` (nil for a global parameter).
    public let model: Int?
    public let group: Int
    public let filter: String?
    public let lower: Double
    public let upper: Double
    /// A readable name: `weight[b.gguf, layers 0-9, self_attn]`.
    public let label: String

    /// The parameter value at box coordinate `u` ∈ [0, 1].
    public func value(_ u: Double) -> Double { lower + min(max(u, 0), 1) * (upper - lower) }
}

/// The search space of one evolve config and the recipe text of each candidate: a candidate is the config's recipe with
/// the searched parameters written in, as `slices:` of `layer_granularity` layers (or `models:` for a single group),
/// module filters as `{filter, value}` lists. Model references are written as resolved absolute paths, so the text runs
/// from any folder (`best.yml`).
public struct SearchGenome: Sendable {
    public let dimensions: [SearchDimension]
    /// Layer ranges of the groups.
    public let groups: [Range<Int>]
    let methodName: String
    /// Resolved paths of the config's models (the base included) and the base's index.
    let modelPaths: [String]
    let baseIndex: Int?
    let recipe: MergeRecipe
    let filters: [String]

    /// - Parameters:
    ///   - layerCount: the parents' layer count (from the plan of the default recipe).
    ///   - modelPaths: the config's `models` resolved, in order.
    public init(config: EvolveConfig, method: any MergeMethod, layerCount: Int, modelPaths: [String]) throws {
        let recipe = config.recipe
        let models = recipe.models ?? []
        precondition(models.count == modelPaths.count, "one path per model")
        self.recipe = recipe
        self.modelPaths = modelPaths
        methodName = method.name
        let filters = config.search.filters
        self.filters = filters
        let base = recipe.baseModel.flatMap { base in models.firstIndex { $0.model == base } }
        baseIndex = base
        let g = max(1, min(config.search.layerGranularity ?? layerCount, max(layerCount, 1)))
        let groups = stride(from: 0, to: max(layerCount, 1), by: g).map { $0..<min($0 + g, max(layerCount, 1)) }
        self.groups = groups
        let perModel = Set(method.perModelParameters.map(\.name)), global = Set(method.globalParameters.map(\.name))
        // Per-model parameters are searched for every model but a base the method treats as the base.
        let searchedModels = models.indices.filter { $0 != base || method.baseModel == .unused }
        var dims: [SearchDimension] = []
        for (k, range) in groups.enumerated() {
            for p in config.search.parameters {
                let owners: [Int?]
                if perModel.contains(p.name) {
                    owners = searchedModels
                } else if global.contains(p.name) {
                    owners = [nil]
                } else {
                    throw RecipeError.invalidParameter(p.location, name: p.name,
                        reason: "merge method '\(method.name)' has no such parameter; it takes "
                            + (method.perModelParameters + method.globalParameters).map { "`\($0.name)`" }.joined(separator: ", "))
                }
                for owner in owners {
                    for f in filters.map(Optional.some) + [nil] {
                        var label = p.name + "["
                        if let owner { label += URL(fileURLWithPath: modelPaths[owner]).lastPathComponent + ", " }
                        label += groups.count > 1 ? "layers \(range.lowerBound)-\(range.upperBound - 1)" : "all layers"
                        if !filters.isEmpty { label += ", " + (f ?? "other") }
                        dims.append(SearchDimension(parameter: p.name, model: owner, group: k, filter: f, lower: p.lower,
                                                    upper: p.upper, label: label + "]"))
                    }
                }
            }
        }
        dimensions = dims
    }

    /// The recipe text of the candidate at box point `x` (one coordinate per dimension).
    public func recipeText(_ x: [Double], comment: String) -> String {
        precondition(x.count == dimensions.count, "one coordinate per dimension")
        func values(model: Int?, group: Int) -> [String: String] {
            var byName: [String: [(String?, Double)]] = [:]
            for (d, u) in zip(dimensions, x) where d.model == model && d.group == group {
                byName[d.parameter, default: []].append((d.filter, d.value(u)))
            }
            return byName.mapValues { entries in
                if entries.count == 1 && entries[0].0 == nil { return YAMLText.number(entries[0].1) }
                return "[" + entries.map { f, v in
                    (f.map { "{filter: \(YAMLText.string($0)), value: \(YAMLText.number(v))}" } ?? "{value: \(YAMLText.number(v))}")
                }.joined(separator: ", ") + "]"
            }
        }
        return text(comment: comment, perModel: { values(model: $0, group: $1) }, global: { values(model: nil, group: $0) })
    }

    /// The method's default recipe: every searched parameter at the method's default (mergekit's), or `weight` 1 and
    /// `t` 0.5 where the method declares none: equal weights, the midpoint.
    public func defaultRecipeText(method: any MergeMethod, comment: String) -> String {
        let defs = method.perModelParameters + method.globalParameters
        func defaults(_ names: Set<String>) -> [String: String] {
            var out: [String: String] = [:]
            for name in names {
                let v = defs.first { $0.name == name }?.defaultValue?.number ?? (name == "t" ? 0.5 : 1)
                out[name] = YAMLText.number(v)
            }
            return out
        }
        let perModel = Set(dimensions.filter { $0.model != nil }.map(\.parameter))
        let global = Set(dimensions.filter { $0.model == nil }.map(\.parameter))
        return text(comment: comment, single: true, perModel: { model, _ in
            dimensions.contains { $0.model == model } ? defaults(perModel) : [:]
        }, global: { _ in defaults(global) })
    }

    private func text(comment: String, single: Bool = false, perModel: (Int, Int) -> [String: String],
                      global: (Int) -> [String: String]) -> String {
        let models = recipe.models ?? []
        var out = comment.split(separator: "\n", omittingEmptySubsequences: false).map { "# " + $0 }.joined(separator: "\n") + "\n"
        out += "merge_method: \(methodName)\n"
        if let b = baseIndex { out += "base_model: \(YAMLText.string(modelPaths[b]))\n" }
        if let d = recipe.dtype { out += "dtype: \(d.torchName.replacingOccurrences(of: "torch.", with: ""))\n" }
        if let d = recipe.outDType { out += "out_dtype: \(d.torchName.replacingOccurrences(of: "torch.", with: ""))\n" }
        if let seed = recipe.randomSeed { out += "random_seed: \(seed)\n" }
        func parameterBlock(_ fixed: [String: LocatedSetting], _ searched: [String: String], indent: String) -> String {
            var lines: [String: String] = [:]
            for (name, s) in fixed { lines[name] = YAMLText.setting(s.setting) }
            for (name, v) in searched { lines[name] = v }
            guard !lines.isEmpty else { return "" }
            return indent + "parameters:\n" + lines.keys.sorted().map { "\(indent)  \($0): \(lines[$0]!)\n" }.joined()
        }
        if single || groups.count == 1 {
            out += parameterBlock(recipe.parameters, global(0), indent: "")
            out += "models:\n"
            for (i, m) in models.enumerated() {
                out += "  - model: \(YAMLText.string(modelPaths[i]))\n"
                out += parameterBlock(m.parameters, perModel(i, 0), indent: "    ")
            }
            return out
        }
        out += parameterBlock(recipe.parameters, [:], indent: "")
        out += "slices:\n"
        for (k, range) in groups.enumerated() {
            out += "  - sources:\n"
            for (i, m) in models.enumerated() {
                out += "      - model: \(YAMLText.string(modelPaths[i]))\n"
                out += "        layer_range: [\(range.lowerBound), \(range.upperBound)]\n"
                out += parameterBlock(m.parameters, perModel(i, k), indent: "        ")
            }
            out += parameterBlock([:], global(k), indent: "    ")
        }
        return out
    }

    /// Each dimension's label and value at `x`, for evaluations.jsonl and the report.
    public func parameters(_ x: [Double]) -> [(label: String, value: Double)] {
        zip(dimensions, x).map { ($0.label, $0.value($1)) }
    }
}

/// YAML spellings that `RecipeParser` and mergekit (PyYAML) read back exactly.
enum YAMLText {
    /// A double in Swift's shortest round-trip form (always with a point or exponent, so YAML reads a float).
    static func number(_ v: Double) -> String {
        let s = "\(v)"
        return s.contains(".") || s.contains("e") || s.contains("n") || s.contains("i") ? s : s + ".0"
    }

    /// A double-quoted YAML string (JSON's quoting, which YAML's double-quoted style reads the same).
    static func string(_ s: String) -> String { JSONValue.quote(s) }

    static func value(_ v: ParameterValue) -> String {
        switch v {
        case let .number(d): return number(d)
        case let .bool(b): return b ? "true" : "false"
        case let .string(s): return string(s)
        }
    }

    /// A recipe parameter setting in flow style.
    static func setting(_ s: ParameterSetting) -> String {
        switch s {
        case let .scalar(v): return value(v)
        case let .gradient(values): return "[" + values.map(number).joined(separator: ", ") + "]"
        case let .steps(values): return "[" + values.map(value).joined(separator: ", ") + "]"
        case let .conditional(entries):
            return "[" + entries.map { e in
                (e.filter.map { "{filter: \(string($0)), value: " } ?? "{value: ") + setting(e.value) + "}"
            }.joined(separator: ", ") + "]"
        }
    }
}
