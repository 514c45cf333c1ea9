import Foundation

/// A Hugging Face checkpoint folder: `config.json` plus `model.safetensors`, or shards listed in
/// `model.safetensors.index.json`, or (failing both) every `*.safetensors` file in the folder.
/// Every shard is memory-mapped; a name → shard routing table serves tensors from whichever file holds them.
public final class CheckpointFolder: TensorSource, @unchecked Sendable {
    public let path: String
    public let config: JSONObject
    public let shards: [SafetensorsFile]
    public let tensorNames: [String]
    private let routing: [String: Int]

    public var location: String { path }
    public var configPath: String { (path as NSString).appendingPathComponent("config.json") }

    public init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw CheckpointError.fileNotFound(path: path)
        }
        guard isDir.boolValue else { throw CheckpointError.notAFolder(path: path) }
        let folder = path as NSString
        let configFile = folder.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configFile) else {
            throw CheckpointError.invalidConfig(file: configFile, reason: "config.json is missing")
        }
        guard case let .object(cfg) = try JSONValue.parse(file: configFile) else {
            throw CheckpointError.invalidConfig(file: configFile, reason: "not a JSON object")
        }
        self.config = cfg

        let indexFile = folder.appendingPathComponent("model.safetensors.index.json")
        let single = folder.appendingPathComponent("model.safetensors")
        var files: [String] = []
        var weightMap: [(String, String)]? = nil
        if FileManager.default.fileExists(atPath: indexFile) {
            let idx = try JSONValue.parse(file: indexFile)
            guard let wm = idx["weight_map"]?.objectValue else {
                throw CheckpointError.invalidIndex(file: indexFile, reason: "missing 'weight_map' object")
            }
            var pairs: [(String, String)] = []
            for (name, f) in wm.pairs {
                guard let fname = f.stringValue, !fname.contains("/"), !fname.hasPrefix(".") else {
                    throw CheckpointError.invalidIndex(file: indexFile, reason: "tensor '\(name)' maps to an invalid file name")
                }
                if !files.contains(fname) { files.append(fname) }
                pairs.append((name, fname))
            }
            weightMap = pairs
        } else if FileManager.default.fileExists(atPath: single) {
            files = ["model.safetensors"]
        } else {
            let all = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            files = all.filter { $0.hasSuffix(".safetensors") }.sorted()
        }
        guard !files.isEmpty else { throw CheckpointError.noWeights(folder: path) }
        let shards = try files.map { try SafetensorsFile(path: folder.appendingPathComponent($0)) }
        var routing: [String: Int] = [:]
        var names: [String] = []
        if let weightMap {
            let fileIndex = Dictionary(uniqueKeysWithValues: files.enumerated().map { ($1, $0) })
            for (name, f) in weightMap {
                let i = fileIndex[f]!
                guard shards[i].info(name) != nil else {
                    throw CheckpointError.invalidIndex(file: indexFile, reason: "tensor '\(name)' is not in \(f)")
                }
                routing[name] = i
                names.append(name)
            }
        } else {
            for (i, s) in shards.enumerated() {
                for name in s.tensorNames where routing[name] == nil {
                    routing[name] = i
                    names.append(name)
                }
            }
        }
        self.shards = shards
        self.routing = routing
        self.tensorNames = names
    }

    public func info(_ name: String) -> TensorInfo? {
        guard let i = routing[name] else { return nil }
        return shards[i].info(name)
    }

    public func file(of name: String) -> String? {
        guard let i = routing[name] else { return nil }
        return shards[i].path
    }

    public func shard(of name: String) -> SafetensorsFile? {
        guard let i = routing[name] else { return nil }
        return shards[i]
    }

    public func readFloats(_ name: String, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws {
        guard let i = routing[name] else { throw CheckpointError.missingTensor(tensor: name, checkpoint: path) }
        try shards[i].readFloats(name, range: range, into: dest)
    }

    public func release(_ name: String) {
        if let i = routing[name] { shards[i].release(name) }
    }

    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer? {
        guard let i = routing[name] else { throw CheckpointError.missingTensor(tensor: name, checkpoint: path) }
        return try shards[i].rawBytes(name)
    }
}
