import Checkpoints
import Foundation
import Host
import Numerics

/// A growable float32 buffer, allocated once and reused for every layer and call (llama2.c's `RunState`
/// idea): the forward pass never allocates per token.
final class ScratchBuffer {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init(_ capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        pointer = .allocate(capacity: self.capacity)
    }

    deinit { pointer.deallocate() }

    /// The buffer with room for at least `count` floats (contents are not kept when it grows).
    func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer.deallocate()
            capacity = count
            pointer = .allocate(capacity: count)
        }
        return pointer
    }
}

/// Converted float32 copies of whole tensors, kept for the model's lifetime once `LanguageModel` decides the
/// speed is worth the memory (token-by-token generation, where re-converting every matrix per token dominates).
final class ResidentWeights: @unchecked Sendable {
    private var buffers: [String: UnsafeMutablePointer<Float>] = [:]
    private let lock = NSLock()

    func pointer(_ tensor: String) -> UnsafeMutablePointer<Float>? {
        lock.lock(); defer { lock.unlock() }
        return buffers[tensor]
    }

    func store(_ tensor: String, _ p: UnsafeMutablePointer<Float>) {
        lock.lock(); defer { lock.unlock() }
        buffers[tensor] = p
    }

    var isEmpty: Bool { lock.lock(); defer { lock.unlock() }; return buffers.isEmpty }

    deinit { for p in buffers.values { p.deallocate() } }
}

/// Reads weights from a `TensorSource` in their stored form. Plain float32 tensors are used in place
/// (the mmap'd bytes); anything else (F16, BF16, GGUF quantized blocks) is converted into a reused
/// float32 scratch, layer by layer, so the process holds about one file's worth of memory.
struct WeightReader {
    let source: TensorSource
    let threads: Int
    let resident = ResidentWeights()

    /// The float32 values of `range` of `tensor`: a pointer into the mapped file when it is stored as
    /// aligned float32, otherwise converted into `scratch` (whose contents are replaced).
    func floats(_ tensor: String, range: Range<Int>, scratch: ScratchBuffer) throws -> UnsafePointer<Float> {
        if let direct = try directFloats(tensor, range: range) { return direct }
        if let kept = resident.pointer(tensor) { return UnsafePointer(kept + range.lowerBound) }
        let dest = scratch.reserve(range.count)
        try convert(tensor, range: range, into: dest)
        return UnsafePointer(dest)
    }

    /// Converts `range` of `tensor` into `dest`, splitting the work over the cores: dequantization of a
    /// 512-token chunk's weights is a noticeable share of a perplexity run.
    func convert(_ tensor: String, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws {
        let rowLength = source.info(tensor)?.rowLength ?? 1
        let count = range.count
        // Split on row boundaries so a block-quantized row is never cut in half.
        let rows = count / max(rowLength, 1)
        let parts = (count >= 1 << 16 && rows >= threads && count % max(rowLength, 1) == 0) ? threads : 1
        if parts == 1 {
            try source.readFloats(tensor, range: range, into: dest)
            return
        }
        try parallelForThrowing(parts, threads: parts) { part in
            let r0 = rows * part / parts, r1 = rows * (part + 1) / parts
            let lo = r0 * rowLength, hi = r1 * rowLength
            try source.readFloats(tensor, range: (range.lowerBound + lo)..<(range.lowerBound + hi), into: dest + lo)
        }
    }

    /// Converts every tensor not already usable in place into a float32 copy kept in memory, if that costs at
    /// most `budget` bytes. Returns whether it did.
    /// `except` names tensors the caller reads another way (in place, by `StoredMatVec`).
    func makeResident(budget: Int, except: (String) -> Bool = { _ in false }) throws -> Bool {
        guard resident.isEmpty else { return true }
        var pending: [(String, Int)] = []
        var bytes = 0
        for name in source.tensorNames where !except(name) {
            guard let info = source.info(name), try directFloats(name, range: 0..<0) == nil else { continue }
            pending.append((name, info.elementCount))
            bytes += info.elementCount * 4
        }
        guard bytes <= budget else { return false }
        for (name, count) in pending {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            do { try convert(name, range: 0..<count, into: p) } catch { p.deallocate(); throw error }
            resident.store(name, p)
        }
        return true
    }

    /// Rows `range` (whole rows of `rowLength`) of a GGUF tensor as stored, when `StoredMatVec` has a kernel for its
    /// type on this CPU and the tensor is not kept converted; nil otherwise.
    func storedRows(_ tensor: String, range: Range<Int>, rowLength: Int) -> GGUFStoredRows? {
        guard let gguf = source as? GGUFFile, resident.pointer(tensor) == nil, rowLength > 0, range.count % rowLength == 0,
              let rows = gguf.storedRows(tensor, elementOffset: range.lowerBound, rows: range.count / rowLength, rowLength: rowLength),
              StoredMatVec.supports(rows.type) else { return nil }
        return rows
    }

    private func directFloats(_ tensor: String, range: Range<Int>) throws -> UnsafePointer<Float>? {
        guard let info = source.info(tensor), info.dtype == .f32, info.storage == DType.f32.rawValue,
              let raw = try source.rawBytes(tensor), raw.count == info.elementCount * 4,
              let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0
        else { return nil }
        return base.assumingMemoryBound(to: Float.self) + range.lowerBound
    }
}

