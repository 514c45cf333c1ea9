import Checkpoints
import Foundation
import Host
import Inference
import Numerics
import Planner
import Tokenization

/// What a finished MoE build did.
public struct MoEReport: Sendable {
    public let outputPath: String
    public let seconds: Double
    /// Time spent computing the router rows (running the base for prompt-based modes).
    public let gateSeconds: Double
    public let bytesWritten: Int
    public let tensors: Int
    public let shards: Int
    public let peakResidentBytes: Int?
    public let warnings: [String]
    public let gates: GateRows
}

/// Runs a `MoEPlan`: computes the router rows, then streams every output tensor (copied, converted, noised or
/// concatenated from its pieces, block by block on all cores) into an `OutputFolder`, so the output appears only when
/// complete.
public enum MoEBuilder {
    /// Elements converted at a time.
    static let blockElements = 1 << 20

    public static func build(_ plan: MoEPlan, outputPath: String, options: ExecutionOptions = ExecutionOptions()) throws -> MoEReport {
        let start = Date()
        let folder = try options.openOutput(outputPath, inputs: plan.models.flatMap(\.inputPaths))

        let model = plan.recipe.gateMode.runsModel ? try LanguageModel(path: plan.context.base.path, threads: plan.threads) : nil
        let gates = try GateRows.compute(plan, model: model)
        let gateSeconds = Date().timeIntervalSince(start)
        // The base's pages touched by the forward passes are not needed for writing.
        if model != nil { for name in plan.context.base.source.tensorNames { plan.context.base.source.release(name) } }
        var warnings = plan.warnings
        warnings += GateDiagnostics.warnings(gates, expertLabels: plan.recipe.experts.indices.map { plan.context.expertLabel($0) })
        options.progress?(MergeProgress(tensorsDone: 0, tensorsTotal: plan.tensors.count, bytesRead: 0, bytesTotal: plan.estimate.bytesRead,
                                        seconds: gateSeconds, lastTensor: "router rows"))

        let writers: [SafetensorsWriter]
        do { writers = try plan.shards.makeWriters(in: folder) } catch { throw PlanError.output(error, folder: folder.destination) }
        let order = plan.tensors.indices.sorted { (plan.tensors[$0].elementCount, -$0) > (plan.tensors[$1].elementCount, -$1) }
        let queue = WorkQueue(order)
        let failure = FirstError()
        let progress = ProgressCounter(total: plan.tensors.count, bytesTotal: plan.estimate.bytesRead, start: start,
                                       report: options.progress)
        let workers = max(1, min(plan.threads, plan.tensors.count))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let floats = UnsafeMutablePointer<Float>.allocate(capacity: blockElements)
            let bytes = UnsafeMutableRawPointer.allocate(byteCount: blockElements * 8, alignment: 16)
            defer { floats.deallocate(); bytes.deallocate() }
            while failure.error == nil, let i = queue.next() {
                let tensor = plan.tensors[i]
                do {
                    let read = try write(tensor, plan: plan, gates: gates, writer: writers[tensor.shard], floats: floats, bytes: bytes)
                    progress.done(tensor.name, bytesRead: read)
                } catch {
                    failure.record(error)
                }
            }
        }
        for w in writers { try? w.finish() }
        if let error = failure.error { throw PlanError.failure(error) }

        do {
            try plan.shards.writeIndex(in: folder)
            try folder.write(JSONValue.object(plan.outputConfig).serialized(indent: 2, sortKeys: true) + "\n", to: "config.json")
            try TokenizerFileSet.write(from: plan.context.base.source, path: plan.context.base.path, into: folder.staging)
            try folder.write(plan.recipe.text, to: "mergekit_moe_config.yml")
            if options.writeModelCard {
                try folder.write(MoEModelCard.render(plan, title: (folder.destination as NSString).lastPathComponent), to: "README.md")
            }
            try folder.commit()
        } catch is GGUFTokenizerExportError {
            // Reported at plan time would be better; the folder still gets everything else.
            try folder.commit()
        } catch {
            throw PlanError.output(error, folder: folder.destination)
        }
        return MoEReport(outputPath: folder.destination, seconds: Date().timeIntervalSince(start), gateSeconds: gateSeconds,
                         bytesWritten: plan.shards.totalBytes, tensors: plan.tensors.count, shards: plan.shards.files.count,
                         peakResidentBytes: peakResidentBytes(), warnings: warnings, gates: gates)
    }

    /// Writes one tensor from its pieces; returns the bytes read from parents.
    private static func write(_ tensor: MoETensor, plan: MoEPlan, gates: GateRows, writer: SafetensorsWriter,
                              floats: UnsafeMutablePointer<Float>, bytes: UnsafeMutableRawPointer) throws -> Int {
        let size = tensor.dtype.byteSize
        var offset = 0   // elements written so far
        var read = 0
        var nonFinite = 0
        func emit(_ count: Int) throws {
            for i in 0..<count where !floats[i].isFinite { nonFinite += 1 }
            convertFromFloat(floats, count: count, to: tensor.dtype, into: bytes)
            try writer.write(tensor.name, bytes: UnsafeRawBufferPointer(start: bytes, count: count * size), byteOffset: offset * size)
            offset += count
        }
        for piece in tensor.pieces {
            switch piece {
            case let .tensor(model, name, count, noise, scale, stream):
                let source = plan.models[model].source
                defer { source.release(name) }
                guard let info = source.info(name), info.elementCount == count else {
                    throw PlanError.tensor(tensor.name, "its source '\(name)' in \(plan.models[model].path) is missing or changed size")
                }
                read += count * info.dtype.byteSize
                if noise == nil && scale == nil && info.dtype == tensor.dtype, let raw = try source.rawBytes(name) {
                    // Copied bytes are checked too: an output never carries NaN silently.
                    nonFinite += NonFinitePolicy.scan(bytes: raw, dtype: info.dtype).count
                    try writer.write(tensor.name, bytes: raw, byteOffset: offset * size)
                    offset += count
                    continue
                }
                var rng = SplitMix64(seed: plan.seed, stream: stream)
                var done = 0
                while done < count {
                    let n = min(blockElements, count - done)
                    try source.readFloats(name, range: done..<(done + n), into: floats)
                    if let noise {
                        let sigma = Float(noise)
                        for i in 0..<n { floats[i] += rng.nextGaussian() * sigma }
                    }
                    if let scale {
                        let s = Float(scale)
                        for i in 0..<n { floats[i] *= s }
                    }
                    try emit(n)
                    done += n
                }
            case let .gate(layer, shared, count):
                let rows = shared ? gates.shared[layer] : gates.routed[layer]
                guard rows.count == count else {
                    throw PlanError.tensor(tensor.name, "expected \(count) router values for layer \(layer), computed \(rows.count)")
                }
                rows.withUnsafeBufferPointer { floats.update(from: $0.baseAddress!, count: count) }
                try emit(count)
            case let .zeros(count):
                var done = 0
                while done < count {
                    let n = min(blockElements, count - done)
                    floats.update(repeating: 0, count: n)
                    try emit(n)
                    done += n
                }
            }
        }
        guard offset == tensor.elementCount else {
            throw PlanError.tensor(tensor.name,
                                   "its pieces hold \(offset) elements, its shape \(tensor.shape) needs \(tensor.elementCount)")
        }
        if nonFinite > 0 { throw PlanError.tensor(tensor.name, "\(nonFinite) values are NaN or infinite (check its source model)") }
        return read
    }
}

/// Hands out indices in order to several workers.
final class WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private let items: [Int]
    private var cursor = 0
    init(_ items: [Int]) { self.items = items }
    func next() -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard cursor < items.count else { return nil }
        cursor += 1
        return items[cursor - 1]
    }
}

/// Counts finished tensors and reports progress.
final class ProgressCounter: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int, bytesTotal: Int
    private let start: Date
    private let report: (@Sendable (MergeProgress) -> Void)?
    private var done = 0, bytes = 0

    init(total: Int, bytesTotal: Int, start: Date, report: (@Sendable (MergeProgress) -> Void)?) {
        self.total = total
        self.bytesTotal = bytesTotal
        self.start = start
        self.report = report
    }

    func done(_ name: String, bytesRead: Int) {
        lock.lock()
        done += 1
        bytes += bytesRead
        let snapshot = MergeProgress(tensorsDone: done, tensorsTotal: total, bytesRead: bytes, bytesTotal: bytesTotal,
                                     seconds: Date().timeIntervalSince(start), lastTensor: name)
        lock.unlock()
        report?(snapshot)
    }
}
