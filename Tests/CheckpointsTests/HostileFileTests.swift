import Foundation
import XCTest
import Checkpoints
import Host
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 9 regressions at the file layer: contradictory GGUF dimensions (defect 2), files that are not regular
/// files (defect 3), integer GGUF tensors read as numbers (defect 10), and the output transaction under concurrent
/// runs, `kill -9` leftovers and an output naming an input (defects 4, 5 and 11).
final class HostileFileTests: XCTestCase {
    private var dir: URL!

    override func setUp() { dir = Fixtures.temporaryFolder("hostile-files") }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// Runs `body` on another thread and fails (instead of hanging the suite) if it does not finish in `seconds`.
    private func withinTime<T>(seconds: Double = 10, _ body: @escaping () throws -> T) -> Result<T, Error>? {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<T, Error>? = nil
        Thread.detachNewThread {
            result = Result { try body() }
            done.signal()
        }
        guard done.wait(timeout: .now() + seconds) == .success else {
            XCTFail("did not finish within \(seconds) s (hang)")
            return nil
        }
        return result
    }

    // MARK: Defect 2: dimensions used as loop bounds

    private static let moeMetadata: [(String, GGUFValue)] = [
        ("general.architecture", .string("llama")),
        ("llama.attention.head_count", .uint32(2)),
        ("llama.expert_count", .uint32(2)),
    ]

    func testZeroDimensionBesideAHugeOneIsRefusedQuickly() throws {
        // Element count 0 passed every overflow check, and 2^62 experts were then enumerated one by one.
        let bytes = GGUFBytes.file(metadata: Self.moeMetadata, tensors: [
            GGUFBytes.Tensor(name: "blk.0.ffn_up_exps.weight", dims: [0, 4, 1 << 62], type: GGMLType.f32.rawValue, data: []),
        ])
        let path = try GGUFBytes.write(bytes, to: dir)
        guard let outcome = withinTime({ try GGUFFile(path: path) }) else { return }
        guard case let .failure(error) = outcome else { return XCTFail("a zero-dimension tensor was accepted") }
        XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("is 0"), "\(error)")
    }

    func testExpertDimensionMustMatchExpertCount() throws {
        let values = [Float](repeating: 0, count: 4 * 4 * 3)
        let three = GGUFBytes.file(metadata: Self.moeMetadata, tensors: [.f32("blk.0.ffn_up_exps.weight", dims: [4, 4, 3], values: values)])
        XCTAssertThrowsError(try GGUFFile(path: try GGUFBytes.write(three, to: dir))) { error in
            XCTAssertTrue("\(error)".contains("holds 3 experts") && "\(error)".contains("expert_count is 2"), "\(error)")
        }
        let noCount = GGUFBytes.file(metadata: Array(Self.moeMetadata.prefix(2)),
                                     tensors: [.f32("blk.0.ffn_up_exps.weight", dims: [4, 4, 3], values: values)])
        XCTAssertThrowsError(try GGUFFile(path: try GGUFBytes.write(noCount, to: dir, name: "b.gguf"))) { error in
            XCTAssertTrue("\(error)".contains("expert_count is missing"), "\(error)")
        }
        let two = GGUFBytes.file(metadata: Self.moeMetadata,
                                 tensors: [.f32("blk.0.ffn_up_exps.weight", dims: [4, 4, 2], values: [Float](repeating: 1, count: 32))])
        let g = try GGUFFile(path: try GGUFBytes.write(two, to: dir, name: "c.gguf"))
        XCTAssertEqual(g.tensorNames.count, 2)
    }

    // MARK: Defect 10: integer tensors are not weights

    func testIntegerGGUFTensorIsServedAsIntegerAndNotReadAsFloats() throws {
        var data: [UInt8] = []
        for v in [Int32](repeating: 1_065_353_216, count: 4) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
        let bytes = GGUFBytes.file(metadata: [("general.architecture", .string("llama"))], tensors: [
            GGUFBytes.Tensor(name: "output_norm.weight", dims: [4], type: GGMLType.i32.rawValue, data: data),
        ])
        let g = try GGUFFile(path: try GGUFBytes.write(bytes, to: dir))
        XCTAssertEqual(g.info("model.norm.weight")?.dtype, .i32)
        var out = [Float](repeating: 0, count: 4)
        XCTAssertThrowsError(try g.readFloats("model.norm.weight", range: 0..<4, into: &out)) { error in
            XCTAssertTrue("\(error)".contains("I32") && "\(error)".contains("not a float type"), "\(error)")
        }
    }

    // MARK: Defect 3: FIFOs and devices

    func testFIFOAndDevicesAreRefusedWithoutBlocking() throws {
        let fifo = dir.appendingPathComponent("model.safetensors").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let gguf = dir.appendingPathComponent("model.gguf").path
        XCTAssertEqual(mkfifo(gguf, 0o600), 0)
        let config = dir.appendingPathComponent("config.json").path
        XCTAssertEqual(mkfifo(config, 0o600), 0)
        let opens: [(String, () throws -> Any)] = [
            ("MappedFile", { try MappedFile(path: fifo) }),
            ("SafetensorsFile", { try SafetensorsFile(path: fifo) }),
            ("GGUFFile", { try GGUFFile(path: gguf) }),
            ("JSON", { try JSONValue.parse(file: config) }),
            ("RegularFile", { try RegularFile.read(fifo) }),
            ("device", { try MappedFile(path: "/dev/zero") }),
        ]
        for (what, open) in opens {
            guard let outcome = withinTime(open) else { return XCTFail("\(what) blocked") }
            guard case let .failure(error) = outcome else { XCTFail("\(what) opened a non-regular file"); continue }
            let text = "\(error)"
            XCTAssertTrue(text.contains("FIFO") || text.contains("character device"), "\(what): \(text)")
            XCTAssertTrue(text.contains("/"), "\(what): the message names no path: \(text)")
        }
    }

    // MARK: Defect 4: two runs into one new folder

    func testOfTwoConcurrentOutputsTheSecondCommitIsRefused() throws {
        let out = dir.appendingPathComponent("merged").path
        let first = try OutputFolder(destination: out, overwrite: false)
        let second = try OutputFolder(destination: out + "/", overwrite: false)
        try first.write("first", to: "who.txt")
        try second.write("second", to: "who.txt")
        try first.commit()
        XCTAssertThrowsError(try second.commit()) { error in
            XCTAssertTrue("\(error)".contains("another run") && "\(error)".contains("--overwrite"), "\(error)")
        }
        second.abandon()
        XCTAssertEqual(try String(contentsOfFile: out + "/who.txt", encoding: .utf8), "first")
    }

    func testAnEmptyFolderMadeBeforehandIsStillFilled() throws {
        let out = dir.appendingPathComponent("empty").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        let folder = try OutputFolder(destination: out, overwrite: false)
        try folder.write("x", to: "a.txt")
        try folder.commit()
        XCTAssertEqual(try String(contentsOfFile: out + "/a.txt", encoding: .utf8), "x")
    }

    // MARK: Defect 5: staging folders of dead processes

    func testStagingFoldersOfDeadProcessesAreRemoved() throws {
        // A process that has exited: its pid names nobody (unless reused at once, which the check tolerates).
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        let dead = p.processIdentifier
        let parent = dir.path
        let stale = parent + "/.old-merge\(OutputFolder.stagingMarker)\(dead)"
        let alive = parent + "/.other\(OutputFolder.stagingMarker)\(getppid())"
        let unrelated = parent + "/.cache"
        for f in [stale, alive, unrelated] { try FileManager.default.createDirectory(atPath: f, withIntermediateDirectories: false) }
        try Data(count: 1024).write(to: URL(fileURLWithPath: stale + "/model.safetensors"))
        XCTAssertEqual(OutputFolder.ownerPID(of: ".old-merge\(OutputFolder.stagingMarker)\(dead)"), dead)
        XCTAssertNil(OutputFolder.ownerPID(of: ".cache"))

        let folder = try OutputFolder(destination: parent + "/new", overwrite: false)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale), "the dead run's staging folder was kept")
        XCTAssertTrue(FileManager.default.fileExists(atPath: alive), "a live process's staging folder was removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: unrelated))
        folder.abandon()
    }

    func testAnOldOutputSetAsideByAKilledOverwriteIsPutBack() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        let parent = dir.path
        let old = parent + "/.merged.crucible-old-\(p.processIdentifier)"
        try FileManager.default.createDirectory(atPath: old, withIntermediateDirectories: false)
        try "previous".write(toFile: old + "/model.safetensors", atomically: false, encoding: .utf8)
        OutputFolder.removeStale(in: parent)
        XCTAssertFalse(FileManager.default.fileExists(atPath: old))
        XCTAssertEqual(try String(contentsOfFile: parent + "/merged/model.safetensors", encoding: .utf8), "previous")
    }

    // MARK: Defect 11: an output naming an input

    func testOutputThatIsOrHoldsAnInputIsRefusedEvenWithOverwrite() throws {
        let model = dir.appendingPathComponent("model").path
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: false)
        try "weights".write(toFile: model + "/model.safetensors", atomically: false, encoding: .utf8)
        for out in [model, model + "/", dir.path] {
            XCTAssertThrowsError(try OutputFolder(destination: out, overwrite: true, inputs: [model])) { error in
                XCTAssertTrue("\(error)".contains("would destroy it"), "\(error)")
            }
        }
        let link = dir.appendingPathComponent("link").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: model)
        XCTAssertThrowsError(try OutputFolder(destination: link, overwrite: true, inputs: [model]))
        XCTAssertEqual(try String(contentsOfFile: model + "/model.safetensors", encoding: .utf8), "weights")
    }
}
