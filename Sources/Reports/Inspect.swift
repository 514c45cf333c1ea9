import ArchitectureDefinitions
import Architectures
import Checkpoints
import Foundation
import Host
import Tokenization

/// What `crucible inspect` reports about one checkpoint: architecture, dimensions, storage, tensors, tokenizer,
/// chat template and (for GGUF files) the metadata. Built from headers and metadata only; no weight is read.
///
/// Render with `text(allTensors:)` or `json(allTensors:)` (see docs/inspect.md for the JSON keys).
public struct ModelInspection: Sendable {
    /// The argument as given.
    public var reference: String
    /// The resolved path (folder or `.gguf` file).
    public var path: String
    /// `safetensors` or `gguf`.
    public var format: String
    /// GGUF version (2 or 3), for GGUF files.
    public var ggufVersion: Int?
    /// The weight files and their sizes in bytes.
    public var files: [(path: String, bytes: Int)]
    public var fileBytes: Int { files.reduce(0) { $0 + $1.bytes } }
    /// The config the dimensions come from (`config.json`, or the `.gguf` whose metadata it was derived from).
    public var configPath: String

    public var architecture: ArchitectureSummary
    public var dimensions: Dimensions
    /// Why the engine's config reader refused the config (dimensions then come from the raw keys), if it did.
    public var configProblem: String?

    public var tensors: [TensorEntry]
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.elements } }
    public var tensorBytes: Int { tensors.reduce(0) { $0 + $1.bytes } }
    /// Per storage type: tensor count, parameters and bytes, largest first.
    public var storage: [StorageSummary]
    /// The tensors with layer (and expert) numbers collapsed, in order of first appearance.
    public var patterns: [TensorPattern]

    /// The tokenizer, or why it could not be loaded.
    public var tokenizer: Result<TokenizerSummary, InspectProblem>
    public var chatTemplate: String?
    /// Where the chat template came from (`tokenizer_config.json`, `chat_template.jinja`, GGUF key).
    public var chatTemplateSource: String?
    /// GGUF metadata in file order (empty for safetensors folders).
    public var metadata: [MetadataEntry]
    public var notes: [String]

    /// The architecture as the config names it and as Crucible matched it.
    public struct ArchitectureSummary: Sendable, Equatable {
        /// Crucible's architecture table (`llama`, `mixtral`, `mixtral-fused`, `inferred:…`), nil if none fits.
        public var table: String?
        /// True when the table was inferred from tensor names (no hand-written table matched).
        public var inferred: Bool
        /// `architectures[0]` of the config.
        public var className: String?
        /// `model_type` of the config.
        public var modelType: String?
    }

    /// Model dimensions; nil where the config does not say.
    public struct Dimensions: Sendable, Equatable {
        public var hiddenSize: Int?
        public var intermediateSize: Int?
        public var layers: Int?
        public var heads: Int?
        public var kvHeads: Int?
        public var headDim: Int?
        public var vocabSize: Int?
        public var experts: Int?
        public var expertsPerToken: Int?
        public var ropeTheta: Double?
        /// `rope_scaling` / `rope_parameters` as the config writes it (nil when absent or `default`).
        public var ropeScaling: JSONValue?
        public var slidingWindow: Int?
        public var tiedEmbeddings: Bool?
        public var maxPositions: Int?
        public var rmsNormEps: Double?
    }

    /// One tensor as served (Hugging Face name and shape).
    public struct TensorEntry: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        /// Storage type as stored (`BF16`, `Q4_K`…).
        public var storage: String
        public var elements: Int
        /// Bytes the tensor takes in its file.
        public var bytes: Int
        /// The GGUF tensor it is served from, for GGUF files.
        public var ggufName: String?
    }

    public struct StorageSummary: Sendable, Equatable {
        public var storage: String
        public var tensors: Int
        public var parameters: Int
        public var bytes: Int
    }

    /// Tensors that differ only in their layer (and expert) numbers, with equal shape and storage.
    public struct TensorPattern: Sendable, Equatable {
        /// The name with each number written as `{…}` of the indices present (`model.layers.{0-29}.mlp.up_proj.weight`).
        public var pattern: String
        /// For each numbered position of the name, the indices present (sorted).
        public var indices: [[Int]]
        public var count: Int
        public var shape: [Int]
        public var storage: String
        public var bytes: Int
    }

    /// One GGUF metadata pair, summarised.
    public struct MetadataEntry: Sendable, Equatable {
        public var key: String
        /// The GGUF type (`uint32`, `string`, `array[string]`…).
        public var type: String
        /// A scalar value, or for arrays the first items (none for the tokenizer's vocabulary arrays).
        public var value: JSONValue
        /// Array length (nil for scalars).
        public var length: Int?
        /// True when `value` holds only part of the data (array heads, long strings).
        public var truncated: Bool
    }

    /// The tokenizer as Crucible loads it.
    public struct TokenizerSummary: Sendable, Equatable {
        /// `byte-level BPE` or `SentencePiece BPE`.
        public var kind: String
        /// The file it was loaded from (`tokenizer.json`, or the `.gguf` metadata).
        public var source: String
        /// `tokenizer.ggml.model` for GGUF, `model.type` for tokenizer.json.
        public var model: String?
        public var vocabularySize: Int
        public var bos: SpecialToken?
        public var eos: SpecialToken?
        public var pad: SpecialToken?
        public var addsBOS: Bool
        public var addsEOS: Bool
        /// `tokenizer.ggml.pre` for GGUF; the tokenizer.json pre-tokenizer types otherwise; nil for none.
        public var preTokenizer: String?
        /// The split rules Crucible applies (byte-level vocabularies only).
        public var splitRules: [String]
        /// Tokens of kind control (special tokens such as `<|im_start|>`).
        public var controlTokens: Int
    }

    public struct SpecialToken: Sendable, Equatable {
        public var id: Int
        public var text: String?
    }
}

/// A part of the inspection that could not be produced, and why (the command still reports the rest).
public struct InspectProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

extension ModelInspection {
    /// Inspects the model `argument` names (folder, `.gguf` file or cached hub id).
    /// - Throws: `ModelArgumentError` when nothing is found, `CheckpointError` (naming the file) when the
    ///   checkpoint cannot be opened. A tokenizer that cannot be loaded is reported, not thrown.
    public static func inspect(_ argument: String) throws -> ModelInspection {
        let path = try ModelArgument.resolve(argument)
        return try inspect(checkpoint: Checkpoint.open(path), reference: argument)
    }

    /// Inspects an opened checkpoint.
    public static func inspect(checkpoint: Checkpoint, reference: String) throws -> ModelInspection {
        let source = checkpoint.source
        let gguf = source as? GGUFFile
        let config = checkpoint.config
        var notes: [String] = []

        // Files.
        var files: [(String, Int)] = []
        if let gguf {
            files = [(gguf.path, gguf.mapped.size)]
        } else if let folder = source as? CheckpointFolder {
            files = folder.shards.map { ($0.path, fileSize($0.path)) }
        }

        // Architecture.
        let names = source.tensorNames
        let definition = ArchitectureRegistry.table(config: config, tensorNames: Set(names))
        let architecture = ArchitectureSummary(
            table: definition?.name, inferred: definition?.isInferred ?? false,
            className: config["architectures"]?.arrayValue?.first?.stringValue,
            modelType: config["model_type"]?.stringValue)
        if definition == nil {
            notes.append("no architecture table matches and none could be inferred from the tensor names")
        } else if definition?.isInferred == true {
            notes.append("no architecture table for '\(architecture.className ?? architecture.modelType ?? "?")'; one was inferred from "
                + "the tensor names")
        }

        // Dimensions.
        var configProblem: String?
        var dimensions: Dimensions
        do {
            let c = try ModelConfig(json: config, file: checkpoint.configPath)
            dimensions = Dimensions(
                hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize, layers: c.layerCount, heads: c.headCount,
                kvHeads: c.kvHeadCount, headDim: c.headDim, vocabSize: c.vocabSize, experts: c.experts?.count,
                expertsPerToken: c.experts?.perToken, ropeTheta: c.ropeTheta, ropeScaling: nil,
                slidingWindow: c.slidingWindow, tiedEmbeddings: c.tieWordEmbeddings, maxPositions: c.maxPositionEmbeddings,
                rmsNormEps: c.rmsNormEps)
        } catch {
            configProblem = "\(error)"
            dimensions = rawDimensions(config)
        }
        dimensions.ropeScaling = ropeScaling(config)

        // Tensors and storage.
        var tensors: [TensorEntry] = []
        tensors.reserveCapacity(names.count)
        for name in displayOrder(names, definition: definition, config: config) {
            guard let info = source.info(name) else { continue }
            var bytes = info.elementCount * info.dtype.byteSize
            var ggufName: String?
            if let gguf, let raw = gguf.ggufName(of: name).flatMap({ gguf.rawTensor($0) }) {
                ggufName = raw.name
                bytes = raw.type.byteCount(elements: info.elementCount) ?? raw.byteCount
            }
            tensors.append(TensorEntry(name: name, shape: info.shape, storage: info.storage, elements: info.elementCount,
                                       bytes: bytes, ggufName: ggufName))
        }
        var byStorage: [String: StorageSummary] = [:]
        for t in tensors {
            var s = byStorage[t.storage] ?? StorageSummary(storage: t.storage, tensors: 0, parameters: 0, bytes: 0)
            s.tensors += 1
            s.parameters += t.elements
            s.bytes += t.bytes
            byStorage[t.storage] = s
        }
        let storage = byStorage.values.sorted { ($0.bytes, $1.storage) > ($1.bytes, $0.storage) }

        // Tokenizer and chat template.
        let tokenizer = tokenizerSummary(checkpoint: checkpoint, gguf: gguf)
        let template = chatTemplate(checkpoint: checkpoint, gguf: gguf)

        return ModelInspection(
            reference: reference, path: checkpoint.path, format: gguf == nil ? "safetensors" : "gguf",
            ggufVersion: gguf.map { Int($0.version) }, files: files, configPath: checkpoint.configPath,
            architecture: architecture, dimensions: dimensions, configProblem: configProblem, tensors: tensors,
            storage: storage, patterns: collapse(tensors), tokenizer: tokenizer, chatTemplate: template?.text,
            chatTemplateSource: template?.source, metadata: gguf.map(metadataEntries) ?? [], notes: notes)
    }

    /// Names in the architecture's order (embeddings, layer by layer, final norm, head), then any others in
    /// natural order (numbers compared as numbers: layer 2 before layer 10).
    static func displayOrder(_ names: [String], definition: WeightTable?, config: JSONObject) -> [String] {
        var rank: [String: Int] = [:]
        if let d = definition, let layers = d.layerCount(in: config), layers >= 0, layers < 100_000 {
            for (i, n) in d.allWeightNames(layers: layers, experts: d.expertCount(in: config)).enumerated() where rank[n] == nil {
                rank[n] = i
            }
        }
        func naturalKey(_ s: String) -> [(Int, String)] {
            s.split(separator: ".", omittingEmptySubsequences: false).map { p in Int(p).map { ($0, "") } ?? (Int.max, String(p)) }
        }
        func naturalLess(_ x: String, _ y: String) -> Bool {
            let (kx, ky) = (naturalKey(x), naturalKey(y))
            for (p, q) in zip(kx, ky) where p != q { return p < q }
            return kx.count < ky.count
        }
        return names.sorted { x, y in
            switch (rank[x], rank[y]) {
            case let (rx?, ry?): return rx < ry
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return naturalLess(x, y)
            }
        }
    }

    private static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    /// Dimensions read key by key, for configs the engine's reader refuses.
    private static func rawDimensions(_ c: JSONObject) -> Dimensions {
        func int(_ keys: String...) -> Int? {
            for k in keys { if let v = c[k]?.intValue ?? c["text_config"]?[k]?.intValue { return v } }
            return nil
        }
        let hidden = int("hidden_size", "n_embd", "d_model")
        let heads = int("num_attention_heads", "n_head")
        var window = int("sliding_window")
        if c["use_sliding_window"]?.boolValue == false { window = nil }
        return Dimensions(
            hiddenSize: hidden, intermediateSize: int("intermediate_size", "ffn_dim", "n_inner"),
            layers: int("num_hidden_layers", "n_layer", "num_layers"), heads: heads,
            kvHeads: int("num_key_value_heads") ?? heads,
            headDim: int("head_dim") ?? { if let hidden, let heads, heads > 0 { return hidden / heads }; return nil }(),
            vocabSize: int("vocab_size"), experts: int("num_local_experts", "num_experts"),
            expertsPerToken: int("num_experts_per_tok"),
            ropeTheta: c["rope_theta"]?.doubleValue ?? c["rope_parameters"]?["rope_theta"]?.doubleValue,
            ropeScaling: nil, slidingWindow: window, tiedEmbeddings: c["tie_word_embeddings"]?.boolValue,
            maxPositions: int("max_position_embeddings", "n_positions"), rmsNormEps: c["rms_norm_eps"]?.doubleValue)
    }

    /// The RoPE scaling object unless it is absent or plain (`rope_type: default` with nothing else but theta).
    private static func ropeScaling(_ c: JSONObject) -> JSONValue? {
        for key in ["rope_scaling", "rope_parameters"] {
            guard let v = c[key], let o = v.objectValue else { continue }
            let type = o["rope_type"]?.stringValue ?? o["type"]?.stringValue ?? "default"
            if type == "default" || type == "none" { continue }
            return v
        }
        return nil
    }

    // MARK: Tensor patterns

    /// Groups tensors whose names differ only in their numeric parts and that share shape and storage.
    static func collapse(_ tensors: [TensorEntry]) -> [TensorPattern] {
        struct Key: Hashable { let skeleton: [String]; let shape: [Int]; let storage: String }
        var order: [Key] = []
        var groups: [Key: (indices: [Set<Int>], count: Int, bytes: Int)] = [:]
        for t in tensors {
            var skeleton: [String] = []
            var numbers: [Int] = []
            for part in t.name.split(separator: ".", omittingEmptySubsequences: false) {
                if !part.isEmpty, part.count <= 9, part.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(part) {
                    skeleton.append("#")
                    numbers.append(n)
                } else {
                    skeleton.append(String(part))
                }
            }
            let key = Key(skeleton: skeleton, shape: t.shape, storage: t.storage)
            var g = groups[key] ?? (Array(repeating: [], count: numbers.count), 0, 0)
            if g.count == 0 { order.append(key) }
            for (i, n) in numbers.enumerated() { g.indices[i].insert(n) }
            g.count += 1
            g.bytes += t.bytes
            groups[key] = g
        }
        return order.map { key in
            let g = groups[key]!
            let indices = g.indices.map { $0.sorted() }
            var k = 0
            let pattern = key.skeleton.map { part -> String in
                guard part == "#" else { return part }
                defer { k += 1 }
                let list = indices[k]
                return list.count == 1 ? String(list[0]) : "{" + compactRanges(list, separator: ",") + "}"
            }.joined(separator: ".")
            return TensorPattern(pattern: pattern, indices: indices, count: g.count, shape: key.shape, storage: key.storage,
                                 bytes: g.bytes)
        }
    }


    // MARK: Tokenizer

    private static func tokenizerSummary(checkpoint: Checkpoint, gguf: GGUFFile?) -> Result<TokenizerSummary, InspectProblem> {
        let loaded: Tokenizer
        let source: String
        var model: String?
        var preTokenizer: String?
        var padID: Int?
        do {
            if let gguf {
                source = gguf.path
                loaded = try TokenizerLoader.load(ggufMetadata: gguf.metadata, file: gguf.path)
                model = gguf.metadata["tokenizer.ggml.model"]?.stringValue
                preTokenizer = gguf.metadata["tokenizer.ggml.pre"]?.stringValue
                padID = gguf.metadata["tokenizer.ggml.padding_token_id"]?.intValue
            } else {
                let folder = checkpoint.path
                source = (folder as NSString).appendingPathComponent("tokenizer.json")
                guard FileManager.default.fileExists(atPath: source) else {
                    return .failure(InspectProblem(reason: "\(folder) has no tokenizer.json"))
                }
                loaded = try TokenizerLoader.load(path: folder)
                // The loader keeps only what encoding needs; the names shown here come from the files.
                if let json = try? JSONValue.parse(file: source) {
                    model = json["model"]?["type"]?.stringValue ?? "BPE"
                    preTokenizer = describePreTokenizer(json["pre_tokenizer"])
                }
                let configFile = (folder as NSString).appendingPathComponent("tokenizer_config.json")
                if let tc = try? JSONValue.parse(file: configFile), let pad = tc["pad_token"] {
                    padID = (pad.stringValue ?? pad["content"]?.stringValue).flatMap { loaded.tokenID($0) }
                }
                if padID == nil { padID = checkpoint.config["pad_token_id"]?.intValue }
            }
        } catch {
            return .failure(InspectProblem(reason: "\(error)"))
        }
        func special(_ id: Int?) -> SpecialToken? {
            guard let id else { return nil }
            return SpecialToken(id: id, text: loaded.tokenText(id))
        }
        let rules = (loaded as? BPETokenizer)?.preTokenizer
        var control = 0
        for id in 0..<loaded.vocabularySize where loaded.tokenKind(id) == .control { control += 1 }
        return .success(TokenizerSummary(
            kind: rules != nil ? "byte-level BPE" : "SentencePiece BPE", source: source, model: model,
            vocabularySize: loaded.vocabularySize, bos: special(loaded.bosID), eos: special(loaded.eosID), pad: special(padID),
            addsBOS: loaded.addsBOS, addsEOS: loaded.addsEOS, preTokenizer: preTokenizer,
            splitRules: rules?.rules.map(\.rawValue) ?? [], controlTokens: control))
    }

    /// `ByteLevel`, `Sequence[Split, ByteLevel]`, `Metaspace`; nil for none.
    private static func describePreTokenizer(_ json: JSONValue?) -> String? {
        guard let json, !json.isNull else { return nil }
        let type = json["type"]?.stringValue ?? "?"
        if type == "Sequence", let items = json["pretokenizers"]?.arrayValue {
            return "Sequence[" + items.map { $0["type"]?.stringValue ?? "?" }.joined(separator: ", ") + "]"
        }
        return type
    }

    private static func chatTemplate(checkpoint: Checkpoint, gguf: GGUFFile?) -> (text: String, source: String)? {
        if let gguf {
            return gguf.metadata["tokenizer.chat_template"]?.stringValue.map { ($0, "GGUF tokenizer.chat_template") }
        }
        let folder = checkpoint.path as NSString
        let jinja = folder.appendingPathComponent("chat_template.jinja")
        if let data = try? RegularFile.read(jinja) {
            return (String(decoding: data, as: UTF8.self), "chat_template.jinja")
        }
        for file in ["tokenizer_config.json", "chat_template.json"] {
            guard let json = try? JSONValue.parse(file: folder.appendingPathComponent(file)) else { continue }
            if let s = json["chat_template"]?.stringValue { return (s, file) }
            // A list of named templates: the one called "default", else the first.
            if let list = json["chat_template"]?.arrayValue {
                let named = list.first { $0["name"]?.stringValue == "default" } ?? list.first
                if let s = named?["template"]?.stringValue {
                    return (s, "\(file) (template '\(named?["name"]?.stringValue ?? "?")' of \(list.count))")
                }
            }
        }
        return nil
    }

    // MARK: GGUF metadata

    /// Arrays of the tokenizer's vocabulary: only their type and length are shown.
    static let vocabularyArrays: Set<String> = [
        "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
    ]
    /// Items shown of other arrays.
    static let arrayHead = 8
    /// Characters shown of a long string value.
    static let stringHead = 160

    private static func metadataEntries(_ file: GGUFFile) -> [MetadataEntry] {
        file.metadataKeys.compactMap { key in
            guard let value = file.metadata[key] else { return nil }
            if case let .array(items) = value {
                let shown = vocabularyArrays.contains(key) ? [] : items.prefix(arrayHead).map { scalarJSON($0).value }
                return MetadataEntry(key: key, type: value.typeName, value: .array(Array(shown)), length: items.count,
                                     truncated: shown.count < items.count)
            }
            if key == "tokenizer.chat_template", let s = value.stringValue {
                // Shown in full under the chat template.
                return MetadataEntry(key: key, type: value.typeName, value: .string(head(s)), length: nil, truncated: s.count > stringHead)
            }
            let (json, truncated) = scalarJSON(value)
            return MetadataEntry(key: key, type: value.typeName, value: json, length: nil, truncated: truncated)
        }
    }

    private static func head(_ s: String) -> String {
        s.count > stringHead ? String(s.prefix(stringHead)) : s
    }

    /// A scalar GGUF value as JSON (non-finite floats as null), long strings cut to `stringHead` characters.
    private static func scalarJSON(_ v: GGUFValue) -> (value: JSONValue, truncated: Bool) {
        switch v {
        case let .string(s): return (.string(head(s)), s.count > stringHead)
        case let .bool(b): return (.bool(b), false)
        // The shortest decimal that reads back as the same float32 (1e-05, not 9.999999747378752e-06).
        case let .float32(f): return (ReportJSON.number(f.isFinite ? Double("\(f)") : nil), false)
        case let .float64(d): return (ReportJSON.number(d), false)
        case let .uint64(u): return (Int64(exactly: u).map { .int($0) } ?? .string(String(u)), false)
        case let .array(a): return (.string("array[\(a.count)]"), true)
        default: return (v.intValue.map { .int(Int64($0)) } ?? .null, false)
        }
    }
}
