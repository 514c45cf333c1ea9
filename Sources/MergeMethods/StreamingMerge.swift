import Recipes

/// Gives a streaming method blocks of its inputs. The executor implements it over the parents' checkpoints
/// (vocabulary re-indexing and compute-dtype rounding included); tests implement it over arrays.
public protocol MergeInputReader {
    /// Fills `dest` with elements `range` (flat indices of the whole tensor) of input `k`, as float32.
    /// Any range may be read, in any order and any number of times.
    func read(_ k: Int, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws
}

/// Receives a streaming method's output blocks.
public protocol MergeOutputWriter {
    /// Accepts output elements `range`. Methods call it with consecutive ranges that tile the tensor in order.
    func write(range: Range<Int>, values: UnsafePointer<Float>) throws
}

/// One parent's parameters, without its values (a streaming method reads those through a `MergeInputReader`).
public struct StreamingInput {
    public let parameters: [String: ParameterValue]
    public let modelIndex: Int
    public let modelName: String

    public init(parameters: [String: ParameterValue], modelIndex: Int, modelName: String) {
        self.parameters = parameters
        self.modelIndex = modelIndex
        self.modelName = modelName
    }
}

/// Everything a streaming method needs to merge one output tensor block by block.
public struct StreamingMergeRequest {
    public let tensorName: String
    public let shape: [Int]
    /// Elements of the tensor (every input and the output have this many).
    public let count: Int
    public let inputs: [StreamingInput]
    public let baseIndex: Int?
    public let global: [String: ParameterValue]
    public let seed: UInt64
    public let threads: Int
    /// Elements per block the caller would like; methods round it to a multiple of `StreamingMergeRequest.blockQuantum`
    /// so that per-chunk reductions add up in the same order as the whole-tensor kernels.
    public let blockElements: Int
    /// Reusable scratch memory of the calling worker.
    public let workspace: MergeWorkspace

    public init(tensorName: String, shape: [Int], count: Int, inputs: [StreamingInput], baseIndex: Int?,
                global: [String: ParameterValue], seed: UInt64, threads: Int = 1, blockElements: Int = 1 << 20,
                workspace: MergeWorkspace = MergeWorkspace()) {
        self.tensorName = tensorName
        self.shape = shape
        self.count = count
        self.inputs = inputs
        self.baseIndex = baseIndex
        self.global = global
        self.seed = seed
        self.threads = max(1, threads)
        self.blockElements = blockElements
        self.workspace = workspace
    }

    /// Block granularity: the reduction chunk size (a multiple of 64, so blocks also own whole mask words).
    public static var blockQuantum: Int { Chunking.size }

    /// The block size actually used: a positive multiple of `blockQuantum`.
    public var block: Int {
        let q = StreamingMergeRequest.blockQuantum
        return max(q, blockElements / q * q)
    }

    /// The blocks tiling the tensor, in order.
    var blocks: [Range<Int>] {
        stride(from: 0, to: count, by: block).map { $0..<min(count, $0 + block) }
    }

    /// The base input's index and the others', for methods measured against a base; an error naming `method` when
    /// the request has no base.
    func baseAndOthers(_ method: String) throws -> (base: Int, others: [Int]) {
        _ = try parameterView.requireBase(method)
        let base = baseIndex!
        return (base, inputs.indices.filter { $0 != base })
    }

    /// A block-sized float32 buffer of the worker's workspace (the output block, or input block k at
    /// `WorkspaceSlot.inputs + k`), kept from tensor to tensor.
    func blockBuffer(_ slot: Int) -> UnsafeMutablePointer<Float> {
        workspace.buffer(slot, count: min(count, block), of: Float.self)
    }

    /// Writes input `k` unchanged, block by block (a method given a single input, or nothing to add to the base).
    func copyThrough(_ k: Int, inputs reader: any MergeInputReader, output writer: any MergeOutputWriter) throws -> [String] {
        let buffer = blockBuffer(WorkspaceSlot.output)
        for blk in blocks {
            try reader.read(k, range: blk, into: buffer)
            try writer.write(range: blk, values: buffer)
        }
        return []
    }

    /// The same request as a `MergeRequest` without values, so parameter helpers and messages are shared.
    var parameterView: MergeRequest {
        let empty = UnsafeBufferPointer<Float>(start: nil, count: 0)
        return MergeRequest(tensorName: tensorName, shape: shape,
                            inputs: inputs.map { MergeInput(values: empty, parameters: $0.parameters, modelIndex: $0.modelIndex,
                                                            modelName: $0.modelName) },
                            baseIndex: baseIndex, global: global, seed: seed, threads: threads)
    }
}

/// A method that can merge a tensor without holding every input in memory: it reads blocks through a
/// `MergeInputReader`, making as many passes as its math needs, and writes output blocks in order.
/// Its results are bit-identical to `merge(_:into:)` on the whole tensor.
public protocol StreamingMergeMethod: MergeMethod {
    /// Bytes of whole-tensor scratch (selection keys, masks, iterates) `mergeStreaming` holds for a tensor of
    /// `count` elements with `inputCount` inputs, beyond one block per input and the output block.
    func streamingScratchBytes(count: Int, inputCount: Int) -> Int

    /// Merges the tensor, reading inputs through `inputs` and writing every output block to `output`. Returns warnings.
    func mergeStreaming(_ request: StreamingMergeRequest, inputs: any MergeInputReader, output: any MergeOutputWriter) throws -> [String]
}

extension StreamingMergeMethod {
    /// The whole-tensor entry point of a streaming method: a thin adapter that hands the kernel the in-memory inputs
    /// and output, so every method is written once (as its streaming kernel).
    public func merge(_ request: MergeRequest, into output: UnsafeMutableBufferPointer<Float>) throws -> [String] {
        try request.checkSizes(name, output: output)
        let stream = StreamingMergeRequest(
            tensorName: request.tensorName, shape: request.shape, count: output.count,
            inputs: request.inputs.map { StreamingInput(parameters: $0.parameters, modelIndex: $0.modelIndex, modelName: $0.modelName) },
            baseIndex: request.baseIndex, global: request.global, seed: request.seed, threads: request.threads)
        let writer = BufferOutputWriter(output)
        let warnings = try mergeStreaming(stream, inputs: BufferInputReader(request.inputs.map(\.values)), output: writer)
        guard writer.written == output.count else {
            throw MergeMethodError.tensor(name, request, "wrote \(writer.written) of \(output.count) elements")
        }
        return warnings
    }
}

/// Scratch buffers kept by one worker thread from tensor to tensor, so large buffers are faulted in once
/// rather than once per tensor. Not thread-safe: one merge uses it at a time (its parallel parts use disjoint slots or ranges).
public final class MergeWorkspace: @unchecked Sendable {
    private var slots: [Int: (pointer: UnsafeMutableRawPointer, bytes: Int)] = [:]

    public init() {}

    deinit {
        for s in slots.values { s.pointer.deallocate() }
    }

    /// Bytes currently held.
    public var bytesHeld: Int { slots.values.reduce(0) { $0 + $1.bytes } }

    /// Frees every buffer (the next `buffer` call allocates afresh).
    public func releaseAll() {
        for s in slots.values { s.pointer.deallocate() }
        slots.removeAll()
    }

    /// A buffer of at least `count` elements of `T` in slot `slot` (contents undefined; valid until the next call for that slot).
    public func buffer<T>(_ slot: Int, count: Int, of _: T.Type = T.self) -> UnsafeMutablePointer<T> {
        let bytes = max(64, count * MemoryLayout<T>.stride)
        if let s = slots[slot], s.bytes >= bytes {
            return s.pointer.bindMemory(to: T.self, capacity: count)
        }
        if let s = slots[slot] { s.pointer.deallocate() }
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        slots[slot] = (p, bytes)
        return p.bindMemory(to: T.self, capacity: count)
    }
}

/// Workspace slots used by the streaming methods (the executor uses slots from 1000 up).
enum WorkspaceSlot {
    static let keys = 0
    static let output = 1
    static let scratch = 2
    /// Input block k lives in slot `inputs + k`.
    static let inputs = 16
}

/// A reader over in-memory arrays (tests, and the whole-tensor fallback).
public struct BufferInputReader: MergeInputReader {
    public let buffers: [UnsafeBufferPointer<Float>]
    public init(_ buffers: [UnsafeBufferPointer<Float>]) { self.buffers = buffers }
    public func read(_ k: Int, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws {
        guard buffers.indices.contains(k), range.upperBound <= buffers[k].count, let p = buffers[k].baseAddress else {
            throw MergeMethodError("input \(k) has no elements \(range)")
        }
        dest.update(from: p + range.lowerBound, count: range.count)
    }
}

/// A writer into one in-memory array; checks that blocks arrive in order.
public final class BufferOutputWriter: MergeOutputWriter {
    public let buffer: UnsafeMutableBufferPointer<Float>
    public private(set) var written = 0
    public init(_ buffer: UnsafeMutableBufferPointer<Float>) { self.buffer = buffer }
    public func write(range: Range<Int>, values: UnsafePointer<Float>) throws {
        guard range.lowerBound == written, range.upperBound <= buffer.count, let p = buffer.baseAddress else {
            throw MergeMethodError("output block \(range) out of order (next expected at \(written))")
        }
        (p + range.lowerBound).update(from: values, count: range.count)
        written = range.upperBound
    }
}

/// Reads one block of several inputs into workspace slots and hands out pointers addressed by indices of the
/// whole tensor (`pointer[i]` for i in the block), for methods that combine every input at once.
struct MultiBlockReader {
    let reader: any MergeInputReader
    let inputs: [Int]
    let buffers: [UnsafeMutablePointer<Float>]
    /// Pointers of the current block, in `inputs` order.
    let pointers: UnsafeMutablePointer<UnsafePointer<Float>>

    /// Buffers in `stream`'s workspace input slots, one block each unless `capacity` says more (whole rows).
    init(_ reader: any MergeInputReader, inputs: [Int], of stream: StreamingMergeRequest, capacity: Int? = nil) {
        self.reader = reader
        self.inputs = inputs
        let workspace = stream.workspace, capacity = capacity ?? min(stream.count, stream.block)
        buffers = inputs.indices.map { workspace.buffer(WorkspaceSlot.inputs + $0, count: capacity, of: Float.self) }
        pointers = workspace.buffer(WorkspaceSlot.inputs + inputs.count, count: inputs.count, of: UnsafePointer<Float>.self)
    }

    func read(_ blk: Range<Int>) throws {
        for (k, input) in inputs.enumerated() {
            try reader.read(input, range: blk, into: buffers[k])
            pointers[k] = UnsafePointer(buffers[k] - blk.lowerBound)
        }
    }
}
