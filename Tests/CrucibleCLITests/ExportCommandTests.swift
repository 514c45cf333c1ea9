import Checkpoints
import Foundation
import TestSupport
import XCTest

final class ExportCommandTests: XCTestCase {
    func testMergeWritesTheGGUFBesideTheFolderAndGGUFOnlyKeepsOnlyIt() throws {
        let dir = Fixtures.temporaryFolder("cli-gguf")
        let out = dir.appendingPathComponent("m").path
        let r = try CLI.run(["merge", "merges/ties/recipe.yaml", "--out", out, "--gguf", "Q8_0"], cwd: Fixtures.fixture(""))
        XCTAssertEqual(r.status, 0, r.stderr)
        let file = out + "/m-Q8_0.gguf"
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        let gguf = try GGUFFile(path: file)
        XCTAssertEqual(gguf.metadata["general.file_type"]?.intValue, 7)
        XCTAssertEqual(Set(gguf.tensorNames), Set(try Checkpoint.open(out).source.tensorNames))

        let only = dir.appendingPathComponent("o").path
        let r2 = try CLI.run(["merge", "merges/ties/recipe.yaml", "--out", only, "--gguf", "F16", "--gguf-only"], cwd: Fixtures.fixture(""))
        XCTAssertEqual(r2.status, 0, r2.stderr)
        let entries = try FileManager.default.contentsOfDirectory(atPath: only)
        XCTAssertTrue(entries.contains("o-F16.gguf"), "\(entries)")
        XCTAssertFalse(entries.contains { $0.hasSuffix(".safetensors") }, "\(entries)")
        XCTAssertTrue(try Checkpoint.open(only).isGGUF, "the folder now opens as its GGUF file")
    }

    func testExportAndQuantizeRefuseUnknownTypesAndExistingFiles() throws {
        let dir = Fixtures.temporaryFolder("cli-export").path
        let model = Fixtures.fixture("models/qwen2-base")
        let bad = try CLI.run(["export", model, "--gguf", "Q3_XL", "--out", dir + "/x.gguf"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("Q4_K_M"), bad.stderr)
        let ok = try CLI.run(["quantize", model, "--type", "q4_k_m", "--out", dir + "/x.gguf"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("qwen2, Q4_K_M"), ok.stdout)
        let again = try CLI.run(["export", model, "--gguf", "Q8_0", "--out", dir + "/x.gguf"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("--overwrite"), again.stderr)
        XCTAssertEqual(try GGUFFile(path: dir + "/x.gguf").metadata["general.file_type"]?.intValue, 15, "the first file is kept")
    }
}

/// Every command reports a runtime failure the same way: one `Error:` line from the argument parser, exit status 1,
/// no usage text (that is for bad arguments).
final class ErrorReportingTests: XCTestCase {
    func testRuntimeFailuresPrintOneErrorLineWithoutUsage() throws {
        let missing = "/nonexistent/model-\(getpid())"
        let commands: [[String]] = [["inspect", missing], ["ppl", missing, "--data", "/etc/hostname"],
                                    ["export", missing, "--gguf", "Q8_0", "--out", "/tmp/never.gguf"],
                                    ["compare", missing, missing], ["generate", missing, "--prompt", "hi"]]
        for args in commands {
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, 1, "\(args)")
            let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
            XCTAssertEqual(lines.count, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(missing), "\(args): names the model: \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Usage:"), "\(args): a runtime failure prints no usage: \(r.stderr)")
            XCTAssertFalse(r.stderr.lowercased().contains("error: error"), "\(args): \(r.stderr)")
        }
        let bad = try CLI.run(["synth", "--preset", "huge", "--out", "/tmp/never"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("smollm2-135m") && bad.stderr.contains("tiny"), "typed option lists its values: \(bad.stderr)")
    }
}

final class GGUFBuildPrecheckTests: XCTestCase {
    /// An output llama.cpp cannot read exactly is refused before anything is built.
    func testMoEWhoseArchitectureIsNotWrittenFailsBeforeBuilding() throws {
        let out = Fixtures.temporaryFolder("cli-gguf-pre").appendingPathComponent("q").path
        let r = try CLI.run(["moe", "moe/qwen2moe-shared/recipe.yaml", "--out", out, "--gguf", "Q8_0"], cwd: Fixtures.fixture("archs"))
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("Qwen2MoeForCausalLM"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "nothing was built")
    }
}
