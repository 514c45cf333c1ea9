import Checkpoints
import Foundation
import Host
import MergeMethods
import Numerics

/// Progress of a running merge, reported after each tensor.
public struct MergeProgress: Sendable {
    public let tensorsDone: Int
    public let tensorsTotal: Int
    public let bytesRead: Int
    public let bytesTotal: Int
    public let seconds: Double
    public let lastTensor: String

    public init(tensorsDone: Int, tensorsTotal: Int, bytesRead: Int, bytesTotal: Int, seconds: Double, lastTensor: String) {
        self.tensorsDone = tensorsDone
        self.tensorsTotal = tensorsTotal
        self.bytesRead = bytesRead
        self.bytesTotal = bytesTotal
        self.seconds = seconds
        self.lastTensor = lastTensor
    }
}

/// What a finished merge did.
public struct MergeReport: Sendable {
    public let outputPath: String
    public let seconds: Double
    public let bytesRead: Int
    public let bytesWritten: Int
    public let tensors: Int
    public let shards: Int
    public let peakResidentBytes: Int?
    public let warnings: [String]

    public init(outputPath: String, seconds: Double, bytesRead: Int, bytesWritten: Int, tensors: Int, shards: Int,
                peakResidentBytes: Int?, warnings: [String]) {
        self.outputPath = outputPath
        self.seconds = seconds
        self.bytesRead = bytesRead
        self.bytesWritten = bytesWritten
        self.tensors = tensors
        self.shards = shards
        self.peakResidentBytes = peakResidentBytes
        self.warnings = warnings
    }
}

public struct ExecutionOptions: Sendable {
    /// Replace an existing output folder (only once the new one is complete).
    public var overwrite: Bool
    public var writeModelCard: Bool
    public var progress: (@Sendable (MergeProgress) -> Void)?
    /// Merge tensors whose inputs hold NaN or infinite values (reported per tensor) instead of failing;
    /// see `NonFinitePolicy`.
    public var allowNonFinite: Bool

    public init(overwrite: Bool = false, writeModelCard: Bool = true, allowNonFinite: Bool = false,
                progress: (@Sendable (MergeProgress) -> Void)? = nil) {
        self.overwrite = overwrite
        self.writeModelCard = writeModelCard
        self.allowNonFinite = allowNonFinite
        self.progress = progress
    }

    /// Opens the output transaction for `destination` (a hidden staging folder beside it), refusing an existing
    /// folder unless `overwrite`, and any of `inputs` as the destination; failures become `PlanError.output`.
    public func openOutput(_ destination: String, inputs: [String]) throws -> OutputFolder {
        do {
            return try OutputFolder(destination: destination, overwrite: overwrite, inputs: inputs)
        } catch {
            throw PlanError.output(error, folder: destination)
        }
    }
}

/// Runs a `MergePlan`: streams tensor by tensor (block by block for elementwise methods) on all cores within a
/// memory budget, writes into a hidden temporary folder beside the output, and renames it into place only when
/// everything is written, so an interrupted or failed run never leaves an output that looks complete.
public enum PlanExecutor {
    /// Elements per block when a method can stream a tensor.
    public static let blockElements = 1 << 22
    /// Elements per block for streaming (non-elementwise) methods: small enough that a block of every input stays
    /// in cache between the read and the combine, large enough to split across cores.
    public static let streamBlockElements = 1 << 20
    /// Workspace slot of the converted output bytes.
    static let outputBytesSlot = 1000

    public static func execute(_ plan: MergePlan, outputPath: String,
                               options: ExecutionOptions = ExecutionOptions()) throws -> MergeReport {
        let start = Date()
        let folder = try options.openOutput(outputPath, inputs: plan.models.flatMap(\.inputPaths))
        // Lay out every shard before computing anything.
        let writers: [SafetensorsWriter]
        do { writers = try plan.shards.makeWriters(in: folder) } catch {
            throw PlanError.output(error, folder: folder.destination)
        }

        // The workers use every core; the only BLAS calls of a merge (LoRA updates, small products) run one thread each,
        // as OpenBLAS's own threads would only compete with them.
        BLAS.setThreads(1)
        defer { BLAS.setThreads(ProcessInfo.processInfo.activeProcessorCount) }
        let state = ExecutionState(plan: plan, budget: plan.estimate.memoryBudget, progress: options.progress, start: start)
        runTasks(plan, state: state, allowNonFinite: options.allowNonFinite) { writers[$0.shard] }
        if let error = state.error {
            for w in writers { try? w.finish() }
            throw PlanError.failure(error)
        }
        for w in writers { try w.finish() }

        do {
            try writeSideFiles(plan, into: folder, writeCard: options.writeModelCard)
            try folder.commit()
        } catch {
            throw PlanError.output(error, folder: folder.destination)
        }
        let written = writers.reduce(0) { $0 + $1.fileSize }
        return MergeReport(outputPath: folder.destination, seconds: Date().timeIntervalSince(start), bytesRead: plan.estimate.bytesRead,
                           bytesWritten: written, tensors: plan.tasks.count, shards: writers.count,
                           peakResidentBytes: peakResidentBytes(), warnings: plan.warnings + state.warnings)
    }

    /// Runs every task of `plan` on `plan.threads` workers, big tensors first (they bound the peak, and small ones then
    /// fill the gaps), each task's bytes going to `sink(task)`; errors and warnings are collected in `state`.
    static func runTasks(_ plan: MergePlan, state: ExecutionState, allowNonFinite: Bool,
                         sink: (TensorTask) -> any TensorByteSink) {
        let threads = max(1, min(plan.threads, plan.tasks.count))
        let order = plan.tasks.indices.sorted {
            (PlanExecutorTask.cost(plan.tasks[$0]), -$0) > (PlanExecutorTask.cost(plan.tasks[$1]), -$1)
        }
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            // Scratch reused from tensor to tensor by this worker: big buffers are faulted in once.
            let workspace = MergeWorkspace()
            while let i = state.next(order) {
                let task = plan.tasks[i]
                let need = MergePlanner.workingSet(task, method: plan.method)
                state.acquire(need)
                do {
                    let warnings = try PlanExecutorTask.run(task, plan: plan, writer: sink(task), workspace: workspace,
                                                            allowNonFinite: allowNonFinite)
                    // Buffers kept between tasks are outside the budget's accounting: keep at most this worker's share.
                    if workspace.bytesHeld > plan.estimate.memoryBudget / threads { workspace.releaseAll() }
                    state.finish(task, warnings: warnings, bytes: need)
                } catch {
                    state.fail(error, bytes: need)
                }
            }
        }
    }

    static func writeSideFiles(_ plan: MergePlan, into folder: OutputFolder, writeCard: Bool) throws {
        try plan.shards.writeIndex(in: folder)
        try folder.write(JSONValue.object(plan.outputConfig).serialized(indent: 2, sortKeys: true) + "\n", to: "config.json")
        try TokenizerFiles.copy(plan: plan, into: folder.staging)
        try folder.write(plan.recipe.text, to: "mergekit_config.yml")
        let title = (folder.destination as NSString).lastPathComponent
        if writeCard { try folder.write(ModelCard.render(plan: plan, title: title), to: "README.md") }
    }
}

/// Shared state of the worker threads: the task queue, the memory budget, errors and progress.
final class ExecutionState: @unchecked Sendable {
    private let lock = NSCondition()
    private var cursor = 0
    private var inFlight = 0
    private let budget: Int
    private(set) var error: Error?
    private(set) var warnings: [String] = []
    private var done = 0
    private var bytesRead = 0
    private let plan: MergePlan
    private let progress: (@Sendable (MergeProgress) -> Void)?
    private let start: Date

    init(plan: MergePlan, budget: Int, progress: (@Sendable (MergeProgress) -> Void)?, start: Date) {
        self.plan = plan
        self.budget = budget
        self.progress = progress
        self.start = start
    }

    func next(_ order: [Int]) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard error == nil, cursor < order.count else { return nil }
        cursor += 1
        return order[cursor - 1]
    }

    /// Waits until `bytes` fit in the budget (a task larger than the budget runs alone).
    func acquire(_ bytes: Int) {
        lock.lock()
        while inFlight > 0 && inFlight + bytes > budget { lock.wait() }
        inFlight += bytes
        lock.unlock()
    }

    func finish(_ task: TensorTask, warnings new: [String], bytes: Int) {
        lock.lock()
        inFlight -= bytes
        done += 1
        bytesRead += task.inputBytes
        warnings.append(contentsOf: new)
        let snapshot = MergeProgress(tensorsDone: done, tensorsTotal: plan.tasks.count, bytesRead: bytesRead,
                                     bytesTotal: plan.estimate.bytesRead, seconds: Date().timeIntervalSince(start),
                                     lastTensor: task.outputName)
        lock.broadcast()
        lock.unlock()
        progress?(snapshot)
    }

    func fail(_ e: Error, bytes: Int) {
        lock.lock()
        inFlight -= bytes
        if error == nil { error = e }
        lock.broadcast()
        lock.unlock()
    }
}

/// The work for one output tensor.
enum PlanExecutorTask {
    static func cost(_ t: TensorTask) -> Int { t.elementCount * max(1, t.inputs.count) }

    static func run(_ task: TensorTask, plan: MergePlan, writer: any TensorByteSink, workspace: MergeWorkspace,
                    allowNonFinite: Bool = false) throws -> [String] {
        let sources = try AlignedRowSource.sources(for: task, plan: plan)
        defer { for (s, inp) in zip(sources, task.inputs) { s.release(inp.tensorName) } }
        let tally = NonFiniteTally(inputs: task.inputs.count, total: task.elementCount)
        var output = (count: 0, first: Int?.none)
        var warnings: [String] = []
        var failure: Error? = nil

        do {
            if task.operation == .copy, let bytes = try sources[0].rawBytes(task.inputs[0].tensorName) {
                let (bad, at) = NonFinitePolicy.scan(bytes: bytes, dtype: task.inputs[0].info.dtype)
                if bad > 0 {
                    let e = NonFinitePolicy.Finding(input: plan.models[task.inputs[0].model].reference.raw, count: bad,
                                                    first: NonFinitePolicy.position(at!, shape: task.shape))
                    try check(task, plan: plan, findings: [e], output: (bad, at), allow: allowNonFinite, into: &warnings)
                }
                try writer.write(task.outputName, bytes: bytes, byteOffset: 0)
                return warnings
            }
            // A copy of quantized storage is dequantized and written as the output dtype, like a merge.
            if let streaming = streamingMethod(task, plan: plan) {
                (warnings, output) = try mergeStreaming(task, method: streaming, plan: plan, sources: sources, writer: writer,
                                                        workspace: workspace, tally: tally)
            } else {
                (warnings, output) = try merge(task, plan: plan, sources: sources, writer: writer, workspace: workspace, tally: tally)
            }
        } catch {
            failure = error
        }
        // Every input element is counted once, whatever the method read; a failed method's error gives way to the
        // non-finite inputs that likely caused it.
        try tally.complete(block: PlanExecutor.streamBlockElements) { k, range, dest in
            try readParallel(task.inputs[k], source: sources[k], outputShape: task.shape, range: range, into: dest, threads: 1)
        }
        let findings = task.inputs.indices.compactMap { k -> NonFinitePolicy.Finding? in
            guard tally.counts[k] > 0 else { return nil }
            return NonFinitePolicy.Finding(input: plan.models[task.inputs[k].model].reference.raw, count: tally.counts[k],
                                           first: NonFinitePolicy.position(tally.first[k]!, shape: task.shape))
        }
        if let failure, findings.isEmpty { throw failure }
        try check(task, plan: plan, findings: findings, output: failure == nil ? output : (0, nil), allow: allowNonFinite && failure == nil,
                  into: &warnings)
        if let failure { throw failure }
        return warnings
    }

    /// Applies `NonFinitePolicy` to one tensor: throws, or adds its warning.
    private static func check(_ task: TensorTask, plan: MergePlan, findings: [NonFinitePolicy.Finding], output: (count: Int, first: Int?),
                              allow: Bool, into warnings: inout [String]) throws {
        let first = output.first.map { NonFinitePolicy.position($0, shape: task.shape) }
        switch NonFinitePolicy.judge(tensor: task.outputName, method: plan.method.name, inputs: findings, outputCount: output.count,
                                     outputFirst: first, allow: allow) {
        case let .failure(e): throw e
        case let .success(w): warnings += w.map { "tensor '\(task.outputName)': \($0)" }
        }
    }

    /// The plan's method when this task goes through the streaming path (non-elementwise merges it supports).
    static func streamingMethod(_ task: TensorTask, plan: MergePlan) -> (any StreamingMergeMethod)? {
        streamingMethod(task, method: plan.method)
    }

    static func streamingMethod(_ task: TensorTask, method: any MergeMethod) -> (any StreamingMergeMethod)? {
        guard task.operation != .copy, !task.elementwise, let m = method as? any StreamingMergeMethod else { return nil }
        return m
    }

    /// Merges through `StreamingMergeMethod.mergeStreaming`: inputs are read block by block on demand.
    private static func mergeStreaming(_ task: TensorTask, method: any StreamingMergeMethod, plan: MergePlan,
                                       sources: [any TensorSource], writer: any TensorByteSink,
                                       workspace: MergeWorkspace, tally: NonFiniteTally) throws -> ([String], (count: Int, first: Int?)) {
        let total = task.elementCount
        let threads = total >= 1 << 20 ? plan.threads : 1
        let reader = TaskInputReader(task: task, sources: sources, threads: threads, tally: tally)
        let output = TaskOutputWriter(task: task, writer: writer, workspace: workspace)
        let inputs = task.inputs.map { inp in
            StreamingInput(parameters: inp.parameters, modelIndex: inp.model, modelName: plan.models[inp.model].reference.raw)
        }
        let request = StreamingMergeRequest(tensorName: task.outputName, shape: task.shape, count: total, inputs: inputs,
                                            baseIndex: task.baseIndex, global: task.global, seed: plan.seed, threads: threads,
                                            blockElements: PlanExecutor.streamBlockElements, workspace: workspace)
        var warnings: [String]
        do {
            warnings = try method.mergeStreaming(request, inputs: reader, output: output).map { "tensor '\(task.outputName)': \($0)" }
        } catch let e as MergeMethodError {
            throw PlanError.tensor(task.outputName, e.message)
        }
        guard output.written == total else {
            throw PlanError.tensor(task.outputName, "the \(plan.method.name) method wrote \(output.written) of \(total) elements")
        }
        return (warnings, (output.nonFinite, output.firstNonFinite))
    }

    /// Reads blocks of a task's inputs (re-indexed to the output vocabulary, rounded to the compute dtype) for streaming methods.
    final class TaskInputReader: MergeInputReader {
        let task: TensorTask
        let sources: [any TensorSource]
        let threads: Int
        let tally: NonFiniteTally
        init(task: TensorTask, sources: [any TensorSource], threads: Int, tally: NonFiniteTally) {
            self.task = task
            self.sources = sources
            self.threads = threads
            self.tally = tally
        }
        func read(_ k: Int, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws {
            guard task.inputs.indices.contains(k), range.lowerBound >= 0, range.upperBound <= task.elementCount else {
                throw PlanError.tensor(task.outputName, "a method asked for elements \(range) of input \(k)")
            }
            let input = task.inputs[k]
            try PlanExecutorTask.readParallel(input, source: sources[k], outputShape: task.shape, range: range, into: dest,
                                              threads: threads)
            tally.note(k, range: range, values: dest)
            if let c = task.computeDType, c != input.info.dtype { roundToPrecision(dest, count: range.count, of: c) }
        }
    }

    /// Converts output blocks to the output dtype and writes them into the shard.
    final class TaskOutputWriter: MergeOutputWriter {
        let task: TensorTask
        let writer: any TensorByteSink
        let workspace: MergeWorkspace
        private(set) var written = 0
        private(set) var nonFinite = 0
        private(set) var firstNonFinite: Int? = nil
        init(task: TensorTask, writer: any TensorByteSink, workspace: MergeWorkspace) {
            self.task = task
            self.writer = writer
            self.workspace = workspace
        }
        func write(range: Range<Int>, values: UnsafePointer<Float>) throws {
            guard range.lowerBound == written, range.upperBound <= task.elementCount else {
                throw PlanError.tensor(task.outputName, "output block \(range) out of order (next expected at \(written))")
            }
            let size = task.outputDType.byteSize
            let bytes = workspace.buffer(PlanExecutor.outputBytesSlot, count: range.count * size, of: UInt8.self)
            let (bad, at) = NonFinitePolicy.scan(values, count: range.count)
            if bad > 0, firstNonFinite == nil { firstNonFinite = range.lowerBound + at! }
            nonFinite += bad
            convertFromFloat(values, count: range.count, to: task.outputDType, into: UnsafeMutableRawPointer(bytes))
            try writer.write(task.outputName, bytes: UnsafeRawBufferPointer(start: bytes, count: range.count * size),
                             byteOffset: range.lowerBound * size)
            written = range.upperBound
        }
    }

    private static func merge(_ task: TensorTask, plan: MergePlan, sources: [any TensorSource], writer: any TensorByteSink,
                              workspace: MergeWorkspace, tally: NonFiniteTally) throws -> ([String], (count: Int, first: Int?)) {
        let total = task.elementCount
        let block = task.elementwise ? min(total, PlanExecutor.blockElements) : total
        let n = task.inputs.count
        // Blocks live in the worker's workspace, reused from tensor to tensor (no fresh page faults per tensor).
        let size = task.outputDType.byteSize
        let inputs = (0..<n).map { workspace.buffer(PlanExecutor.outputBytesSlot + 2 + $0, count: block, of: Float.self) }
        let output = workspace.buffer(PlanExecutor.outputBytesSlot + 1, count: block, of: Float.self)
        let bytes = workspace.buffer(PlanExecutor.outputBytesSlot, count: block * size, of: UInt8.self)
        var warnings: [String] = []
        var nonFinite = 0
        var firstNonFinite: Int? = nil
        let modelNames = task.inputs.map { plan.models[$0.model].reference.raw }
        // Large tensors may use every core (results never depend on it); small ones run one per worker.
        let threads = total >= 1 << 20 ? plan.threads : 1

        var offset = 0
        while offset < total || (total == 0 && offset == 0) {
            let count = min(block, total - offset)
            for k in 0..<n {
                try readParallel(task.inputs[k], source: sources[k], outputShape: task.shape, range: offset..<(offset + count),
                                 into: inputs[k], threads: threads)
                tally.note(k, range: offset..<(offset + count), values: inputs[k])
                // Round to the recipe's compute dtype unless the input is already stored in it.
                if let c = task.computeDType, c != task.inputs[k].info.dtype {
                    roundToPrecision(inputs[k], count: count, of: c)
                }
            }
            let mergeInputs = (0..<n).map { k in
                MergeInput(values: UnsafeBufferPointer(start: inputs[k], count: count), parameters: task.inputs[k].parameters,
                           modelIndex: task.inputs[k].model, modelName: modelNames[k])
            }
            let request = MergeRequest(tensorName: task.outputName, shape: task.shape, inputs: mergeInputs,
                                       baseIndex: task.baseIndex, global: task.global, seed: plan.seed, elementOffset: offset,
                                       threads: threads)
            let w: [String]
            do {
                w = try plan.method.merge(request, into: UnsafeMutableBufferPointer(start: output, count: count))
            } catch let e as MergeMethodError {
                throw PlanError.tensor(task.outputName, e.message)
            }
            warnings.append(contentsOf: w.map { "tensor '\(task.outputName)': \($0)" })
            let (bad, at) = NonFinitePolicy.scan(output, count: count)
            if bad > 0, firstNonFinite == nil { firstNonFinite = offset + at! }
            nonFinite += bad
            convertFromFloat(output, count: count, to: task.outputDType, into: UnsafeMutableRawPointer(bytes))
            try writer.write(task.outputName, bytes: UnsafeRawBufferPointer(start: bytes, count: count * size), byteOffset: offset * size)
            offset += count
            if total == 0 { break }
        }
        return (warnings, (nonFinite, firstNonFinite))
    }

    /// `read` split into chunks across `threads` cores for large ranges.
    static func readParallel(_ input: PlannedInput, source: any TensorSource, outputShape: [Int], range: Range<Int>,
                                     into dest: UnsafeMutablePointer<Float>, threads: Int) throws {
        let chunks = threads > 1 && range.count >= 1 << 21 ? threads * 4 : 1
        if chunks == 1 {
            try read(input, source: source, outputShape: outputShape, range: range, into: dest)
            return
        }
        try parallelForThrowing(chunks, threads: threads) { c in
            let lo = range.lowerBound + range.count * c / chunks, hi = range.lowerBound + range.count * (c + 1) / chunks
            try read(input, source: source, outputShape: outputShape, range: lo..<hi, into: dest + (lo - range.lowerBound))
        }
    }

    /// Reads elements `range` of an input tensor (re-indexed inputs come as `AlignedRowSource`s of the output shape).
    private static func read(_ input: PlannedInput, source: any TensorSource, outputShape: [Int], range: Range<Int>,
                             into dest: UnsafeMutablePointer<Float>) throws {
        guard input.info.shape == outputShape else {
            throw PlanError.tensor(input.tensorName, "input shape \(input.info.shape) differs from the output's \(outputShape)")
        }
        try source.readFloats(input.tensorName, range: range, into: dest)
    }
}
