import Foundation

/// How tensors are split into safetensors shards, as transformers and mergekit lay them out: tensors in the given
/// order, a non-empty shard closed before a tensor that would take it past `maxShardBytes`; one shard is
/// `model.safetensors`, N shards are `model-0000i-of-0000N.safetensors` with a `model.safetensors.index.json`.
public struct ShardLayout: Sendable {
    public let entries: [SafetensorsWriter.Entry]
    /// The shard of each entry.
    public let shardOfEntry: [Int]
    /// File names, one per shard.
    public let files: [String]

    public init(entries: [SafetensorsWriter.Entry], maxShardBytes: Int) {
        self.entries = entries
        var shard = 0, bytes = 0
        var assignment: [Int] = []
        for e in entries {
            if bytes > 0 && bytes + e.byteCount > maxShardBytes {
                shard += 1
                bytes = 0
            }
            assignment.append(shard)
            bytes += e.byteCount
        }
        shardOfEntry = assignment
        let count = shard + 1
        files = count == 1 ? ["model.safetensors"] : (1...count).map { String(format: "model-%05d-of-%05d.safetensors", $0, count) }
    }

    /// Entries of one shard, in file order.
    public func entries(inShard shard: Int) -> [SafetensorsWriter.Entry] {
        zip(entries, shardOfEntry).filter { $0.1 == shard }.map(\.0)
    }

    /// Bytes of tensor data in all shards.
    public var totalBytes: Int { entries.reduce(0) { $0 + $1.byteCount } }

    /// Creates every shard file in `folder` with its header written (tensors are then written at their offsets).
    public func makeWriters(in folder: OutputFolder) throws -> [SafetensorsWriter] {
        try files.indices.map { try SafetensorsWriter(path: folder.path(files[$0]), entries: entries(inShard: $0)) }
    }

    /// Writes `model.safetensors.index.json` when there is more than one shard.
    public func writeIndex(in folder: OutputFolder) throws {
        guard files.count > 1 else { return }
        var map = JSONObject()
        for (e, s) in zip(entries, shardOfEntry) { map[e.name] = .string(files[s]) }
        var meta = JSONObject()
        meta["total_size"] = .int(Int64(totalBytes))
        var index = JSONObject()
        index["metadata"] = .object(meta)
        index["weight_map"] = .object(map)
        try folder.write(JSONValue.object(index).serialized(indent: 2) + "\n", to: "model.safetensors.index.json")
    }
}
