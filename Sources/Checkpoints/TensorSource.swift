import Numerics

/// The name, element type and shape of one stored tensor.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    /// The type the values are read as. For a quantized GGUF tensor this is `.f32` (it is dequantized).
    public let dtype: DType
    /// Row-major shape, outermost first (the PyTorch / safetensors order).
    public let shape: [Int]
    /// A human-readable storage type (`BF16`, `Q4_K`…), for plans and error messages.
    public let storage: String

    public init(name: String, dtype: DType, shape: [Int], storage: String? = nil) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.storage = storage ?? dtype.rawValue
    }

    public var elementCount: Int { shape.reduce(1, *) }
    /// Elements per outermost row (1 for a scalar or vector's single elements… the product of all but the first dim).
    public var rowLength: Int { shape.count <= 1 ? 1 : shape.dropFirst().reduce(1, *) }
    public var rowCount: Int { shape.first ?? 1 }
}

/// Anything that serves named tensors: a safetensors file, a sharded Hugging Face folder, a GGUF file.
/// Readers convert to float32 on the fly, so callers never hold a whole model.
public protocol TensorSource: AnyObject, Sendable {
    /// Where the tensors come from (for messages).
    var location: String { get }
    /// Tensor names in stored order.
    var tensorNames: [String] { get }
    func info(_ name: String) -> TensorInfo?
    /// The file that holds `name` (for messages).
    func file(of name: String) -> String?
    /// Reads elements `range` (flat, row-major) of tensor `name` into `dest` as float32.
    func readFloats(_ name: String, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws
    /// The stored bytes of `name`, when it is stored plainly in `info.dtype` (nil for quantized storage).
    func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer?
    /// Hints that `name` will not be read again soon, so its mapped pages may leave memory
    /// (keeps resident memory bounded while streaming through a large checkpoint).
    func release(_ name: String)
}

extension TensorSource {
    public func release(_ name: String) {}
}

extension TensorSource {
    /// Reads a whole tensor as float32.
    public func readAllFloats(_ name: String) throws -> [Float] {
        guard let info = info(name) else { throw CheckpointError.missingTensor(tensor: name, checkpoint: location) }
        let n = info.elementCount
        return try [Float](unsafeUninitializedCapacity: n) { buf, count in
            try readFloats(name, range: 0..<n, into: buf.baseAddress!)
            count = n
        }
    }

    /// Throws unless `name` exists with `shape`.
    @discardableResult
    public func require(_ name: String, shape: [Int]? = nil) throws -> TensorInfo {
        guard let info = info(name) else { throw CheckpointError.missingTensor(tensor: name, checkpoint: location) }
        if let shape, shape != info.shape {
            throw CheckpointError.shapeMismatch(tensor: name, expected: shape, found: info.shape, file: file(of: name) ?? location)
        }
        return info
    }
}
