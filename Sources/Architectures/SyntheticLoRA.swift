import Checkpoints
import Foundation
import Numerics

extension SyntheticCheckpoint {
    /// Writes a seeded PEFT LoRA adapter for the checkpoint at `basePath` (`crucible synth --lora-of`): rank `rank` on
    /// every 2-D weight whose module name ends with one of `targets`, A ~ N(0, 1/√in), B ~ N(0, 0.02), float32,
    /// `lora_alpha` = 2·rank (scale 2). Same base, seed and settings give the same bytes.
    public static func writeLoRA(of basePath: String, rank: Int, targets: [String], seed: UInt64, to folder: String) throws {
        guard rank >= 1 else { throw SynthError(description: "synth: --rank must be at least 1") }
        let base = try Checkpoint.open(basePath).source
        var specs: [(String, [Int])] = []
        var found = Set<String>()
        for name in base.tensorNames where name.hasSuffix(".weight") {
            let module = String(name.dropLast(".weight".count))
            guard let shape = base.info(name)?.shape, shape.count == 2,
                  let target = targets.first(where: { module.hasSuffix("." + $0) }) else { continue }
            found.insert(target)
            specs.append(("base_model.model.\(module).lora_A.weight", [rank, shape[1]]))
            specs.append(("base_model.model.\(module).lora_B.weight", [shape[0], rank]))
        }
        if let missing = targets.first(where: { !found.contains($0) }) {
            throw SynthError(description: "synth: \(basePath) has no 2-D weight of a module named '\(missing)'")
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let writer = try SafetensorsWriter(path: (folder as NSString).appendingPathComponent(LoRAAdapter.weightsFile),
                                           entries: specs.map { .init(name: $0.0, dtype: .f32, shape: $0.1) })
        for (name, shape) in specs {
            let n = shape[0] * shape[1]
            var values = [Float](repeating: 0, count: n)
            let std: Float = name.hasSuffix("lora_A.weight") ? 1 / Float(shape[1]).squareRoot() : 0.02
            values.withUnsafeMutableBufferPointer {
                fillRandom(name: name, shape: shape, hidden: 1, seed: seed, dest: $0.baseAddress!, range: 0..<n, std: std)
            }
            try values.withUnsafeBytes { try writer.write(name, bytes: $0) }
        }
        try writer.finish()
        let config = JSONObject([
            ("peft_type", .string("LORA")), ("task_type", .string("CAUSAL_LM")), ("base_model_name_or_path", .string(basePath)),
            ("r", .int(Int64(rank))), ("lora_alpha", .int(Int64(2 * rank))), ("use_rslora", .bool(false)),
            ("target_modules", .array(targets.map { .string($0) })), ("modules_to_save", .null),
            ("rank_pattern", .object(JSONObject())), ("alpha_pattern", .object(JSONObject())), ("lora_dropout", .double(0)),
            ("fan_in_fan_out", .bool(false)), ("bias", .string("none")), ("inference_mode", .bool(true)),
        ])
        try (JSONValue.object(config).serialized(indent: 2) + "\n")
            .write(toFile: (folder as NSString).appendingPathComponent(LoRAAdapter.configFile), atomically: true, encoding: .utf8)
    }
}
