import Architectures

/// Keys and values of every layer for the positions processed so far, so generation feeds one token
/// at a time. Keys are stored after RoPE. Memory: layers × capacity × kvHeads × headDim × 2 floats.
public final class KVCache {
    /// Positions the cache can hold.
    public let capacity: Int
    /// Positions filled so far (the next token's position).
    public internal(set) var count: Int = 0
    let width: Int
    let keys: [UnsafeMutablePointer<Float>]   // per layer [capacity, kvHeads * headDim]
    let values: [UnsafeMutablePointer<Float>] // per layer [capacity, kvHeads * headDim]

    /// A cache for `capacity` positions of a model with `config`.
    public init(config: ModelConfig, capacity: Int) {
        self.capacity = max(capacity, 1)
        width = config.kvWidth
        keys = (0..<config.layerCount).map { _ in .allocate(capacity: max(capacity, 1) * config.kvWidth) }
        values = (0..<config.layerCount).map { _ in .allocate(capacity: max(capacity, 1) * config.kvWidth) }
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    /// Forgets every position (the next call starts at position 0 again).
    public func reset() { count = 0 }
}
