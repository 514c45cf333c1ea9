import Foundation
import Numerics

/// One `.safetensors` file, memory-mapped, with a header that is checked before anything is trusted:
/// the header length fits the file, the header is a JSON object, every dtype is known, every byte span
/// equals shape × dtype size, lies inside the data section, and no two spans overlap.
public final class SafetensorsFile: TensorSource, @unchecked Sendable {
    /// Headers larger than this are refused (the reference implementation uses 100 MB).
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    public let mapped: MappedFile
    public let tensorNames: [String]
    public let metadata: [String: String]
    private let infos: [String: TensorInfo]
    private let spans: [String: Range<Int>]   // absolute byte ranges in the file
    public let dataStart: Int

    public var location: String { path }

    public init(path: String) throws {
        self.path = path
        let file = try MappedFile(path: path)
        self.mapped = file
        guard file.size >= 8 else {
            throw CheckpointError.truncated(file: path, reason: "\(file.size) bytes, too short for the 8-byte header length")
        }
        let lenBytes = file.bytes(0..<8)
        var headerLen: UInt64 = 0
        for i in 0..<8 { headerLen |= UInt64(lenBytes[i]) << (8 * UInt64(i)) }
        guard headerLen <= UInt64(Self.maxHeaderBytes) else {
            throw CheckpointError.invalidHeader(file: path,
                                                reason: "header length \(headerLen) exceeds the \(Self.maxHeaderBytes)-byte limit")
        }
        guard Int(headerLen) + 8 <= file.size else {
            throw CheckpointError.truncated(file: path,
                                            reason: "header claims \(headerLen) bytes but the file has \(file.size - 8) after the length")
        }
        dataStart = 8 + Int(headerLen)
        let json: JSONValue
        do {
            json = try JSONValue.parse(file.bytes(8..<dataStart), maxDepth: 8)
        } catch let e as JSONParseError {
            throw CheckpointError.invalidHeader(file: path, reason: "not valid JSON (\(e.description))")
        }
        guard case let .object(obj) = json else {
            throw CheckpointError.invalidHeader(file: path, reason: "the header is not a JSON object")
        }
        let dataSize = file.size - dataStart
        var names: [String] = []
        var infos: [String: TensorInfo] = [:]
        var spans: [String: Range<Int>] = [:]
        var meta: [String: String] = [:]
        for (name, value) in obj.pairs {
            if name == "__metadata__" {
                guard case let .object(m) = value else {
                    throw CheckpointError.invalidHeader(file: path, reason: "__metadata__ is not an object")
                }
                for (k, v) in m.pairs {
                    guard let s = v.stringValue else {
                        throw CheckpointError.invalidHeader(file: path, reason: "__metadata__ value for '\(k)' is not a string")
                    }
                    meta[k] = s
                }
                continue
            }
            guard case let .object(t) = value else {
                throw CheckpointError.invalidTensor(file: path, tensor: name, reason: "entry is not an object")
            }
            guard let dtypeName = t["dtype"]?.stringValue else {
                throw CheckpointError.invalidTensor(file: path, tensor: name, reason: "missing 'dtype'")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw CheckpointError.unsupportedDType(file: path, tensor: name, dtype: dtypeName)
            }
            guard let shapeArr = t["shape"]?.arrayValue else {
                throw CheckpointError.invalidTensor(file: path, tensor: name, reason: "missing 'shape'")
            }
            var shape: [Int] = []
            var elements = 1
            for d in shapeArr {
                guard let n = d.intValue, n >= 0 else {
                    throw CheckpointError.invalidTensor(file: path, tensor: name, reason: "shape entry \(d) is not a non-negative integer")
                }
                let (m, overflow) = elements.multipliedReportingOverflow(by: n)
                guard !overflow, m <= Int(Int32.max) * 64 else {
                    throw CheckpointError.invalidTensor(file: path, tensor: name,
                                                        reason: "shape \(shapeArr.compactMap(\.intValue)) is too large")
                }
                elements = m
                shape.append(n)
            }
            guard let offs = t["data_offsets"]?.arrayValue, offs.count == 2,
                  let begin = offs[0].intValue, let end = offs[1].intValue, begin >= 0, end >= begin else {
                throw CheckpointError.invalidTensor(file: path, tensor: name,
                                                    reason: "'data_offsets' must be two increasing non-negative integers")
            }
            let expected = elements * dtype.byteSize
            guard end - begin == expected else {
                throw CheckpointError.invalidTensor(file: path, tensor: name,
                    reason: "byte span \(end - begin) does not match shape \(shape) × \(dtype.byteSize) bytes = \(expected)")
            }
            guard end <= dataSize else {
                throw CheckpointError.truncated(file: path,
                    reason: "tensor '\(name)' ends at data byte \(end) but the data section has \(dataSize) bytes")
            }
            if infos[name] != nil {
                throw CheckpointError.invalidHeader(file: path, reason: "tensor '\(name)' is listed twice")
            }
            names.append(name)
            infos[name] = TensorInfo(name: name, dtype: dtype, shape: shape)
            spans[name] = (dataStart + begin)..<(dataStart + end)
        }
        // No overlaps: sort by start and compare neighbours (empty tensors overlap nothing).
        let ordered = names.filter { !spans[$0]!.isEmpty }.sorted { spans[$0]!.lowerBound < spans[$1]!.lowerBound }
        if ordered.count > 1 {
            for i in 1..<ordered.count where spans[ordered[i]]!.lowerBound < spans[ordered[i - 1]]!.upperBound {
                throw CheckpointError.overlappingTensors(file: path, first: ordered[i - 1], second: ordered[i])
            }
        }
        self.tensorNames = names
        self.infos = infos
        self.spans = spans
        self.metadata = meta
    }

    public func info(_ name: String) -> TensorInfo? { infos[name] }
    public func file(of name: String) -> String? { infos[name] == nil ? nil : path }

    /// Byte span of `name` in the file.
    public func span(of name: String) -> Range<Int>? { spans[name] }

    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer? {
        guard let span = spans[name] else { throw CheckpointError.missingTensor(tensor: name, checkpoint: path) }
        return mapped.bytes(span)
    }

    public func release(_ name: String) {
        if let span = spans[name] { mapped.advise(span, willNeed: false) }
    }

    public func readFloats(_ name: String, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws {
        guard let info = infos[name], let span = spans[name] else {
            throw CheckpointError.missingTensor(tensor: name, checkpoint: path)
        }
        guard info.dtype.isFloatingPoint else {
            throw CheckpointError.unsupportedDType(file: path, tensor: name,
                                                   dtype: info.dtype.rawValue + " (not a float type; it can only be copied)")
        }
        precondition(range.lowerBound >= 0 && range.upperBound <= info.elementCount, "element range outside tensor")
        let size = info.dtype.byteSize
        let bytes = mapped.bytes((span.lowerBound + range.lowerBound * size)..<(span.lowerBound + range.upperBound * size))
        guard let base = bytes.baseAddress else { return }
        convertToFloat(base, dtype: info.dtype, count: range.count, into: dest)
    }
}
