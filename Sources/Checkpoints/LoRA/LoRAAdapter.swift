import Foundation
import Numerics

/// A PEFT LoRA adapter folder (`adapter_config.json` + `adapter_model.safetensors`), read distrustfully: the config's
/// ranks, alphas and patterns are checked against the factor tensors before anything is applied.
///
/// Tensors are named as PEFT saves them, `base_model.model.<module>.<kind>`: `lora_A.weight` [r, in] and
/// `lora_B.weight` [out, r] for a Linear module (ΔW = scale·B·A), `lora_embedding_A` [r, vocab] and `lora_embedding_B`
/// [dim, r] for an Embedding (ΔW = scale·(B·A)ᵀ), `lora_B.bias` [out] with `lora_bias` (Δb = scale·bias); any other
/// tensor (`modules_to_save`, a saved norm) replaces the model's tensor of that name. scale = alpha/r, or alpha/√r
/// with `use_rslora`; `rank_pattern` / `alpha_pattern` override r and alpha for the modules whose name ends with a key
/// (a regular expression, as PEFT matches it).
public struct LoRAAdapter: @unchecked Sendable {
    /// One low-rank module of the adapter.
    public struct Module: Sendable {
        public enum Kind: Sendable { case linear, embedding }
        /// The module's name in the model, e.g. `model.layers.0.self_attn.q_proj`.
        public let name: String
        public let kind: Kind
        /// Adapter tensor names of the factors and of the optional bias delta.
        public let a: String, b: String, bias: String?
        public let rank: Int
        public let scale: Float
        /// The model tensor the module changes.
        public var weight: String { name + ".weight" }
    }

    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"
    static let prefix = "base_model.model."

    public let folder: String
    public let configPath: String
    public let weights: SafetensorsFile
    public var weightsPath: String { weights.path }
    public let config: JSONObject
    public let modules: [Module]
    /// Model tensor name → adapter tensor that replaces it (`modules_to_save`, full-rank tensors).
    public let replacements: [String: String]

    /// Opens and checks the adapter in `folder`.
    public static func open(_ folder: String) throws -> LoRAAdapter {
        let configPath = (folder as NSString).appendingPathComponent(configFile)
        let weightsPath = (folder as NSString).appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw CheckpointError.invalidConfig(file: configPath, reason: "\(configFile) is missing: \(folder) is not a PEFT adapter")
        }
        guard case let .object(config) = try JSONValue.parse(file: configPath) else {
            throw CheckpointError.invalidConfig(file: configPath, reason: "not a JSON object")
        }
        if !FileManager.default.fileExists(atPath: weightsPath) {
            let bin = (folder as NSString).appendingPathComponent("adapter_model.bin")
            let why = FileManager.default.fileExists(atPath: bin)
                ? "only adapter_model.bin is there, a pickle that Crucible does not load (it can run code); convert it to safetensors"
                : "the adapter's weights are missing"
            throw CheckpointError.invalidConfig(file: weightsPath, reason: why)
        }
        let settings = try LoRASettings(config, file: configPath)
        let weights = try SafetensorsFile(path: weightsPath)
        let (modules, replacements) = try classify(weights, settings: settings)
        return LoRAAdapter(folder: folder, configPath: configPath, weights: weights, config: config, modules: modules,
                           replacements: replacements, settings: settings)
    }

    let settings: LoRASettings

    private init(folder: String, configPath: String, weights: SafetensorsFile, config: JSONObject, modules: [Module],
                 replacements: [String: String], settings: LoRASettings) {
        self.folder = folder
        self.configPath = configPath
        self.weights = weights
        self.config = config
        self.modules = modules
        self.replacements = replacements
        self.settings = settings
    }

    /// Sorts the adapter's tensors into low-rank modules and replacements, checking pairs, ranks and dtypes.
    private static func classify(_ weights: SafetensorsFile, settings: LoRASettings) throws -> ([Module], [String: String]) {
        struct Parts { var a: String?, b: String?, bias: String?, kind: Module.Kind? }
        var parts: [String: Parts] = [:]
        var order: [String] = []
        var replacements: [String: String] = [:]
        let file = weights.path
        func bad(_ tensor: String, _ reason: String) -> CheckpointError {
            .invalidTensor(file: file, tensor: tensor, reason: reason)
        }
        let kinds: [(suffix: String, kind: Module.Kind, role: Int)] = [
            (".lora_A.weight", .linear, 0), (".lora_B.weight", .linear, 1),
            (".lora_embedding_A", .embedding, 0), (".lora_embedding_B", .embedding, 1), (".lora_B.bias", .linear, 2),
        ]
        for name in weights.tensorNames {
            guard name.hasPrefix(prefix) else {
                throw bad(name, "not a PEFT tensor name (expected `\(prefix)<module>…`)")
            }
            guard weights.info(name)!.dtype.isFloatingPoint else { throw bad(name, "is not a float tensor") }
            let stripped = String(name.dropFirst(prefix.count))
            guard let match = kinds.first(where: { stripped.hasSuffix($0.suffix) }) else {
                if stripped.contains("lora_") {
                    throw bad(name, "is a kind of LoRA tensor Crucible does not apply (DoRA magnitudes and other PEFT variants are "
                        + "not supported)")
                }
                replacements[stripped.replacingOccurrences(of: ".modules_to_save.default.", with: ".")] = name
                continue
            }
            let module = String(stripped.dropLast(match.suffix.count))
            if parts[module] == nil { order.append(module); parts[module] = Parts() }
            if match.role != 2 {
                if let kind = parts[module]!.kind, kind != match.kind {
                    throw bad(name, "mixes Linear (lora_A/lora_B) and Embedding (lora_embedding_A/B) factors for one module")
                }
                parts[module]!.kind = match.kind
            }
            switch match.role {
            case 0: parts[module]!.a = name
            case 1: parts[module]!.b = name
            default: parts[module]!.bias = name
            }
        }
        var modules: [Module] = []
        for module in order {
            let p = parts[module]!
            guard let a = p.a, let b = p.b, let kind = p.kind else {
                let have = p.a ?? p.b ?? p.bias!
                throw bad(have, "has no matching \(p.a == nil ? "lora_A" : "lora_B") factor in the adapter")
            }
            let (rank, alpha) = settings.rankAndAlpha(module: module)
            let shapeA = weights.info(a)!.shape, shapeB = weights.info(b)!.shape
            guard shapeA.count == 2, shapeB.count == 2 else {
                throw bad(shapeA.count == 2 ? b : a, "LoRA factors must be matrices; lora_A is \(shapeA), lora_B is \(shapeB)")
            }
            guard shapeA[0] == rank, shapeB[1] == rank else {
                throw bad(shapeA[0] == rank ? b : a,
                          "has rank \(shapeA[0] == rank ? shapeB[1] : shapeA[0]), but \(configFile) gives this module rank \(rank) "
                            + "(lora_A is \(shapeA), lora_B is \(shapeB))")
            }
            if let bias = p.bias, weights.info(bias)!.shape != [shapeB[0]] {
                throw bad(bias, "has shape \(weights.info(bias)!.shape), expected [\(shapeB[0])] (lora_B's rows)")
            }
            let scale = rank == 0 ? 0 : alpha / (settings.useRSLoRA ? Double(rank).squareRoot() : Double(rank))
            guard scale.isFinite else { throw bad(a, "its scale alpha/r = \(alpha)/\(rank) is not finite") }
            modules.append(Module(name: module, kind: kind, a: a, b: b, bias: settings.loraBias ? p.bias : nil, rank: rank,
                                  scale: Float(scale)))
        }
        return (modules, replacements)
    }

    /// The module names `target_modules` selects among `candidates` (list form: the name or a `.`-separated suffix;
    /// string form: a regular expression matching the whole name), or nil when the config does not say exactly
    /// (`all-linear`, `layers_to_transform`, `exclude_modules`).
    func targeted(among candidates: [String]) -> [String]? { settings.targeted(among: candidates) }
}

/// The adapter_config.json keys that decide what is applied, checked.
struct LoRASettings {
    let rank: Int
    let alpha: Double
    let useRSLoRA: Bool
    let loraBias: Bool
    let rankPattern: [(key: String, rank: Int)]
    let alphaPattern: [(key: String, alpha: Double)]
    let targetList: [String]?
    let targetRegex: String?
    let exact: Bool

    init(_ config: JSONObject, file: String) throws {
        func bad(_ reason: String) -> CheckpointError { .invalidConfig(file: file, reason: reason) }
        func flag(_ key: String) throws -> Bool {
            guard let v = config[key], !v.isNull else { return false }
            guard let b = v.boolValue else { throw bad("`\(key)` must be true or false") }
            return b
        }
        if let type = config["peft_type"], !type.isNull, type.stringValue?.uppercased() != "LORA" {
            throw bad("peft_type is \(type.serialized()), but only LORA adapters can be applied")
        }
        if try flag("use_dora") { throw bad("DoRA adapters (`use_dora: true`) are not supported; only plain LoRA is") }
        if try flag("fan_in_fan_out") {
            throw bad("`fan_in_fan_out: true` (GPT-2 style Conv1D weights) is not supported by any architecture Crucible merges")
        }
        guard let r = config["r"]?.intValue, r >= 1, r <= 1 << 16 else { throw bad("`r` must be an integer from 1 to 65536") }
        guard let alpha = config["lora_alpha"]?.doubleValue, alpha.isFinite else { throw bad("`lora_alpha` must be a finite number") }
        rank = r
        self.alpha = alpha
        useRSLoRA = try flag("use_rslora")
        loraBias = try flag("lora_bias")
        func pattern<T>(_ key: String, _ value: (JSONValue) -> T?) throws -> [(String, T)] {
            guard let v = config[key], !v.isNull else { return [] }
            guard let object = v.objectValue else { throw bad("`\(key)` must be an object of module name → value") }
            return try object.pairs.map { name, raw in
                guard let x = value(raw) else { throw bad("`\(key)` gives `\(name)` the invalid value \(raw.serialized())") }
                guard (try? NSRegularExpression(pattern: name)) != nil else {
                    throw bad("`\(key)` key `\(name)` is not a valid regular expression")
                }
                return (name, x)
            }
        }
        rankPattern = try pattern("rank_pattern") { v in v.intValue.flatMap { $0 >= 0 && $0 <= 1 << 16 ? $0 : nil } }
            .map { (key: $0.0, rank: $0.1) }
        alphaPattern = try pattern("alpha_pattern") { v in v.doubleValue.flatMap { $0.isFinite ? $0 : nil } }
            .map { (key: $0.0, alpha: $0.1) }
        switch config["target_modules"] {
        case let .array(items)?:
            targetList = try items.map { item in
                guard let s = item.stringValue else { throw bad("`target_modules` must hold module names") }
                return s
            }
            targetRegex = nil
        case let .string(s)?:
            targetList = nil
            guard s == "all-linear" || (try? NSRegularExpression(pattern: s)) != nil else {
                throw bad("`target_modules` `\(s)` is not a valid regular expression")
            }
            targetRegex = s == "all-linear" ? nil : s
        default:
            targetList = nil
            targetRegex = nil
        }
        let unset = { (key: String) in config[key] == nil || config[key]!.isNull || config[key]!.arrayValue?.isEmpty == true }
        exact = (targetList != nil || targetRegex != nil) && unset("layers_to_transform") && unset("exclude_modules")
            && unset("layer_replication")
    }

    /// PEFT's lookup: the first pattern key `k` with `module` matching `(.*\.)?(k)$` wins.
    func rankAndAlpha(module: String) -> (Int, Double) {
        let r = rankPattern.first { Self.suffixMatch($0.key, module) }?.rank ?? rank
        let a = alphaPattern.first { Self.suffixMatch($0.key, module) }?.alpha ?? alpha
        return (r, a)
    }

    static func suffixMatch(_ key: String, _ name: String) -> Bool {
        fullMatch("(.*\\.)?(\(key))", name)
    }

    static func fullMatch(_ pattern: String, _ name: String) -> Bool {
        guard let re = try? NSRegularExpression(pattern: "^(?:\(pattern))$") else { return false }
        return re.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
    }

    func targeted(among candidates: [String]) -> [String]? {
        guard exact else { return nil }
        if let list = targetList {
            return candidates.filter { name in list.contains { name == $0 || name.hasSuffix("." + $0) } }
        }
        return candidates.filter { Self.fullMatch(targetRegex!, $0) }
    }
}
