import Checkpoints
import Foundation
import Numerics

/// A merged model held in memory: every output tensor of a plan in its output dtype, served as a `TensorSource`
/// so the engine reads it as it reads a file (float32 tensors in place, others converted per product).
/// `crucible evolve` refills the same buffers for every candidate of one search: plans of one recipe shape lay out
/// the same tensors, so memory is allocated once.
public final class InMemoryCheckpoint: TensorSource, TensorByteSink, @unchecked Sendable {
    public let location: String
    public let tensorNames: [String]
    private let infos: [String: TensorInfo]
    private let buffers: [String: UnsafeMutableRawBufferPointer]

    /// Allocates room for every output tensor of `plan`.
    public init(layoutOf plan: MergePlan, location: String = "<candidate in memory>") {
        self.location = location
        tensorNames = plan.tasks.map(\.outputName)
        var infos: [String: TensorInfo] = [:]
        var buffers: [String: UnsafeMutableRawBufferPointer] = [:]
        for task in plan.tasks {
            infos[task.outputName] = TensorInfo(name: task.outputName, dtype: task.outputDType, shape: task.shape)
            buffers[task.outputName] = .allocate(byteCount: max(task.outputBytes, 1), alignment: 64)
        }
        self.infos = infos
        self.buffers = buffers
    }

    deinit { for b in buffers.values { b.deallocate() } }

    /// Whether `plan` writes exactly these tensors (names, dtypes, shapes), so its merge can fill these buffers.
    public func fits(_ plan: MergePlan) -> Bool {
        plan.tasks.count == tensorNames.count
            && plan.tasks.allSatisfy { infos[$0.outputName] == TensorInfo(name: $0.outputName, dtype: $0.outputDType, shape: $0.shape) }
    }

    /// Bytes held by the tensors.
    public var byteCount: Int { buffers.values.reduce(0) { $0 + $1.count } }

    public func info(_ name: String) -> TensorInfo? { infos[name] }
    public func file(of name: String) -> String? { infos[name] == nil ? nil : location }

    public func readFloats(_ name: String, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws {
        guard let info = infos[name], let buffer = buffers[name] else {
            throw CheckpointError.missingTensor(tensor: name, checkpoint: location)
        }
        guard range.lowerBound >= 0, range.upperBound <= info.elementCount else {
            throw CheckpointError.invalidTensor(file: location, tensor: name,
                                                reason: "elements \(range) are outside its \(info.elementCount)")
        }
        convertToFloat(buffer.baseAddress! + range.lowerBound * info.dtype.byteSize, dtype: info.dtype, count: range.count, into: dest)
    }

    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer? {
        guard let info = infos[name], let buffer = buffers[name] else { return nil }
        return UnsafeRawBufferPointer(rebasing: buffer[0..<(info.elementCount * info.dtype.byteSize)])
    }

    public func write(_ name: String, bytes: UnsafeRawBufferPointer, byteOffset: Int) throws {
        guard let buffer = buffers[name], let info = infos[name] else {
            throw CheckpointError.writeFailed(path: location, reason: "tensor '\(name)' is not part of this layout")
        }
        guard byteOffset >= 0, byteOffset + bytes.count <= info.elementCount * info.dtype.byteSize else {
            throw CheckpointError.writeFailed(path: location,
                                              reason: "bytes \(byteOffset)..<\(byteOffset + bytes.count) are outside '\(name)'")
        }
        if let base = bytes.baseAddress, !bytes.isEmpty {
            (buffer.baseAddress! + byteOffset).copyMemory(from: base, byteCount: bytes.count)
        }
    }
}

extension PlanExecutor {
    /// Runs every task of `plan` into `memory` (allocated for a plan of the same layout) instead of files: the same
    /// per-tensor work as `execute` (methods, streaming, rounding, non-finite checks), largest tensors first, on
    /// `plan.threads` workers. Returns the warnings. The result is bit for bit what `execute` writes.
    @discardableResult
    public static func execute(_ plan: MergePlan, into memory: InMemoryCheckpoint, allowNonFinite: Bool = false) throws -> [String] {
        guard memory.fits(plan) else {
            throw PlanError.execution("\(memory.location): the plan's tensors differ from the layout its buffers were made for")
        }
        let state = ExecutionState(plan: plan, budget: plan.estimate.memoryBudget, progress: nil, start: Date())
        runTasks(plan, state: state, allowNonFinite: allowNonFinite) { _ in memory }
        if let error = state.error { throw PlanError.failure(error) }
        return plan.warnings + state.warnings
    }
}
