import Checkpoints
import Foundation

/// llama.cpp's `--kl-divergence-base` / `--save-all-logits` file (docs/evaluation.md, "KL divergence against a reference"):
/// `_logits_`, int32 n_ctx, int32 n_vocab, int32 n_chunk, n_chunk·n_ctx int32 tokens (before the BOS
/// overwrite), then per chunk and scored position a record of `2·ceil(n_vocab/2) + 4` uint16: two float32
/// (`scale`, `min_log_prob`) and n_vocab quantized log-probabilities, `log p_j = scale·q_j + min_log_prob`,
/// everything more than 16 nats below the top floored to q = 0. All little-endian.
public enum LogitsFileFormat {
    public static let magic: [UInt8] = Array("_logits_".utf8)
    public static let headerBytes = 8 + 3 * 4

    /// uint16 values per record.
    public static func recordLength(vocabSize: Int) -> Int { 2 * ((vocabSize + 1) / 2) + 4 }

    /// Quantizes one row of logits into `record` (recordLength uint16) the way llama.cpp does.
    public static func quantize(_ logits: UnsafeBufferPointer<Float>, into record: UnsafeMutablePointer<UInt16>) {
        var maxLogit = logits[0], minLogit = logits[0]
        for v in logits {
            if v > maxLogit { maxLogit = v }
            if v < minLogit { minLogit = v }
        }
        minLogit = max(minLogit, maxLogit - 16)
        var sumExp = 0.0
        for v in logits { sumExp += Double(expf(v - maxLogit)) }
        let logSumExp = Float(log(sumExp))
        let minLogProb = minLogit - maxLogit - logSumExp
        let scale = (maxLogit - minLogit) / 65535
        let header = UnsafeMutableRawPointer(record)
        header.storeBytes(of: scale.bitPattern.littleEndian, toByteOffset: 0, as: UInt32.self)
        header.storeBytes(of: minLogProb.bitPattern.littleEndian, toByteOffset: 4, as: UInt32.self)
        let q = record + 4
        let inverse = scale > 0 ? 1 / scale : 0
        for (j, v) in logits.enumerated() {
            if v > minLogit {
                let level = ((v - minLogit) * inverse).rounded(.toNearestOrEven)
                q[j] = UInt16(max(0, min(65535, level))).littleEndian
            } else {
                q[j] = 0
            }
        }
        // The padding slot of an odd vocabulary stays zero.
        let length = recordLength(vocabSize: logits.count)
        if 4 + logits.count < length { q[logits.count] = 0 }
    }
}

/// Writes a logits file chunk by chunk, so a 40-chunk SmolLM2 run (≈1 GB) never sits in memory.
public final class LogitsFileWriter {
    public let path: String
    public let contextLength: Int
    public let vocabSize: Int
    private let handle: UnsafeMutablePointer<FILE>
    private var record: [UInt16]
    private var closed = false

    /// Creates `path` and writes the header and token stream (`chunks · contextLength` tokens, as tokenized).
    public init(path: String, contextLength: Int, vocabSize: Int, chunks: Int, tokens: [Int]) throws {
        guard tokens.count >= chunks * contextLength else {
            throw EvaluationError.invalidOption("logits file needs \(chunks * contextLength) tokens, got \(tokens.count)")
        }
        guard let handle = fopen(path, "wb") else {
            throw EvaluationError.writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
        self.path = path
        self.contextLength = contextLength
        self.vocabSize = vocabSize
        self.handle = handle
        record = [UInt16](repeating: 0, count: LogitsFileFormat.recordLength(vocabSize: vocabSize))
        var header = LogitsFileFormat.magic
        for v in [contextLength, vocabSize, chunks] { header += littleEndianBytes(Int32(truncatingIfNeeded: v)) }
        try write(header)
        var stream = [UInt8]()
        stream.reserveCapacity(chunks * contextLength * 4)
        for t in tokens.prefix(chunks * contextLength) { stream += littleEndianBytes(Int32(truncatingIfNeeded: t)) }
        try write(stream)
    }

    deinit { if !closed { fclose(handle) } }

    /// Appends the records of one chunk: `rows` rows of logits for the scored positions.
    public func append(logits: UnsafeBufferPointer<Float>, rows: Int) throws {
        precondition(logits.count >= rows * vocabSize, "append: not enough logits")
        for r in 0..<rows {
            let row = UnsafeBufferPointer(rebasing: logits[(r * vocabSize)..<((r + 1) * vocabSize)])
            try record.withUnsafeMutableBufferPointer { rec in
                LogitsFileFormat.quantize(row, into: rec.baseAddress!)
                guard fwrite(rec.baseAddress!, 2, rec.count, handle) == rec.count else {
                    throw EvaluationError.writeFailed(path: path, reason: String(cString: strerror(errno)))
                }
            }
        }
    }

    /// Flushes and closes the file.
    public func close() throws {
        guard !closed else { return }
        closed = true
        guard fclose(handle) == 0 else { throw EvaluationError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
    }

    private func write(_ bytes: [UInt8]) throws {
        guard bytes.isEmpty || fwrite(bytes, 1, bytes.count, handle) == bytes.count else {
            throw EvaluationError.writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
    }
}

private func littleEndianBytes(_ v: Int32) -> [UInt8] {
    withUnsafeBytes(of: v.littleEndian) { Array($0) }
}

/// A logits file opened for comparison (memory-mapped; every size checked against the header).
public final class LogitsFile {
    public let path: String
    public let contextLength: Int
    public let vocabSize: Int
    public let chunkCount: Int
    /// The saved token stream (`chunkCount · contextLength`, before any BOS overwrite).
    public let tokens: [Int]
    private let mapped: MappedFile
    private let recordsStart: Int

    public init(path: String) throws {
        let mapped: MappedFile
        do { mapped = try MappedFile(path: path) } catch {
            throw EvaluationError.unreadableData(path: path, reason: "\(error)")
        }
        self.mapped = mapped
        self.path = path
        let size = mapped.size
        guard size >= LogitsFileFormat.headerBytes else {
            throw EvaluationError.invalidLogitsFile(path: path, reason: "\(size) bytes is shorter than the 20-byte header")
        }
        let header = mapped.bytes(0..<LogitsFileFormat.headerBytes)
        guard Array(header.prefix(8)) == LogitsFileFormat.magic else {
            throw EvaluationError.invalidLogitsFile(path: path, reason: "missing the '_logits_' magic")
        }
        func int32(_ offset: Int) -> Int { Int(Int32(littleEndian: header.loadUnaligned(fromByteOffset: offset, as: Int32.self))) }
        contextLength = int32(8)
        vocabSize = int32(12)
        chunkCount = int32(16)
        guard contextLength >= 4, vocabSize >= 1, chunkCount >= 1,
              contextLength <= 1 << 24, vocabSize <= 1 << 24, chunkCount <= 1 << 24 else {
            throw EvaluationError.invalidLogitsFile(path: path,
                reason: "implausible header n_ctx \(contextLength), n_vocab \(vocabSize), n_chunk \(chunkCount)")
        }
        let tokenBytes = chunkCount * contextLength * 4
        recordsStart = LogitsFileFormat.headerBytes + tokenBytes
        let expected = recordsStart + chunkCount * PerplexityProtocol.scoredPerChunk(contextLength: contextLength)
            * LogitsFileFormat.recordLength(vocabSize: vocabSize) * 2
        guard size == expected else {
            throw EvaluationError.invalidLogitsFile(path: path, reason: "size \(size) bytes, the header implies \(expected)")
        }
        let stream = mapped.bytes(LogitsFileFormat.headerBytes..<recordsStart)
        tokens = (0..<(chunkCount * contextLength)).map {
            Int(Int32(littleEndian: stream.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)))
        }
    }

    /// The record of scored position `position` (0-based among the scored ones) of chunk `chunk`.
    public func record(chunk: Int, position: Int) -> LogitsRecord {
        let length = LogitsFileFormat.recordLength(vocabSize: vocabSize)
        let index = chunk * PerplexityProtocol.scoredPerChunk(contextLength: contextLength) + position
        let start = recordsStart + index * length * 2
        return LogitsRecord(bytes: mapped.bytes(start..<(start + length * 2)), vocabSize: vocabSize)
    }
}

/// One saved position: quantized base log-probabilities.
public struct LogitsRecord {
    let bytes: UnsafeRawBufferPointer
    public let vocabSize: Int

    public var scale: Float { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))) }
    public var minLogProbability: Float { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))) }
    /// The stored level of token `j` (0 = floored).
    public func level(_ j: Int) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 + 2 * j, as: UInt16.self)) }
    /// Decoded `log p_j`.
    public func logProbability(_ j: Int) -> Float { scale * Float(level(j)) + minLogProbability }
}
