import Checkpoints
import Foundation
import Host

/// An `added_tokens` entry of tokenizer.json with its flags.
public struct AddedTokenEntry: Sendable, Equatable {
    public var id: Int
    public let content: String
    public let singleWord: Bool
    public let lstrip: Bool
    public let rstrip: Bool
    public let normalized: Bool
    public let special: Bool

    public init(id: Int, content: String, singleWord: Bool = false, lstrip: Bool = false, rstrip: Bool = false,
                normalized: Bool, special: Bool) {
        self.id = id
        self.content = content
        self.singleWord = singleWord
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized
        self.special = special
    }

    /// A token added by name (transformers' `add_tokens("text")`): matched in text before the model runs, not special.
    public static func plain(_ content: String) -> AddedTokenEntry {
        AddedTokenEntry(id: -1, content: content, normalized: true, special: false)
    }

    var json: JSONValue {
        .object(JSONObject([("id", .int(Int64(id))), ("content", .string(content)), ("single_word", .bool(singleWord)),
                            ("lstrip", .bool(lstrip)), ("rstrip", .bool(rstrip)), ("normalized", .bool(normalized)),
                            ("special", .bool(special))]))
    }

    /// The flags compared when two parents define the same added token (the id aside).
    public func sameFlags(as other: AddedTokenEntry) -> Bool {
        (singleWord, lstrip, rstrip, normalized, special) == (other.singleWord, other.lstrip, other.rstrip, other.normalized, other.special)
    }
}

/// A Hugging Face `tokenizer.json` seen as a vocabulary: every token string (`model.vocab` and `added_tokens`) with its
/// id, which tokens are added ones, and edits a tokenizer merge makes (dropping ids at or above a size, appending added
/// tokens). Everything else in the file (normalizer, pre-tokenizer, post-processor, decoder) is kept as written.
public struct TokenizerVocabularyFile: Sendable {
    /// The file the vocabulary came from, for messages.
    public let file: String
    private var root: JSONObject
    /// Token strings by id; ids are 0..<count.
    public private(set) var tokens: [String]
    /// Added tokens, by id.
    public private(set) var added: [AddedTokenEntry]
    private var addedIDs: Set<Int>
    private var idOf: [[UInt8]: Int]

    public var count: Int { tokens.count }
    public func id(of token: String) -> Int? { idOf[Array(token.utf8)] }
    public func contains(_ token: String) -> Bool { id(of: token) != nil }
    public func isAdded(_ id: Int) -> Bool { addedIDs.contains(id) }

    /// Reads tokenizer.json text. Only BPE vocabularies are merged (as mergekit's tokenizer merge requires).
    public init(text: String, file: String) throws {
        func malformed(_ reason: String) -> TokenizerError { .malformed(file: file, reason: reason) }
        let parsed: JSONValue
        do { parsed = try JSONValue.parse(Data(text.utf8)) } catch { throw malformed("\(error)") }
        guard let root = parsed.objectValue, let model = root["model"]?.objectValue else { throw malformed("no \"model\" object") }
        let type = model["type"]?.stringValue ?? "BPE"
        guard type == "BPE" else {
            throw TokenizerError.unsupported(kind: "model type for a vocabulary merge (only BPE tokenizers can be merged)", value: type,
                                             file: file)
        }
        guard let vocab = model["vocab"]?.objectValue else { throw malformed("model.vocab is not an object") }
        var byID: [Int: String] = [:]
        for (token, value) in vocab.pairs {
            guard let id = value.intValue, id >= 0 else { throw malformed("model.vocab[\"\(token)\"] is not a token id") }
            byID[id] = token
        }
        var added: [AddedTokenEntry] = []
        for (i, entry) in (root["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let id = entry["id"]?.intValue, id >= 0, let content = entry["content"]?.stringValue else {
                throw malformed("added_tokens[\(i)] needs an integer id and a string content")
            }
            let flag = { (key: String, fallback: Bool) in entry[key]?.boolValue ?? fallback }
            let special = flag("special", false)
            added.append(AddedTokenEntry(id: id, content: content, singleWord: flag("single_word", false), lstrip: flag("lstrip", false),
                                         rstrip: flag("rstrip", false), normalized: flag("normalized", !special), special: special))
            byID[id] = content
        }
        let n = byID.count
        // Ids index the embedding rows: they must be exactly 0..<n.
        guard let maxID = byID.keys.max(), maxID == n - 1 else {
            throw malformed("token ids are not consecutive from 0 (\(n) tokens, largest id \(byID.keys.max() ?? -1))")
        }
        tokens = (0..<n).map { byID[$0]! }
        var idOf: [[UInt8]: Int] = [:]
        for (id, token) in tokens.enumerated() where idOf[Array(token.utf8)] == nil { idOf[Array(token.utf8)] = id }
        self.idOf = idOf
        self.added = added.sorted { $0.id < $1.id }
        self.addedIDs = Set(added.map(\.id))
        self.root = root
        self.file = file
    }

    /// The tokenizer of a model: its folder's tokenizer.json, or the one exported from a GGUF file's vocabulary.
    public static func load(source: any TensorSource, path: String) throws -> TokenizerVocabularyFile {
        for (name, content) in try TokenizerFileSet.contents(of: source, path: path) where name == "tokenizer.json" {
            switch content {
            case let .text(text):
                return try TokenizerVocabularyFile(text: text, file: path + " (its GGUF vocabulary)")
            case let .copy(from):
                guard let text = String(data: try RegularFileText.read(from), encoding: .utf8) else {
                    throw TokenizerError.malformed(file: from, reason: "not UTF-8 text")
                }
                return try TokenizerVocabularyFile(text: text, file: from)
            }
        }
        throw TokenizerError.fileNotFound(path: (path as NSString).appendingPathComponent("tokenizer.json"))
    }

    /// The vocabulary without the tokens whose id is `size` or more (mergekit strips the base tokenizer to its
    /// config's `vocab_size`); merges that mention a removed token are dropped too.
    public func stripped(to size: Int) -> TokenizerVocabularyFile {
        guard size < count else { return self }
        var copy = self
        let removed = Set(tokens[size...].map { Array($0.utf8) })
        var model = root["model"]!.objectValue!
        let vocab = model["vocab"]!.objectValue!
        model["vocab"] = .object(JSONObject(vocab.pairs.filter { ($0.1.intValue ?? 0) < size }))
        if let merges = model["merges"]?.arrayValue {
            model["merges"] = .array(merges.filter { merge in
                let parts: [String]
                if let s = merge.stringValue { parts = s.split(separator: " ", omittingEmptySubsequences: false).map(String.init) }
                else { parts = (merge.arrayValue ?? []).compactMap(\.stringValue) }
                return !parts.contains { removed.contains(Array($0.utf8)) }
            })
        }
        copy.root["model"] = .object(model)
        copy.added = added.filter { $0.id < size }
        copy.addedIDs = Set(copy.added.map(\.id))
        copy.root["added_tokens"] = .array(copy.added.map(\.json))
        copy.tokens = Array(tokens[..<size])
        copy.idOf = idOf.filter { $0.value < size }
        return copy
    }

    /// Appends `token` as an added token with the next id (which it returns).
    @discardableResult
    public mutating func append(_ token: AddedTokenEntry) -> Int {
        var entry = token
        entry.id = count
        tokens.append(entry.content)
        if idOf[Array(entry.content.utf8)] == nil { idOf[Array(entry.content.utf8)] = entry.id }
        added.append(entry)
        addedIDs.insert(entry.id)
        root["added_tokens"] = .array(added.map(\.json))
        return entry.id
    }

    /// Makes the ordinary vocabulary token `token.content` an added token with its flags, keeping its id (what the
    /// tokenizers library does when a token it already has is added): it is then matched in text before BPE runs.
    public mutating func markAdded(_ token: AddedTokenEntry) {
        guard let id = id(of: token.content), !isAdded(id) else { return }
        var entry = token
        entry.id = id
        added.append(entry)
        added.sort { $0.id < $1.id }
        addedIDs.insert(id)
        root["added_tokens"] = .array(added.map(\.json))
    }

    /// The tokenizer.json text.
    public func serialized() -> String { JSONValue.object(root).serialized(indent: 2) + "\n" }
}

/// Reads a small text file through `RegularFile` (a FIFO posing as a tokenizer file is refused, not waited on).
enum RegularFileText {
    static func read(_ path: String) throws -> Data {
        do { return try RegularFile.read(path) } catch let e as RegularFile.Failure {
            if e.notFound { throw TokenizerError.fileNotFound(path: path) }
            throw TokenizerError.malformed(file: path, reason: e.reason)
        }
    }
}
