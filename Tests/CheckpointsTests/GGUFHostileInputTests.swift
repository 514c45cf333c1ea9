import Checkpoints
import Numerics
import TestSupport
import XCTest

/// Corrupt and hostile GGUF files, after llama.cpp's `test-gguf.cpp` handcrafted cases: each must be refused
/// with a `CheckpointError` that names the file and the problem, and nothing may crash or allocate from an
/// untrusted count.
final class GGUFHostileInputTests: XCTestCase {
    private var dir: URL!

    override func setUp() {
        dir = Fixtures.temporaryFolder("gguf-hostile")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: dir)
    }

    private func write(_ bytes: [UInt8], _ name: String = "model.gguf") throws -> String {
        try GGUFBytes.write(bytes, to: dir, name: name)
    }

    /// Opening `bytes` throws a CheckpointError whose description names the file and contains every fragment.
    private func assertRejects(_ bytes: [UInt8], _ fragments: String..., file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try write(bytes)
        XCTAssertThrowsError(try GGUFFile(path: path), file: file, line: line) { error in
            XCTAssertTrue(error is CheckpointError, "not a CheckpointError: \(error)", file: file, line: line)
            let text = "\(error)"
            XCTAssertTrue(text.contains(path), "message does not name the file: \(text)", file: file, line: line)
            for f in fragments { XCTAssertTrue(text.contains(f), "expected '\(f)' in: \(text)", file: file, line: line) }
        }
    }

    private static let metadata: [(String, GGUFValue)] = [
        ("general.architecture", .string("llama")),
        ("general.name", .string("hostile")),
        ("llama.attention.head_count", .uint32(2)),
        ("tokenizer.ggml.tokens", .array([.string("<s>"), .string("a"), .string("b")])),
        ("tokenizer.ggml.scores", .array([.float32(0), .float32(-1), .float32(-2)])),
    ]

    private static func validTensors() -> [GGUFBytes.Tensor] {
        [
            .f32("token_embd.weight", dims: [4, 3], values: (0..<12).map(Float.init)),
            .f32("output_norm.weight", dims: [4], values: [1, 2, 3, 4]),
            GGUFBytes.Tensor(name: "blk.0.ffn_up.weight", dims: [32, 2], type: GGMLType.q8_0.rawValue,
                             data: [UInt8](repeating: 1, count: 68)),
        ]
    }

    private static func valid() -> [UInt8] { GGUFBytes.file(metadata: metadata, tensors: validTensors()) }

    // MARK: A valid baseline

    func testBaselineFileOpens() throws {
        let g = try GGUFFile(path: try write(Self.valid()))
        XCTAssertEqual(g.version, 3)
        XCTAssertEqual(g.alignment, 32)
        XCTAssertEqual(g.metadataKeys, Self.metadata.map(\.0))
        XCTAssertEqual(g.metadata["tokenizer.ggml.tokens"]?.stringArray, ["<s>", "a", "b"])
        XCTAssertEqual(g.metadata["llama.attention.head_count"]?.intValue, 2)
        XCTAssertEqual(g.rawTensors.map(\.name), ["token_embd.weight", "output_norm.weight", "blk.0.ffn_up.weight"])
        XCTAssertEqual(g.rawTensors[0].dims, [4, 3])
        XCTAssertEqual(g.rawTensors[2].byteCount, 68)
        XCTAssertEqual(g.info("model.embed_tokens.weight")?.shape, [3, 4])
        XCTAssertEqual(try g.readAllFloats("model.embed_tokens.weight"), (0..<12).map(Float.init))
        XCTAssertEqual(g.info("model.layers.0.mlp.up_proj.weight")?.storage, "Q8_0")
    }

    func testVersion2AndAWiderAlignmentAreAccepted() throws {
        var meta = Self.metadata
        meta.append(("general.alignment", .uint32(64)))
        let bytes = GGUFBytes.file(version: 2, metadata: meta, tensors: Self.validTensors(), alignment: 64)
        let g = try GGUFFile(path: try write(bytes))
        XCTAssertEqual(g.version, 2)
        XCTAssertEqual(g.alignment, 64)
        XCTAssertEqual(g.dataOffset % 64, 0)
        XCTAssertEqual(try g.readAllFloats("model.norm.weight"), [1, 2, 3, 4])
    }

    // MARK: Header

    func testEmptyAndTinyFilesAreTruncated() throws {
        try assertRejects([], "truncated")
        try assertRejects(Array("GG".utf8), "truncated")
    }

    func testBadMagicIsRejected() throws {
        var b = Self.valid()
        b[0] = UInt8(ascii: "X")
        try assertRejects(b, "bad magic 'XGUF'")
    }

    func testVersion1IsRefusedClearly() throws {
        try assertRejects(GGUFBytes.file(version: 1, metadata: Self.metadata, tensors: []), "GGUF version 1 is not supported")
    }

    func testUnknownAndBigEndianVersionsAreRefused() throws {
        try assertRejects(GGUFBytes.file(version: 4, metadata: Self.metadata, tensors: []), "unsupported GGUF version 4")
        try assertRejects(GGUFBytes.file(version: 3 << 24, metadata: Self.metadata, tensors: []), "big-endian")
    }

    func testTruncationAtEveryByteIsAnErrorNeverACrash() throws {
        let full = Self.valid()
        // Bytes after the last tensor's data are padding; the file is complete without them.
        let g = try GGUFFile(path: try write(full))
        let lastEnd = g.dataOffset + g.rawTensors.map { $0.offset + $0.byteCount }.max()!
        // Every byte of the header, then every 4th byte of the data section.
        let cuts = Array(0..<g.dataOffset) + Array(stride(from: g.dataOffset, to: lastEnd, by: 4))
        for cut in cuts {
            let path = try write(Array(full[0..<cut]), "cut.gguf")
            XCTAssertThrowsError(try GGUFFile(path: path), "cut at \(cut)") { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(path), text)
                XCTAssertTrue(["truncated", "left in the file", "cannot fit"].contains { text.contains($0) }, "cut at \(cut): \(text)")
            }
        }
    }

    func testHugeTensorAndKeyCountsAreBoundedByTheFileSize() throws {
        var w = GGUFBytes()
        w.header(tensors: UInt64.max / 2, keys: 0)
        try assertRejects(w.bytes, "tensor count", "cannot fit")
        w = GGUFBytes()
        w.header(tensors: 0, keys: 1 << 40)
        try assertRejects(w.bytes, "key/value count", "cannot fit")
    }

    // MARK: Metadata

    func testOversizedStringLengthIsRejectedBeforeAllocating() throws {
        var w = GGUFBytes()
        w.header(tensors: 0, keys: 1)
        w.string("general.name")
        w.u32(8)                 // string
        w.u64(UInt64.max - 1)    // length far beyond the file
        w.raw(Array("abc".utf8))
        try assertRejects(w.bytes, "string value of 'general.name'", "claims 18446744073709551614 bytes")
        // A key whose own length lies.
        w = GGUFBytes()
        w.header(tensors: 0, keys: 1)
        w.u64(1 << 50)
        w.raw([UInt8](repeating: 0x61, count: 24))
        try assertRejects(w.bytes, "metadata key 0", "claims")
    }

    func testOversizedArrayCountIsRejectedBeforeAllocating() throws {
        var w = GGUFBytes()
        w.header(tensors: 0, keys: 1)
        w.string("tokenizer.ggml.tokens")
        w.u32(9)                  // array
        w.u32(8)                  // of strings
        w.u64(1 << 60)            // elements
        w.string("a")
        try assertRejects(w.bytes, "key 'tokenizer.ggml.tokens'", "claims 1152921504606846976 elements")
    }

    func testDuplicateKeyIsRejected() throws {
        try assertRejects(GGUFBytes.file(metadata: Self.metadata + [("general.name", .string("again"))], tensors: []),
                          "duplicate metadata key 'general.name'")
    }

    func testUnknownValueTypeAndBadBoolAreRejected() throws {
        var w = GGUFBytes()
        w.header(tensors: 0, keys: 1)
        w.string("weird")
        w.u32(13)
        w.u64(0)
        try assertRejects(w.bytes, "key 'weird' has unknown value type 13")
        w = GGUFBytes()
        w.header(tensors: 0, keys: 1)
        w.string("flag")
        w.u32(7)
        w.u8(2)
        try assertRejects(w.bytes, "key 'flag'", "bool value 2")
    }

    func testArraysNestedTooDeepAreRejected() throws {
        var v = GGUFValue.array([.uint8(1)])
        for _ in 0..<GGUFFile.maxArrayDepth { v = .array([v]) }
        try assertRejects(GGUFBytes.file(metadata: [("deep", v)], tensors: []), "key 'deep'", "nested more than 4 levels")
        // One level less is fine.
        var ok = GGUFValue.array([.uint8(1)])
        for _ in 0..<(GGUFFile.maxArrayDepth - 1) { ok = .array([ok]) }
        let g = try GGUFFile(path: try write(GGUFBytes.file(metadata: [("deep", ok)], tensors: [])))
        XCTAssertEqual(g.metadata["deep"], ok)
    }

    func testAlignmentMustBeAPowerOfTwo() throws {
        for bad: GGUFValue in [.uint32(24), .uint32(0), .string("32")] {
            try assertRejects(GGUFBytes.file(metadata: Self.metadata + [("general.alignment", bad)], tensors: Self.validTensors()),
                              "general.alignment", "not a power of two")
        }
    }

    // MARK: Tensor infos

    private func file(with tensor: GGUFBytes.Tensor) -> [UInt8] {
        GGUFBytes.file(metadata: Self.metadata, tensors: [tensor])
    }

    func testDuplicateTensorNameIsRejected() throws {
        let t = Self.validTensors()
        try assertRejects(GGUFBytes.file(metadata: Self.metadata, tensors: t + [t[1]]), "duplicate tensor name 'output_norm.weight'")
    }

    func testOverlongTensorNameIsRejected() throws {
        let name = String(repeating: "n", count: GGUFFile.maxNameLength + 1)
        try assertRejects(file(with: .f32(name, dims: [1], values: [0])), "is 64 bytes long, the limit is 63")
        XCTAssertNoThrow(try GGUFFile(path: try write(file(with: .f32(String(name.dropFirst()), dims: [1], values: [0])))))
    }

    func testTooManyDimensionsAreRejected() throws {
        try assertRejects(file(with: .f32("x", dims: [1, 1, 1, 1, 1], values: [0])), "tensor 'x'", "5 dimensions, at most 4")
    }

    func testNegativeDimensionIsRejected() throws {
        try assertRejects(file(with: GGUFBytes.Tensor(name: "x", dims: [4, -1], type: 0, data: [])), "tensor 'x'", "negative dimension -1")
    }

    func testElementCountOverflowIsRejected() throws {
        try assertRejects(file(with: GGUFBytes.Tensor(name: "x", dims: [1 << 40, 1 << 40], type: 0, data: [])), "tensor 'x'", "overflows")
        // No overflow in the count, but in the byte size.
        try assertRejects(file(with: GGUFBytes.Tensor(name: "y", dims: [1 << 62], type: 0, data: [])), "tensor 'y'", "overflows")
    }

    func testUnknownTypeIsRejected() throws {
        for id: UInt32 in [4, 31, 99] {
            try assertRejects(file(with: GGUFBytes.Tensor(name: "x", dims: [1], type: id, data: [0, 0, 0, 0])),
                              "tensor 'x'", "unknown ggml type \(id)")
        }
    }

    func testRowLengthMustBeAWholeNumberOfBlocks() throws {
        try assertRejects(file(with: GGUFBytes.Tensor(name: "q", dims: [33, 1], type: GGMLType.q4_0.rawValue, data: [UInt8](repeating: 0, count: 40))),
                          "tensor 'q'", "row length 33 is not a multiple of the Q4_0 block size 32")
    }

    func testMisalignedOffsetIsRejected() throws {
        var t = Self.validTensors()
        t[1].offset = 52
        try assertRejects(GGUFBytes.file(metadata: Self.metadata, tensors: t), "tensor 'output_norm.weight'", "not a multiple of the alignment 32")
    }

    func testOverlappingTensorsAreRejected() throws {
        var t = Self.validTensors()
        t[1].offset = 32
        t[2].offset = 32
        try assertRejects(GGUFBytes.file(metadata: Self.metadata, tensors: t), "overlap")
    }

    func testTensorPastTheEndOfTheFileIsRejected() throws {
        // A header that claims a far offset, followed by only 16 bytes of data.
        var w = GGUFBytes()
        w.header(tensors: 1, keys: 0)
        w.tensorInfo(name: "far", dims: [4], type: 0, offset: 1 << 20)
        w.pad(to: 32)
        w.raw([UInt8](repeating: 0, count: 16))
        try assertRejects(w.bytes, "truncated", "tensor 'far'", "data section has 16 bytes")
        // Offset that overflows when the size is added.
        w = GGUFBytes()
        w.header(tensors: 1, keys: 0)
        w.tensorInfo(name: "wrap", dims: [4], type: 0, offset: UInt64.max - 8)
        w.pad(to: 32)
        try assertRejects(w.bytes, "tensor 'wrap'")
    }

    // MARK: Name map and reads

    func testLlamaQWithoutHeadCountIsRejected() throws {
        let bytes = GGUFBytes.file(metadata: [("general.architecture", .string("llama"))],
                                   tensors: [.f32("blk.0.attn_q.weight", dims: [4, 4], values: [Float](repeating: 0, count: 16))])
        try assertRejects(bytes, "llama.attention.head_count is missing")
    }

    func testStackedExpertsMustBeThreeDimensional() throws {
        let bytes = GGUFBytes.file(metadata: Self.metadata,
                                   tensors: [.f32("blk.0.ffn_up_exps.weight", dims: [4, 4], values: [Float](repeating: 0, count: 16))])
        try assertRejects(bytes, "tensor 'blk.0.ffn_up_exps.weight'", "expected 3")
    }

    func testUnsupportedQuantTypeOpensButReadingNamesTypeAndTensor() throws {
        let bytes = file(with: GGUFBytes.Tensor(name: "blk.0.ffn_down.weight", dims: [256, 1], type: GGMLType.iq2_XXS.rawValue,
                                                data: [UInt8](repeating: 0, count: 66)))
        let path = try write(bytes)
        let g = try GGUFFile(path: path)
        let name = "model.layers.0.mlp.down_proj.weight"
        XCTAssertEqual(g.info(name)?.storage, "IQ2_XXS")
        XCTAssertThrowsError(try g.readAllFloats(name)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(path) && text.contains("tensor '\(name)'") && text.contains("unsupported quantization type IQ2_XXS"), text)
        }
    }

    func testReadOutsideTheTensorIsAnError() throws {
        let g = try GGUFFile(path: try write(Self.valid()))
        var out = [Float](repeating: 0, count: 8)
        XCTAssertThrowsError(try g.readFloats("model.norm.weight", range: 2..<6, into: &out)) {
            XCTAssertTrue("\($0)".contains("outside the tensor's 4 elements"), "\($0)")
        }
        XCTAssertThrowsError(try g.readFloats("nope", range: 0..<1, into: &out)) { XCTAssertTrue("\($0)".contains("'nope' is missing"), "\($0)") }
    }

    func testRandomByteCorruptionNeverCrashes() throws {
        let full = Self.valid()
        var rng = SplitMix64(seed: 7)
        var rejected = 0
        for trial in 0..<250 {
            var b = full
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = Int(rng.next() % UInt64(b.count))
                b[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            let path = try write(b, "fuzz.gguf")
            do {
                let g = try GGUFFile(path: path)
                for name in g.tensorNames { _ = try? g.readAllFloats(name) }
            } catch let e as CheckpointError {
                rejected += 1
                XCTAssertTrue("\(e)".contains(path), "trial \(trial): \(e)")
            }
        }
        XCTAssertGreaterThan(rejected, 0)
    }
}
