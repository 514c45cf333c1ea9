import Foundation
import Host

/// Finds the files a recipe's model reference names, without any network access.
///
/// Order: a local path (absolute; or relative to the recipe's folder first, then the working directory; `~` expanded)
/// that is a folder or a `.safetensors` / `.gguf` file; otherwise, when the reference looks like a hub id
/// `org/name[@revision]`, the snapshot in the Hugging Face cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`, as `huggingface_hub` lays it out). Nothing is downloaded: a missing model is an error that
/// says where it looked and how to fetch it.
public struct ModelResolver: Sendable {
    public let recipeFolder: String
    public let workingDirectory: String
    public let environment: [String: String]
    /// Names that stand for folders before any lookup: the stages of a multi-stage recipe (name → output folder).
    public var aliases: [String: String] = [:]

    public init(recipeFolder: String, workingDirectory: String = FileManager.default.currentDirectoryPath,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.recipeFolder = recipeFolder
        self.workingDirectory = workingDirectory
        self.environment = environment
    }

    /// A resolver for a parsed recipe: relative references are looked up beside the recipe file first.
    public init(recipe: MergeRecipe, workingDirectory: String = FileManager.default.currentDirectoryPath,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.init(recipeFile: recipe.file, workingDirectory: workingDirectory, environment: environment)
    }

    /// A resolver for the recipe file at `recipeFile` (any recipe kind): relative references are looked up beside it first.
    public init(recipeFile: String, workingDirectory: String = FileManager.default.currentDirectoryPath,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        let folder = URL(fileURLWithPath: recipeFile, relativeTo: URL(fileURLWithPath: workingDirectory, isDirectory: true))
            .deletingLastPathComponent().standardizedFileURL.path
        self.init(recipeFolder: folder, workingDirectory: workingDirectory, environment: environment)
    }

    /// The Hugging Face hub cache folder this resolver searches, chosen as `huggingface_hub` does: `$HF_HUB_CACHE`
    /// (or its older name `$HUGGINGFACE_HUB_CACHE`), else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`,
    /// else `~/.cache/huggingface/hub`.
    public var hubCacheFolder: String {
        if let cache = nonEmpty("HF_HUB_CACHE") ?? nonEmpty("HUGGINGFACE_HUB_CACHE") { return expandTilde(cache) }
        if let home = nonEmpty("HF_HOME") { return (expandTilde(home) as NSString).appendingPathComponent("hub") }
        let cacheHome = nonEmpty("XDG_CACHE_HOME").map(expandTilde) ?? (homeFolder as NSString).appendingPathComponent(".cache")
        return ((cacheHome as NSString).appendingPathComponent("huggingface") as NSString).appendingPathComponent("hub")
    }

    /// The path of the model folder or file `ref` names. A LoRA reference (`model+adapter`) is refused here: only merge
    /// and MoE recipes apply adapters, through `resolveWithAdapter`.
    public func resolve(_ ref: ModelReference) throws -> String {
        do {
            return try resolveModel(ref)
        } catch let e as RecipeError {
            guard case .modelNotFound = e, ref.raw.contains("+") else { throw e }
            throw RecipeError.unsupported(ref.location, feature: "LoRA references (`model+adapter`) outside merge and MoE recipes",
                                          advice: "merge the adapter first (`crucible merge` with a passthrough recipe naming "
                                              + "`\(ref.raw)`) and name the merged folder")
        }
    }

    /// A reference as resolved: the model's path and, for mergekit's `model+adapter`, the PEFT adapter's folder.
    public struct Resolved: Sendable, Equatable {
        public let model: String
        public let adapter: String?
    }

    /// Resolves `ref`, reading `model+adapter` as mergekit does: a PEFT LoRA adapter (a folder with
    /// `adapter_config.json`, local or in the hub cache) applied to the model. A local path that itself contains `+`
    /// wins over that reading.
    public func resolveWithAdapter(_ ref: ModelReference) throws -> Resolved {
        guard ref.raw.contains("+") else { return Resolved(model: try resolveModel(ref), adapter: nil) }
        if let whole = try? resolveModel(ref) { return Resolved(model: whole, adapter: nil) }
        let parts = ref.raw.split(separator: "+", omittingEmptySubsequences: false).map {
            String($0).trimmingCharacters(in: .whitespaces)
        }
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw RecipeError.invalidModel(ref.location, reference: ref.raw,
                reason: "a LoRA reference is `MODEL+ADAPTER`, one model and one adapter joined by a single `+`")
        }
        let model = try resolveModel(ModelReference(raw: parts[0], location: ref.location))
        return Resolved(model: model, adapter: try resolveAdapter(parts[1], location: ref.location))
    }

    /// The folder of a PEFT adapter: a local folder holding `adapter_config.json`, else the hub cache's snapshot.
    private func resolveAdapter(_ raw: String, location: SourceLocation) throws -> String {
        var searched: [String] = []
        for candidate in localCandidates(raw) {
            searched.append(candidate)
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: candidate, isDirectory: &isFolder) else { continue }
            guard isFolder.boolValue else {
                throw RecipeError.invalidModel(location, reference: raw,
                    reason: "\(candidate) is a file; a LoRA adapter is a folder with adapter_config.json and adapter_model.safetensors")
            }
            return URL(fileURLWithPath: candidate).standardizedFileURL.path
        }
        if let hub = HubID(raw) {
            let repoFolder = (hubCacheFolder as NSString).appendingPathComponent("models--" + hub.org + "--" + hub.name)
            searched.append(repoFolder)
            if let snapshot = snapshot(in: repoFolder, revision: hub.revision) { return snapshot }
        }
        throw RecipeError.modelNotFound(location, reference: raw, searched: searched,
            hint: "the part after `+` names a PEFT LoRA adapter: a folder with adapter_config.json and adapter_model.safetensors, "
                + "relative to the recipe's folder or the working directory, or a hub id fetched with `huggingface-cli download ORG/NAME`")
    }

    /// The path of the model folder or file `ref` names, `+` read literally.
    private func resolveModel(_ ref: ModelReference) throws -> String {
        let raw = ref.raw
        if let alias = aliases[raw] { return alias }
        var searched: [String] = []

        for candidate in localCandidates(raw) {
            searched.append(candidate)
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: candidate, isDirectory: &isFolder) else { continue }
            if isFolder.boolValue { return URL(fileURLWithPath: candidate).standardizedFileURL.path }
            let lower = candidate.lowercased()
            if lower.hasSuffix(".safetensors") || lower.hasSuffix(".gguf") {
                return URL(fileURLWithPath: candidate).standardizedFileURL.path }
            throw RecipeError.invalidModel(ref.location, reference: raw,
                reason: "\(candidate) is a file Crucible cannot load: expected a model folder (config.json + *.safetensors), a "
                    + ".safetensors file or a .gguf file")
        }

        if let hub = HubID(raw) {
            let repoFolder = (hubCacheFolder as NSString).appendingPathComponent("models--" + hub.org + "--" + hub.name)
            searched.append(repoFolder)
            if let snapshot = snapshot(in: repoFolder, revision: hub.revision) { return snapshot }
            let revisionFlag = hub.revision.map { " --revision \($0)" } ?? ""
            throw RecipeError.modelNotFound(ref.location, reference: raw, searched: searched,
                hint: "Download it with `huggingface-cli download \(hub.org)/\(hub.name)\(revisionFlag)` (set HF_HOME or HF_HUB_CACHE if "
                    + "your cache is elsewhere), "
                    + "or give a local path to a model folder")
        }
        throw RecipeError.modelNotFound(ref.location, reference: raw, searched: searched,
            hint: "Give the path of a model folder (config.json + *.safetensors), a .safetensors or a .gguf file, relative to the "
                + "recipe's folder "
                + "or the working directory, or a hub id `ORG/NAME` fetched with `huggingface-cli download ORG/NAME`")
    }

    // MARK: - Local paths

    private func localCandidates(_ raw: String) -> [String] {
        let expanded = expandTilde(raw)
        if expanded.hasPrefix("/") { return [expanded] }
        var candidates = [(recipeFolder as NSString).appendingPathComponent(expanded),
                          (workingDirectory as NSString).appendingPathComponent(expanded)]
        if candidates[0] == candidates[1] { candidates.removeLast() }
        return candidates
    }

    private var homeFolder: String { nonEmpty("HOME") ?? NSHomeDirectory() }

    private func expandTilde(_ path: String) -> String {
        if path == "~" { return homeFolder }
        if path.hasPrefix("~/") { return (homeFolder as NSString).appendingPathComponent(String(path.dropFirst(2))) }
        return path
    }

    private func nonEmpty(_ key: String) -> String? {
        guard let value = environment[key], !value.isEmpty else { return nil }
        return value
    }

    // MARK: - Hugging Face cache

    /// `org/name[@revision]` with hub-legal characters; a path such as `./x/y` or `a/b/c` is not one.
    /// `snapshots/<commit>` for the revision: a snapshot of that name, else the commit `refs/<revision>` names.
    /// Without a revision: `refs/main`, else the only snapshot, else the most recently modified one.
    private func snapshot(in repoFolder: String, revision: String?) -> String? {
        let snapshots = (repoFolder as NSString).appendingPathComponent("snapshots")
        func existing(_ commit: String) -> String? {
            let path = (snapshots as NSString).appendingPathComponent(commit)
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue ? path : nil
        }
        func ref(_ name: String) -> String? {
            let path = ((repoFolder as NSString).appendingPathComponent("refs") as NSString).appendingPathComponent(name)
            guard let data = try? RegularFile.read(path, maxBytes: 4096), let text = String(data: data, encoding: .utf8) else { return nil }
            let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
            return commit.isEmpty || commit.contains("/") ? nil : commit
        }
        if let revision {
            if !revision.contains("/"), let path = existing(revision) { return path }
            return ref(revision).flatMap(existing)
        }
        if let path = ref("main").flatMap(existing) { return path }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: snapshots)) ?? [])
            .filter { !$0.hasPrefix(".") && existing($0) != nil }
        if names.count == 1 { return existing(names[0]) }
        let dated = names.compactMap { name -> (String, Date)? in
            let path = (snapshots as NSString).appendingPathComponent(name)
            guard let date = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date else { return nil }
            return (path, date)
        }
        return dated.max { $0.1 < $1.1 }?.0
    }
}

/// A Hugging Face hub id, `org/name` with an optional `@revision`, as a recipe writes it.
public struct HubID: Sendable, Equatable {
    public let org: String, name: String, revision: String?
    public init?(_ raw: String) {
        var id = Substring(raw)
        var revision: String?
        if let at = raw.firstIndex(of: "@") {
            revision = String(raw[raw.index(after: at)...])
            id = raw[..<at]
            if revision?.isEmpty == true { return nil }
        }
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        func legal(_ s: Substring) -> Bool {
            guard let first = s.first, first.isLetter || first.isNumber else { return false }
            return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") } && !s.contains("..")
        }
        guard legal(parts[0]), legal(parts[1]) else { return nil }
        org = String(parts[0]); name = String(parts[1]); self.revision = revision
    }
}
