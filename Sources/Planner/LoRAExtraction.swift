import Architectures
import Checkpoints
import Foundation
import Numerics
import Recipes

/// `crucible extract-lora`: a PEFT LoRA adapter of the difference between a fine-tune and its base, by truncated SVD
/// per matrix, as mergekit-extract-lora builds it (rank choice, A/B scaling, `modules_to_save`, adapter_config.json).
public enum LoRAExtraction {
    public struct Options: Sendable {
        public var maxRank = 128
        /// Singular values at or below this are dropped (when > 0).
        public var svEpsilon = 0.0
        /// A = √S·Vh and B = U·√S (else A = S·Vh, B = U).
        public var distributeScale = true
        /// Decompose the embedding and the output head too (else they are saved whole in `modules_to_save`).
        public var embedLoRA = false
        /// Leave out tensors that are not matrices (norms) instead of saving them whole.
        public var skipUndecomposable = false
        public var overwrite = false
        public init() {}
    }

    /// One decomposed module's fit.
    public struct ModuleReport: Sendable {
        public let module: String
        public let shape: [Int]
        public let rank: Int
        /// ‖Δ‖_F, ‖B·A − Δ‖_F of the stored factors, and their ratio.
        public let deltaNorm: Double
        public let errorNorm: Double
        public var relativeError: Double { deltaNorm == 0 ? errorNorm : errorNorm / deltaNorm }
        /// √(Σ_{i>rank} s_i²)/‖Δ‖_F: the best any rank-`rank` factorisation can do (Eckart–Young).
        public let optimalRelativeError: Double
        public let singularValues: [Double]
    }

    public struct Report: Sendable {
        public let outputPath: String
        public let rank: Int
        public let modules: [ModuleReport]
        public let modulesToSave: [String]
        public let warnings: [String]
    }

    /// What becomes of one model tensor.
    private enum Plan {
        case decompose(module: String, weight: String, bias: String?, transpose: Bool)
        case save(tensor: String)
    }

    /// Extracts `model` − `base` into a PEFT adapter folder at `out`. References resolve like a recipe's (a path, a hub
    /// id in the local cache, or `model+adapter`), relative to `workingDirectory`.
    public static func extract(model modelRef: String, base baseRef: String, out: String, options: Options,
                               workingDirectory: String = FileManager.default.currentDirectoryPath) throws -> Report {
        guard options.maxRank >= 1 else { throw PlanError.execution("--max-rank must be at least 1") }
        guard options.svEpsilon.isFinite, options.svEpsilon >= 0 else {
            throw PlanError.execution("--sv-epsilon must be a finite number ≥ 0")
        }
        let resolver = ModelResolver(recipeFolder: workingDirectory, workingDirectory: workingDirectory)
        func open(_ raw: String, _ flag: String) throws -> PlannedModel {
            try PlannedModel.open(ModelReference(raw: raw, location: SourceLocation(file: flag, line: 1, column: 1)), resolver: resolver)
        }
        let model = try open(modelRef, "--model"), base = try open(baseRef, "--base")
        let ft = model.source, bs = base.source
        var warnings: [String] = []
        let embeds = Set((model.architecture.preWeights + model.architecture.postWeights).filter(\.isEmbed).map(\.name))
        let inputEmbeds = Set(model.architecture.preWeights.filter(\.isEmbed).map(\.name))
        var embedLoRA = options.embedLoRA
        if embedLoRA, let e = inputEmbeds.first, let a = ft.info(e), let b = bs.info(e), a.shape != b.shape {
            warnings.append("vocabulary sizes differ (\(a.shape[0]) in the model, \(b.shape[0]) in the base): the embeddings are "
                + "saved whole in modules_to_save instead of --embed-lora")
            embedLoRA = false
        }

        // Plan every tensor of the fine-tune, in stored order.
        var plans: [Plan] = []
        var modulesToSave: [String] = []
        var warned = Set<String>()
        let names = ft.tensorNames
        for name in names {
            let isWeight = name.hasSuffix(".weight")
            let module = isWeight ? String(name.dropLast(7)) : name.hasSuffix(".bias") ? String(name.dropLast(5)) : name
            let key = String(module.split(separator: ".").last ?? Substring(module))
            if !isWeight, name.hasSuffix(".bias"), ft.info(module + ".weight") != nil { continue }  // with its weight
            let shape = ft.info(name)!.shape
            let bias = ft.info(module + ".bias") != nil && isWeight ? module + ".bias" : nil
            func saveWhole() {
                if !modulesToSave.contains(key) { modulesToSave.append(key) }
                plans.append(.save(tensor: name))
                if let bias { plans.append(.save(tensor: bias)) }
            }
            if modulesToSave.contains(key) || (embeds.contains(name) && !embedLoRA) {
                saveWhole()
            } else if isWeight && shape.count == 2 {
                guard let b = bs.info(name) else {
                    throw PlanError.model(base.path, "tensor '\(name)' is missing, but \(model.path) has it: extract-lora needs the "
                        + "fine-tune's base")
                }
                guard b.shape == shape else {
                    throw PlanError.tensor(name, "has shape \(shape) in \(model.path) but \(b.shape) in \(base.path)")
                }
                if let bias, bs.info(bias)?.shape != ft.info(bias)!.shape {
                    throw PlanError.tensor(bias, "is missing from \(base.path) or has another shape there")
                }
                plans.append(.decompose(module: module, weight: name, bias: bias, transpose: inputEmbeds.contains(name)))
            } else if !options.skipUndecomposable {
                if warned.insert(key).inserted {
                    warnings.append("\(key) is not a matrix (\(shape)): saved at full rank in modules_to_save")
                }
                saveWhole()
            } else if warned.insert(key).inserted {
                warnings.append("\(key) is not a matrix (\(shape)): skipped")
            }
        }

        // Decompose.
        struct Factors { let module: String; let a: [Float], b: [Float], bias: [Float]?; let shapeA: [Int], shapeB: [Int]
                         let dtype: DType; let transpose: Bool }
        var factors: [Factors] = []
        var reports: [ModuleReport] = []
        for case let .decompose(module, weight, bias, transpose) in plans {
            let (f, report) = try decompose(module: module, weight: weight, transpose: transpose, model: model, base: base,
                                            options: options)
            let dtype = outputDType(ft.info(weight)!)
            var biasDelta: [Float]? = nil
            if let bias {
                let x = try ft.readAllFloats(bias), y = try bs.readAllFloats(bias)
                biasDelta = zip(x, y).map { $0 - $1 }
            }
            factors.append(Factors(module: module, a: f.a, b: f.b, bias: biasDelta, shapeA: f.shapeA, shapeB: f.shapeB, dtype: dtype,
                                   transpose: transpose))
            reports.append(report)
        }

        // Write the adapter.
        let folder: OutputFolder
        do {
            folder = try OutputFolder(destination: out, overwrite: options.overwrite, inputs: model.inputPaths + base.inputPaths)
        } catch {
            throw PlanError.output(error, folder: out)
        }
        var entries: [SafetensorsWriter.Entry] = []
        let prefix = "base_model.model."
        for f in factors {
            let (a, b) = f.transpose ? ("lora_embedding_A", "lora_embedding_B") : ("lora_A.weight", "lora_B.weight")
            entries.append(.init(name: "\(prefix)\(f.module).\(a)", dtype: f.dtype, shape: f.shapeA))
            entries.append(.init(name: "\(prefix)\(f.module).\(b)", dtype: f.dtype, shape: f.shapeB))
            if let bias = f.bias { entries.append(.init(name: "\(prefix)\(f.module).lora_B.bias", dtype: f.dtype, shape: [bias.count])) }
        }
        for case let .save(tensor) in plans {
            let info = ft.info(tensor)!
            entries.append(.init(name: prefix + tensor, dtype: outputDType(info), shape: info.shape))
        }
        do {
            let writer = try SafetensorsWriter(path: folder.path(LoRAAdapter.weightsFile), entries: entries)
            func put(_ name: String, _ values: [Float], _ dtype: DType) throws {
                var bytes = [UInt8](repeating: 0, count: values.count * dtype.byteSize)
                values.withUnsafeBufferPointer { v in
                    bytes.withUnsafeMutableBytes { convertFromFloat(v.baseAddress!, count: v.count, to: dtype, into: $0.baseAddress!) }
                }
                try bytes.withUnsafeBytes { try writer.write(name, bytes: $0) }
            }
            var k = 0
            for f in factors {
                try put(entries[k].name, f.a, f.dtype)
                try put(entries[k + 1].name, f.b, f.dtype)
                k += 2
                if let bias = f.bias { try put(entries[k].name, bias, f.dtype); k += 1 }
            }
            for case let .save(tensor) in plans {
                let info = ft.info(tensor)!
                if let raw = try ft.rawBytes(tensor), info.dtype == outputDType(info) {
                    try writer.write(prefix + tensor, bytes: raw)
                } else {
                    try put(prefix + tensor, try ft.readAllFloats(tensor), outputDType(info))
                }
                ft.release(tensor)
            }
            try writer.finish()
            let rank = reports.map(\.rank).max() ?? 0
            try folder.write(JSONValue.object(adapterConfig(base: baseRef, rank: rank, reports: reports, modulesToSave: modulesToSave,
                                                            hasBias: factors.contains { $0.bias != nil })).serialized(indent: 4) + "\n",
                             to: LoRAAdapter.configFile)
            try folder.write(reportJSON(reports, model: modelRef, base: baseRef, options: options).serialized(indent: 2) + "\n",
                             to: reportFile)
            try folder.commit()
            return Report(outputPath: folder.destination, rank: rank, modules: reports, modulesToSave: modulesToSave,
                          warnings: warnings)
        } catch {
            folder.abandon()
            throw PlanError.output(error, folder: out)
        }
    }

    /// The per-module reconstruction report written beside the adapter.
    public static let reportFile = "lora_extraction.json"

    /// Factors are stored in the fine-tune tensor's dtype (as mergekit does); quantized storage gives float32.
    private static func outputDType(_ info: TensorInfo) -> DType {
        [.f32, .f16, .bf16].contains(info.dtype) ? info.dtype : .f32
    }

    /// Truncated SVD of Δ = W_model − W_base (transposed for an input embedding), in double precision.
    private static func decompose(module: String, weight: String, transpose: Bool, model: PlannedModel, base: PlannedModel,
                                  options: Options) throws -> ((a: [Float], b: [Float], shapeA: [Int], shapeB: [Int]), ModuleReport) {
        let shape = model.source.info(weight)!.shape
        let x = try model.source.readAllFloats(weight), y = try base.source.readAllFloats(weight)
        model.source.release(weight)
        base.source.release(weight)
        if let i = x.firstIndex(where: { !$0.isFinite }) {
            throw PlanError.model(model.path, "tensor '\(weight)' holds a non-finite value (\(x[i])) at element \(i)")
        }
        if let i = y.firstIndex(where: { !$0.isFinite }) {
            throw PlanError.model(base.path, "tensor '\(weight)' holds a non-finite value (\(y[i])) at element \(i)")
        }
        let (rows, cols) = transpose ? (shape[1], shape[0]) : (shape[0], shape[1])
        var delta = [Double](repeating: 0, count: rows * cols)
        var norm2 = 0.0
        for r in 0..<shape[0] {
            for c in 0..<shape[1] {
                let d = Double(x[r * shape[1] + c]) - Double(y[r * shape[1] + c])
                delta[transpose ? c * cols + r : r * cols + c] = d
                norm2 += d * d
            }
        }
        let original = delta.map(Float.init)
        let svd: (u: [Double], s: [Double], vh: [Double])
        do { svd = try LAPACK.svd(&delta, rows: rows, cols: cols) } catch { throw PlanError.tensor(weight, "\(error)") }
        let k = svd.s.count
        var rank = min(options.maxRank, k)
        if options.svEpsilon > 0 { rank = min(rank, svd.s.filter { $0 > options.svEpsilon }.count) }
        var a = [Float](repeating: 0, count: rank * cols), b = [Float](repeating: 0, count: rows * rank)
        let dtype = outputDType(model.source.info(weight)!)
        for j in 0..<rank {
            let s = max(0, svd.s[j])
            let (sa, sb) = options.distributeScale ? (s.squareRoot(), s.squareRoot()) : (s, 1)
            for i in 0..<cols { a[j * cols + i] = Float(sa * svd.vh[j * cols + i]) }
            for o in 0..<rows { b[o * rank + j] = Float(svd.u[o * k + j] * sb) }
        }
        roundToPrecision(&a, count: a.count, of: dtype)
        roundToPrecision(&b, count: b.count, of: dtype)
        // The error of the factors as stored: Δ − B·A.
        var residual = original
        if rank > 0 {
            BLAS.sgemm(transA: false, transB: false, m: rows, n: cols, k: rank, alpha: -1, a: b, lda: rank, b: a, ldb: cols, beta: 1,
                       c: &residual, ldc: cols)
        }
        let error = residual.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let tail = svd.s.dropFirst(rank).reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        let norm = norm2.squareRoot()
        let report = ModuleReport(module: module, shape: shape, rank: rank, deltaNorm: norm, errorNorm: error,
                                  optimalRelativeError: norm == 0 ? 0 : tail / norm, singularValues: Array(svd.s.prefix(8)))
        return ((a, b, [rank, cols], [rows, rank]), report)
    }

    /// adapter_config.json as mergekit writes it: r = the largest rank, lora_alpha = r (scale 1), rank_pattern and
    /// alpha_pattern for modules of smaller rank, target_modules = the distinct short names (first-seen order).
    /// `lora_bias` is set when bias deltas were saved, so that PEFT applies them too.
    private static func adapterConfig(base: String, rank: Int, reports: [ModuleReport], modulesToSave: [String],
                                      hasBias: Bool) -> JSONObject {
        var targets: [String] = []
        for r in reports {
            let key = String(r.module.split(separator: ".").last ?? "")
            if !targets.contains(key) { targets.append(key) }
        }
        let smaller = JSONObject(reports.filter { $0.rank != rank }.map { ($0.module, JSONValue.int(Int64($0.rank))) })
        var config = JSONObject([
            ("base_model_name_or_path", .string(base)), ("peft_type", .string("LORA")), ("use_rslora", .bool(false)),
            ("target_modules", .array(targets.map { .string($0) })), ("modules_to_save", .array(modulesToSave.map { .string($0) })),
            ("task_type", .string("CAUSAL_LM")), ("r", .int(Int64(rank))), ("lora_alpha", .int(Int64(rank))),
            ("rank_pattern", .object(smaller)), ("alpha_pattern", .object(smaller)), ("lora_dropout", .double(0)),
            ("fan_in_fan_out", .bool(false)), ("inference_mode", .bool(true)),
        ])
        if hasBias { config["lora_bias"] = .bool(true) }
        return config
    }

    private static func reportJSON(_ reports: [ModuleReport], model: String, base: String, options: Options) -> JSONValue {
        let modules = reports.map { r -> (String, JSONValue) in
            (r.module, .object(JSONObject([
                ("shape", .array(r.shape.map { .int(Int64($0)) })), ("rank", .int(Int64(r.rank))),
                ("delta_fro", .double(r.deltaNorm)), ("abs_err_fro", .double(r.errorNorm)), ("rel_err_fro", .double(r.relativeError)),
                ("optimal_rel_err_fro", .double(r.optimalRelativeError)),
                ("top_singular_values", .array(r.singularValues.map { .double($0) })),
            ])))
        }
        return .object(JSONObject([
            ("model", .string(model)), ("base", .string(base)), ("max_rank", .int(Int64(options.maxRank))),
            ("sv_epsilon", .double(options.svEpsilon)), ("distribute_scale", .bool(options.distributeScale)),
            ("embed_lora", .bool(options.embedLoRA)), ("modules", .object(JSONObject(modules))),
        ]))
    }
}
