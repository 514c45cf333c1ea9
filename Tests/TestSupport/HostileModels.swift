import Checkpoints
import Foundation

/// Copies of the fixture models with one thing made wrong, for the hostile-input regression tests.
public enum HostileModels {
    /// Copies fixture model `name` (e.g. `llama-ft1`) into `folder/as` and returns the copy's path.
    public static func copy(_ name: String, to folder: URL, as newName: String? = nil) throws -> String {
        let dest = folder.appendingPathComponent(newName ?? name).path
        try? FileManager.default.removeItem(atPath: dest)
        try FileManager.default.copyItem(atPath: Fixtures.fixture("models/\(name)"), toPath: dest)
        return dest
    }

    /// Sets `key` of the model's config.json (`nil` removes it).
    public static func setConfig(_ model: String, _ key: String, _ value: JSONValue?) throws {
        let path = model + "/config.json"
        guard case var .object(o) = try JSONValue.parse(file: path) else { return }
        o[key] = value
        try (JSONValue.object(o).serialized(indent: 2) + "\n").write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// Byte offset of the data of `tensor` in a single-file safetensors checkpoint, and its header's length.
    private static func span(_ file: String, _ tensor: String) throws -> (start: Int, header: Int) {
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let n = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONValue.parse(data.subdata(in: 8..<(8 + n)))
        guard let offsets = header[tensor]?["data_offsets"]?.arrayValue, let start = offsets.first?.intValue else {
            throw CheckpointError.missingTensor(tensor: tensor, checkpoint: file)
        }
        return (8 + n + start, n)
    }

    /// Overwrites float32 element `index` of `tensor` in the model's model.safetensors.
    public static func setElement(_ model: String, _ tensor: String, _ index: Int, _ value: Float) throws {
        let file = model + "/model.safetensors"
        let (start, _) = try span(file, tensor)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: file))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(start + 4 * index))
        try handle.write(contentsOf: withUnsafeBytes(of: value.bitPattern.littleEndian) { Data($0) })
    }

    /// Renames a tensor in the header of model.safetensors (`to` must be as long as `from`, so offsets stay).
    public static func renameTensor(_ model: String, _ from: String, _ to: String) throws {
        precondition(from.utf8.count == to.utf8.count)
        let file = model + "/model.safetensors"
        var data = try Data(contentsOf: URL(fileURLWithPath: file))
        let n = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = String(decoding: data.subdata(in: 8..<(8 + n)), as: UTF8.self)
        let renamed = header.replacingOccurrences(of: "\"\(from)\"", with: "\"\(to)\"")
        data.replaceSubrange(8..<(8 + n), with: Data(renamed.utf8))
        try data.write(to: URL(fileURLWithPath: file))
    }
}
