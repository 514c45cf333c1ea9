import Checkpoints
import Numerics
import TestSupport
import XCTest

/// Corrupt safetensors files: each is refused with a `CheckpointError` naming the file and the problem.
final class SafetensorsHostileInputTests: XCTestCase {
    private var dir: URL!

    override func setUp() { dir = Fixtures.temporaryFolder("safetensors-hostile") }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// An 8-byte little-endian header length (or `claimedLength`), the header text, then `data`.
    private func file(_ header: String, data: [UInt8] = [], claimedLength: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        var out: [UInt8] = []
        withUnsafeBytes(of: (claimedLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        return out + h + data
    }

    private func write(_ bytes: [UInt8], _ name: String = "model.safetensors") throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func assertRejects(_ bytes: [UInt8], _ fragments: String..., file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try write(bytes)
        XCTAssertThrowsError(try SafetensorsFile(path: path), file: file, line: line) { error in
            XCTAssertTrue(error is CheckpointError, "not a CheckpointError: \(error)", file: file, line: line)
            let text = "\(error)"
            XCTAssertTrue(text.contains(path), "message does not name the file: \(text)", file: file, line: line)
            for f in fragments { XCTAssertTrue(text.contains(f), "expected '\(f)' in: \(text)", file: file, line: line) }
        }
    }

    private let twoTensors = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2,2],"data_offsets":[8,16]}}"#

    private func floats(_ v: [Float]) -> [UInt8] {
        var b: [UInt8] = []
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { b.append(contentsOf: $0) } }
        return b
    }

    func testBaselineFileOpensAndReads() throws {
        let half: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0x00, 0x00]   // 1, −2, 0.5, 0
        let s = try SafetensorsFile(path: try write(file(twoTensors, data: floats([1.5, -3]) + half)))
        XCTAssertEqual(s.tensorNames, ["a", "b"])
        XCTAssertEqual(s.metadata["format"], "pt")
        XCTAssertEqual(try s.readAllFloats("a"), [1.5, -3])
        XCTAssertEqual(try s.readAllFloats("b"), [1, -2, 0.5, 0])
        XCTAssertEqual(s.info("b")?.shape, [2, 2])
    }

    func testFileShorterThanTheLengthFieldIsTruncated() throws {
        try assertRejects([], "truncated")
        try assertRejects([1, 0, 0], "truncated", "too short")
    }

    func testTruncationAtEveryByteIsAnError() throws {
        let full = file(twoTensors, data: [UInt8](repeating: 0, count: 16))
        for cut in 0..<full.count {
            let path = try write(Array(full[0..<cut]), "cut.safetensors")
            XCTAssertThrowsError(try SafetensorsFile(path: path), "cut at \(cut)") { error in
                XCTAssertTrue("\(error)".contains(path), "\(error)")
            }
        }
    }

    func testHeaderLengthBeyondTheFileIsRejected() throws {
        try assertRejects(file(twoTensors, data: [UInt8](repeating: 0, count: 16), claimedLength: 5000), "truncated", "header claims 5000 bytes")
        try assertRejects(file("{}", claimedLength: UInt64.max), "exceeds")
    }

    func testHeaderThatIsNotJSONIsRejected() throws {
        try assertRejects(file("{\"a\": [1, 2"), "not valid JSON")
        try assertRejects(file("[1, 2, 3]"), "not a JSON object")
        try assertRejects(file("{\"a\": 1, \"a\": 2}"), "duplicate key 'a'")
    }

    func testUnknownDTypeIsRejectedNotReinterpreted() throws {
        try assertRejects(file(#"{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}}"#, data: [0, 0]), "tensor 'w'", "unsupported dtype 'Q4'")
    }

    func testSpanThatDisagreesWithShapeIsRejected() throws {
        try assertRejects(file(#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, data: [UInt8](repeating: 0, count: 24)),
                          "tensor 'w'", "byte span 20 does not match shape [2, 3]")
    }

    func testOverlappingSpansAreRejected() throws {
        let h = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        try assertRejects(file(h, data: [UInt8](repeating: 0, count: 12)), "'a' and 'b' overlap")
    }

    func testSpanPastTheEndIsRejected() throws {
        try assertRejects(file(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [UInt8](repeating: 0, count: 12)),
                          "tensor 'w' ends at data byte 16", "data section has 12 bytes")
    }

    func testMalformedEntriesAreRejected() throws {
        try assertRejects(file(#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "tensor 'w'", "missing 'dtype'")
        try assertRejects(file(#"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "tensor 'w'", "missing 'shape'")
        try assertRejects(file(#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "tensor 'w'", "not a non-negative integer")
        try assertRejects(file(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0]), "tensor 'w'", "data_offsets")
        try assertRejects(file(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, data: [0, 0, 0, 0]), "tensor 'w'", "data_offsets")
        try assertRejects(file(#"{"w":[1,2]}"#), "tensor 'w'", "not an object")
        try assertRejects(file(#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                          "tensor 'w'", "too large")
        try assertRejects(file(#"{"__metadata__":{"format":5}}"#), "__metadata__", "not a string")
    }

    func testIntegerTensorsCannotBeReadAsFloats() throws {
        let s = try SafetensorsFile(path: try write(file(#"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))))
        XCTAssertThrowsError(try s.readAllFloats("ids")) { XCTAssertTrue("\($0)".contains("not a float type"), "\($0)") }
    }

    func testRandomByteCorruptionNeverCrashes() throws {
        let full = file(twoTensors, data: floats([1, 2]) + [UInt8](repeating: 0x3C, count: 8))
        var rng = SplitMix64(seed: 11)
        var rejected = 0
        for _ in 0..<200 {
            var b = full
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next())
            }
            let path = try write(b, "fuzz.safetensors")
            do {
                let s = try SafetensorsFile(path: path)
                for name in s.tensorNames { _ = try? s.readAllFloats(name) }
            } catch is CheckpointError {
                rejected += 1
            }
        }
        XCTAssertGreaterThan(rejected, 0)
    }
}
