/// Where a merge writes each output tensor's bytes: a safetensors file being written, or memory
/// (`crucible evolve` scores candidates without writing them).
public protocol TensorByteSink: AnyObject, Sendable {
    /// Writes `bytes` as (part of) tensor `name`, starting `byteOffset` bytes into the tensor's span.
    func write(_ name: String, bytes: UnsafeRawBufferPointer, byteOffset: Int) throws
}

extension SafetensorsWriter: TensorByteSink {}
