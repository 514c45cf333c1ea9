import Foundation
import TestSupport
import XCTest

/// Issue 9 at the command line: two merges into one new folder (defect 4), a dead run's staging folder (defect 5),
/// `--dry-run` refusing what the merge refuses (defect 6), and a write failure's message (defect 11).
final class ConcurrentUseTests: XCTestCase {
    func testTwoConcurrentMergesIntoOneNewFolderExactlyOneSucceeds() throws {
        let dir = Fixtures.temporaryFolder("concurrent").path
        let out = dir + "/merged"
        let lock = NSLock()
        nonisolated(unsafe) var done: [CLIResult] = []
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            if let r = try? CLI.run(["merge", "merges/ties/recipe.yaml", "--out", out, "--quiet"], cwd: Fixtures.fixture("")) {
                lock.lock(); done.append(r); lock.unlock()
            }
        }
        guard done.count == 2 else { throw XCTSkip("the crucible executable was not built beside the tests") }
        let winners = done.filter { $0.status == 0 }
        XCTAssertEqual(winners.count, 1, done.map(\.stderr).joined(separator: "\n"))
        let loser = done.first { $0.status != 0 }
        XCTAssertTrue(loser?.stderr.contains("another run") == true || loser?.stderr.contains("already exists") == true,
                      loser?.stderr ?? "")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        XCTAssertEqual(((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains("crucible-") }, [])
    }

    func testALaterRunRemovesTheStagingFolderOfAKilledOne() throws {
        let dir = Fixtures.temporaryFolder("stale").path
        // Start a merge and kill -9 it; whether or not it got to create its staging folder, leave one with its pid.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["30"]
        try p.run()
        let pid = p.processIdentifier
        kill(pid, SIGKILL)
        p.waitUntilExit()
        let stale = dir + "/.merged.crucible-partial-\(pid)"
        try FileManager.default.createDirectory(atPath: stale, withIntermediateDirectories: false)
        try Data(count: 4096).write(to: URL(fileURLWithPath: stale + "/model.safetensors"))
        let r = try CLI.run(["merge", "merges/linear-normalized/recipe.yaml", "--out", dir + "/merged", "--quiet"], cwd: Fixtures.fixture(""))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale), "the killed run's staging folder is still there")
    }

    func testDryRunRefusesWhatTheMergeRefuses() throws {
        let dir = Fixtures.temporaryFolder("dry").path
        let base = Fixtures.fixture("models/llama-base"), ft1 = Fixtures.fixture("models/llama-ft1")
        try "merge_method: ties\nbase_model: \(base)\nmodels:\n  - model: \(ft1)\n    parameters: {weight: 1, density: -0.5}\n"
            .write(toFile: dir + "/r.yml", atomically: true, encoding: .utf8)
        for extra in [["--dry-run"], []] {
            let r = try CLI.run(["merge", dir + "/r.yml", "--out", dir + "/out"] + extra)
            XCTAssertNotEqual(r.status, 0, "\(extra): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("r.yml:5:") && r.stderr.contains("density"), r.stderr)
        }
    }

    func testAWriteFailureNamesTheFileOnce() throws {
        guard let exe = CLI.executable else { throw XCTSkip("the crucible executable was not built beside the tests") }
        let dir = Fixtures.temporaryFolder("full").path
        // A file-size limit makes every large write fail (EFBIG), as a full disk does (ENOSPC), through the same path.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "trap '' XFSZ; ulimit -f 8; exec \"$0\" merge merges/ties/recipe.yaml --out \"$1\" --quiet", exe.path, dir + "/out"]
        p.currentDirectoryURL = URL(fileURLWithPath: Fixtures.fixture(""))
        let err = Pipe()
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertNotEqual(p.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("cannot write"), text)
        XCTAssertFalse(text.lowercased().contains("error: error:"), text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out"))
    }
}
