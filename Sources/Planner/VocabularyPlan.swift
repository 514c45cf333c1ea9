import Checkpoints
import Foundation
import Host
import Recipes
import Tokenization

/// The output vocabulary of a merge with a tokenizer setting (`tokenizer_source:` / `tokenizer:`), built at plan time
/// as mergekit 0.1.5 builds it (docs/tokenizer-merging.md): the output tokenizer, each parent's permutation into it,
/// and the recipe's `tokens:` entries resolved against it.
public struct VocabularyPlan: Sendable {
    /// One token that the output vocabulary gained over its starting tokenizer, and who brought it.
    public struct AddedToken: Sendable, Equatable {
        public let token: String
        public let id: Int
        /// The parent it came from, or nil for a `tokens:` key no parent has.
        public let model: Int?
    }

    /// A `tokens:` entry with the output id of its token, and the stored row `{kind: model_token, token: S}` names.
    public struct Override: Sendable {
        public let setting: TokenSetting
        public let id: Int
        /// The source model's index, when the entry names one.
        public let model: Int?
        /// For `model_token`: the row of the source model's stored tensor.
        public let storedRow: Int?
    }

    /// The output tokenizer (tokenizer.json).
    public let tokenizer: TokenizerVocabularyFile
    /// The folder whose tokenizer_config.json, chat template and generation_config.json go with it (nil for a GGUF).
    public let donorFolder: String?
    /// Index into `MergePlan.models` of the donor when it is a merged model.
    public let donorModel: Int?
    /// Embedding rows of the output: the token count, rounded up to `pad_to_multiple_of`.
    public let rowCount: Int
    /// Per merged model: output id → row of that model's stored tensor, or -1 when it lacks the token.
    public let permutations: [[Int32]]
    /// The recipe's base model (nil without one): its row wins when several parents (not all) have a token.
    public let base: Int?
    public let added: [AddedToken]
    public let overrides: [Override]

    public var tokenCount: Int { tokenizer.count }
    public func override(forID id: Int) -> Override? { overrides.first { $0.id == id } }
}

extension VocabularyPlan {
    /// Builds the vocabulary for `recipe`'s tokenizer settings over the opened `models` (`refs[i]` opened as `models[i]`).
    static func build(settings: TokenizerSettings, recipe: MergeRecipe, refs: [ModelReference], models: [PlannedModel],
                      resolver: ModelResolver, warnings: inout [String]) throws -> VocabularyPlan {
        let baseIndex = recipe.baseModel.flatMap { refs.firstIndex(of: $0) }
        let starting = baseIndex ?? 0
        // Each parent's tokens below its config's vocab_size count; a parent whose tokenizer cannot be read is taken to
        // share the starting model's (mergekit does the same, with a warning).
        let sizes = models.map(vocabularySize)
        let startVocabulary = try loadVocabulary(models[starting]).stripped(to: sizes[starting])
        var vocabularies: [TokenizerVocabularyFile] = []
        for (i, m) in models.enumerated() {
            if i == starting { vocabularies.append(startVocabulary); continue }
            do { vocabularies.append(try loadVocabulary(m)) } catch {
                warnings.append("\(m.reference): its tokenizer cannot be read (\(error)); taken to be the same as "
                    + "\(models[starting].reference)'s")
                vocabularies.append(startVocabulary)
            }
        }

        var output: TokenizerVocabularyFile
        var donorFolder = models[starting].folder
        var donorModel: Int? = starting
        var added: [AddedToken] = []
        switch settings.source {
        case .base:
            output = startVocabulary
        case let .model(ref):
            if let i = refs.firstIndex(of: ref) {
                output = try loadVocabulary(models[i])
                donorFolder = models[i].folder
                donorModel = i
            } else {
                let path = try resolver.resolve(ref)
                output = try loadVocabulary(path: path, location: ref.location)
                donorFolder = isFolder(path) ? path : nil
                donorModel = nil
            }
        case .union:
            output = startVocabulary
            // The starting model first, then the others in recipe order; each parent's tokens by id.
            let order = [starting] + models.indices.filter { $0 != starting }
            let addedAnywhere = Set(order.flatMap { m in vocabularies[m].added.filter { $0.id < sizes[m] }.map { Array($0.content.utf8) } })
            // (1) ordinary vocabulary tokens the base lacks become added tokens matched by their literal text.
            for m in order {
                let v = vocabularies[m]
                for id in 0..<min(v.count, sizes[m]) where !v.isAdded(id) {
                    let token = v.tokens[id]
                    guard !output.contains(token), !addedAnywhere.contains(Array(token.utf8)) else { continue }
                    added.append(AddedToken(token: token, id: output.append(.plain(token)), model: m))
                }
            }
            // (2) added tokens, with their flags; the first definition wins.
            var firstDefinition: [[UInt8]: (AddedTokenEntry, Int)] = [:]
            for m in order {
                for entry in vocabularies[m].added where entry.id < sizes[m] {
                    let key = Array(entry.content.utf8)
                    if let (first, by) = firstDefinition[key] {
                        if !first.sameFlags(as: entry) {
                            warnings.append("token `\(entry.content)` is an added token of \(models[by].reference) and of "
                                + "\(models[m].reference) with different flags; the first (\(models[by].reference)) is kept")
                        }
                        continue
                    }
                    firstDefinition[key] = (entry, m)
                    // An ordinary token the output already has becomes an added one under its id, as the tokenizers
                    // library registers it.
                    guard !output.contains(entry.content) else { output.markAdded(entry); continue }
                    added.append(AddedToken(token: entry.content, id: output.append(entry), model: m))
                }
            }
        }
        // `tokens:` keys the vocabulary lacks are appended in recipe order.
        for s in settings.tokens where !output.contains(s.token) {
            added.append(AddedToken(token: s.token, id: output.append(.plain(s.token)), model: nil))
        }

        let permutations = models.indices.map { m -> [Int32] in
            let v = vocabularies[m]
            return output.tokens.map { token in
                guard let id = v.id(of: token), id < sizes[m] else { return -1 }
                return Int32(id)
            }
        }
        var rows = output.count
        if let pad = settings.padToMultipleOf, rows % pad != 0 { rows = (rows / pad + 1) * pad }
        if settings.padToMultipleOf == nil, let base = baseIndex ?? Optional(starting), sizes[base] > rows {
            warnings.append("the vocabulary has \(output.count) tokens, so the embedding and lm_head shrink from "
                + "\(models[base].reference)'s \(sizes[base]) rows to \(output.count) (as mergekit does); set "
                + "`tokenizer: {pad_to_multiple_of: N}` to keep a padded size")
        }
        let overrides = try settings.tokens.map { s in
            try resolveOverride(s, output: output, refs: refs, models: models, vocabularies: vocabularies, permutations: permutations)
        }
        return VocabularyPlan(tokenizer: output, donorFolder: donorFolder, donorModel: donorModel, rowCount: rows,
                              permutations: permutations, base: baseIndex, added: added, overrides: overrides)
    }

    /// A `tokens:` entry checked against the merge: its source must be a merged model (named as in the recipe), a plain
    /// model source must have the token, a `model_token` by name must exist in that model, and an entry without a source
    /// is only valid while every model has the token and it is not forced.
    private static func resolveOverride(_ s: TokenSetting, output: TokenizerVocabularyFile, refs: [ModelReference], models: [PlannedModel],
                                        vocabularies: [TokenizerVocabularyFile], permutations: [[Int32]]) throws -> Override {
        let id = output.id(of: s.token)!
        let where_ = "`tokenizer.tokens` entry `\(s.token)`"
        guard let source = s.source else {
            if s.force || permutations.contains(where: { $0[id] < 0 }) {
                let lacking = models.indices.filter { permutations[$0][id] < 0 }.map { "\(models[$0].reference)" }
                throw PlanError.recipe(s.location, "the \(where_) has no `source`, but "
                    + (s.force ? "`force: true` needs one"
                        : "the token is missing from \(lacking.joined(separator: ", ")), which need(s) a row for it")
                    + "; give `source: MODEL`, `source: {kind: zero}` or `source: {kind: model_token, model: MODEL, token: …}`")
            }
            return Override(setting: s, id: id, model: nil, storedRow: nil)
        }
        guard let ref = source.model else { return Override(setting: s, id: id, model: nil, storedRow: nil) }
        guard let m = refs.firstIndex(of: ref) else {
            throw PlanError.recipe(ref.location, "the \(where_) takes its row from \(ref), which is not one of the merged models ("
                + refs.map(\.raw).joined(separator: ", ") + "); name a merged model exactly as the recipe writes it")
        }
        switch source {
        case .model:
            guard permutations[m][id] >= 0 else {
                throw PlanError.recipe(ref.location, "the \(where_) takes the row of `\(s.token)` from \(ref), which does not have "
                    + "that token; use `{kind: model_token, model: \(ref), token: …}` to copy the row of another token")
            }
            return Override(setting: s, id: id, model: m, storedRow: Int(permutations[m][id]))
        case let .modelToken(_, token):
            guard let row = vocabularies[m].id(of: token) else {
                throw PlanError.recipe(ref.location, "the \(where_): \(ref) has no token `\(token)` in its tokenizer")
            }
            return Override(setting: s, id: id, model: m, storedRow: row)
        case let .modelTokenID(_, row):
            return Override(setting: s, id: id, model: m, storedRow: row)
        case .zero:
            return Override(setting: s, id: id, model: nil, storedRow: nil)
        }
    }

    /// A model's vocabulary size: its config's `vocab_size`, else its embedding's row count, else its tokenizer's length.
    static func vocabularySize(_ m: PlannedModel) -> Int {
        if let n = m.config["vocab_size"]?.intValue, n > 0 { return n }
        if let embed = m.architecture.preWeights.first(where: \.isEmbed), let info = m.source.info(embed.name) { return info.rowCount }
        return Int.max
    }

    static func loadVocabulary(_ m: PlannedModel) throws -> TokenizerVocabularyFile {
        // A stage of a multi-stage recipe that is not built yet (possibly with an adapter on it): its planned tokenizer.
        let source = (m.source as? LoRASource)?.base ?? m.source
        if let planned = (source as? PlannedOutput.Source)?.tokenizer { return planned }
        do { return try TokenizerVocabularyFile.load(source: m.source, path: m.path) } catch {
            throw PlanError.model(m.path, "cannot read its tokenizer for the vocabulary merge: \(error)")
        }
    }

    /// The tokenizer of a `tokenizer_source` that is not merged: a model folder with tokenizer.json, or a GGUF file.
    static func loadVocabulary(path: String, location: SourceLocation) throws -> TokenizerVocabularyFile {
        do {
            if isFolder(path) {
                let file = (path as NSString).appendingPathComponent("tokenizer.json")
                guard let text = String(data: try RegularFile.read(file), encoding: .utf8) else {
                    throw TokenizerError.fileNotFound(path: file)
                }
                return try TokenizerVocabularyFile(text: text, file: file)
            }
            let checkpoint = try Checkpoint.open(path)
            return try TokenizerVocabularyFile.load(source: checkpoint.source, path: path)
        } catch {
            throw PlanError.recipe(location, "tokenizer_source \(path): cannot read its tokenizer: \(error)")
        }
    }

    private static func isFolder(_ path: String) -> Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &folder) && folder.boolValue
    }
}
