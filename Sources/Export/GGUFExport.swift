import Architectures
import Checkpoints
import Foundation
import Host

/// How one model is written as GGUF.
public struct GGUFExportOptions: Sendable {
    public var fileType: GGUFFileType
    public var overwrite: Bool
    public var threads: Int
    /// `general.name`; the source folder's or file's name when nil.
    public var name: String?

    public init(fileType: GGUFFileType, overwrite: Bool = false,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount, name: String? = nil) {
        self.fileType = fileType
        self.overwrite = overwrite
        self.threads = threads
        self.name = name
    }
}

/// What an export wrote.
public struct GGUFExportReport: Sendable {
    public let path: String
    public let architecture: String
    public let tensors: [GGUFTensorSpec]
    /// Tensors whose rows are not whole blocks of the chosen type, and the type llama.cpp's rules fell back to.
    public let fallbacks: [(String, GGMLType)]
    public let bytes: Int

    /// How many tensors got each type, most first.
    public var typeCounts: [(GGMLType, Int)] {
        var counts: [GGMLType: Int] = [:]
        for t in tensors { counts[t.type, default: 0] += 1 }
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.rawValue < $1.key.rawValue }
    }
}

/// Writes any model Crucible reads as a GGUF file that llama.cpp loads: llama.cpp's architecture name, its
/// metadata keys and tensor names, the Q/K row permutation of the llama architecture, Mixtral experts stacked
/// into `ffn_*_exps`, the tokenizer, and every tensor stored as llama-quantize would store it for the file type
/// (see `QuantizationTypeChooser` and `quantize`). Tensors stream through in row blocks on all cores, so memory
/// stays near one block of float32 rows per thread, whatever the model's size.
public enum GGUFExport {
    /// Float32 rows quantized per work item (bounded by the block of rows it covers).
    static let blockElements = 1 << 20

    public static func export(_ checkpoint: Checkpoint, to path: String, options: GGUFExportOptions) throws -> GGUFExportReport {
        // Writing over the file being read (with --overwrite) would destroy the input while it is mapped.
        func real(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
        let inputs = Set(checkpoint.source.tensorNames.compactMap { checkpoint.source.file(of: $0) }.map(real) + [real(checkpoint.path)])
        guard !inputs.contains(real(path)) else {
            throw CheckpointError.writeFailed(path: path, reason: "this is the model being exported; write the GGUF file elsewhere")
        }
        let layout = try GGUFTensorLayout(checkpoint: checkpoint)
        let tokenizer = try GGUFTokenizerMetadata.keys(for: checkpoint, vocabSize: layout.config.vocabSize)
        var chooser = QuantizationTypeChooser(fileType: options.fileType, facts: layout.facts)
        let floatType: GGMLType = options.fileType.mixture.baseType.isQuantized ? .f32 : options.fileType.mixture.baseType
        var specs: [GGUFTensorSpec] = []
        for t in layout.tensors {
            let keepsF32 = t.shape.count < 2 || t.name.contains("ffn_gate_inp")
            let type = chooser.type(for: t.name, shape: t.shape, unquantized: keepsF32 ? .f32 : floatType)
            specs.append(GGUFTensorSpec(name: t.name, shape: t.shape, type: type))
        }
        let name = options.name ?? URL(fileURLWithPath: checkpoint.path).deletingPathExtension().lastPathComponent
        var metadata = try layout.metadata(name: name, fileType: options.fileType)
        metadata.append(contentsOf: tokenizer)
        let writer = try GGUFWriter(path: path, metadata: metadata, tensors: specs)
        do {
            for (t, spec) in zip(layout.tensors, specs) {
                try write(t, as: spec.type, from: checkpoint.source, into: writer, threads: options.threads)
            }
            try writer.finish(overwrite: options.overwrite)
        } catch {
            writer.abandon()
            throw error
        }
        return GGUFExportReport(path: path, architecture: layout.architecture, tensors: specs,
                                fallbacks: chooser.fallbacks, bytes: writer.fileSize)
    }

    /// Streams one output tensor: blocks of output rows are gathered from their sources (rows reordered for the
    /// Q/K permutation, experts concatenated), quantized in parallel, and appended.
    static func write(_ t: GGUFOutputTensor, as type: GGMLType, from source: any TensorSource, into writer: GGUFWriter,
                      threads: Int) throws {
        let rowLength = t.shape.last!
        let rows = t.shape.dropLast().reduce(1, *)
        let rowBytes = type.byteCount(elements: rowLength)!
        let rowsPerBlock = max(1, blockElements / rowLength)
        var floats = [Float](repeating: 0, count: min(rows, rowsPerBlock) * rowLength)
        var bytes = [UInt8](repeating: 0, count: min(rows, rowsPerBlock) * rowBytes)
        var first = 0
        while first < rows {
            let count = min(rowsPerBlock, rows - first)
            try floats.withUnsafeMutableBufferPointer { fb in
                try t.read(rows: first, count: count, from: source, into: fb.baseAddress!)
            }
            try floats.withUnsafeBufferPointer { fb in
                try bytes.withUnsafeMutableBytes { bb in
                    let parts = min(max(1, threads), count)
                    try parallelForThrowing(parts, threads: parts) { p in
                        let lo = count * p / parts, hi = count * (p + 1) / parts
                        for r in lo..<hi {
                            do {
                                try quantize(type, fb.baseAddress! + r * rowLength, count: rowLength,
                                             into: bb.baseAddress! + r * rowBytes)
                            } catch let e as GGMLQuantizeError {
                                let name = t.sources.count == 1 ? t.sources[0] : t.name
                                throw CheckpointError.invalidTensor(file: source.file(of: name) ?? source.location, tensor: name,
                                    reason: "row \(first + r) of GGUF tensor \(t.name) cannot be stored as \(type.name): \(e)")
                            }
                        }
                    }
                }
            }
            try bytes.withUnsafeBytes { try writer.append(UnsafeRawBufferPointer(rebasing: $0[0..<(count * rowBytes)])) }
            first += count
        }
        for name in t.sources { source.release(name) }
    }
}

extension GGUFExport {
    /// llama.cpp's `rope_freqs` for Llama 3 scaling, computed as its converter computes it (float32 throughout, as torch
    /// does for a float32 tensor and Python scalars): 1 for short wavelengths, `factor` for long ones, a smooth blend
    /// between. The engine divides each inverse frequency by these.
    public static func llama3RopeDivisors(theta: Double, headDim: Int, factor: Double, lowFrequencyFactor: Double,
                                   highFrequencyFactor: Double, originalContext: Int) -> [Float] {
        let base = Float(theta), dim = Float(headDim)
        let lowWavelength = Float(Double(originalContext) / lowFrequencyFactor)
        let highWavelength = Float(Double(originalContext) / highFrequencyFactor)
        let span = Float(highFrequencyFactor - lowFrequencyFactor)
        return stride(from: 0, to: headDim, by: 2).map { i in
            let freq = 1 / powf(base, Float(i) / dim)
            let wavelength = Float(2 * Double.pi) / freq
            if wavelength < highWavelength { return 1 }
            if wavelength > lowWavelength { return Float(factor) }
            let smooth = (Float(originalContext) / wavelength - Float(lowFrequencyFactor)) / span
            return 1 / ((1 - smooth) / Float(factor) + smooth)
        }
    }

    /// Whether a model with this `config.json` can be written as GGUF; checked before a build so that
    /// `--gguf` fails before any tensor is merged rather than after.
    public static func checkWritable(config: JSONObject, file: String) throws {
        _ = try GGUFTensorLayout.conventions(config: config, file: file)
        try GGUFTensorLayout.checkRoPE(try ModelConfig(json: config, file: file), file: file)
    }

    /// The GGUF file a build writes into its output folder: `<folder>/<folder name>-<TYPE>.gguf`.
    public static func fileName(folder: String, fileType: GGUFFileType) -> String {
        let base = URL(fileURLWithPath: folder).standardizedFileURL.lastPathComponent
        return (folder as NSString).appendingPathComponent("\(base)-\(fileType.mixture.rawValue).gguf")
    }

    /// Exports a finished model folder into itself (`fileName(folder:fileType:)`). With `only`, the safetensors
    /// weights are then removed, so the folder holds the GGUF file with the config, tokenizer and side files
    /// (readers then open the GGUF). The weights are removed only once the GGUF file is complete.
    public static func attach(toFolder folder: String, options: GGUFExportOptions, only: Bool) throws -> GGUFExportReport {
        let checkpoint = try Checkpoint.open(folder)
        var options = options
        options.overwrite = true   // the folder was just written by this run
        let report = try export(checkpoint, to: fileName(folder: folder, fileType: options.fileType), options: options)
        if only {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            for e in entries where e.hasSuffix(".safetensors") || e == "model.safetensors.index.json" {
                try FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(e))
            }
        }
        return report
    }
}
