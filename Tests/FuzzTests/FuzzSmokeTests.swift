import Foundation
import Fuzz
import TestSupport
import XCTest

/// The bounded fuzz smoke CI runs: 2,000 generated cases across the five formats, in a watched worker process when
/// the `crucible` executable is built beside the tests (so crashes and hangs are caught), else in this process.
/// A longer campaign is `crucible fuzz --cases 100000` (docs/reliability.md).
final class FuzzSmokeTests: XCTestCase {
    static let seed: UInt64 = 20261202

    /// The built executable, found beside the test bundle as the CLI tests find it.
    private var executable: String? {
        var dir = Bundle.main.bundleURL
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("crucible")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    func testTwoThousandCasesEndCleanly() throws {
        let work = Fixtures.temporaryFolder("fuzz-smoke").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        var options = FuzzCampaign.Options(seed: Self.seed, cases: 2000, work: work)
        options.executable = executable
        options.timeLimit = 20
        let summary = try FuzzCampaign.run(options)
        XCTAssertEqual(summary.cases, 2000)
        for format in FuzzFormat.allCases {
            let total = FuzzOutcome.allCases.reduce(0) { $0 + summary.count($1, format: format) }
            XCTAssertEqual(total, 400, "\(format)")
            // The harness must reach both sides: inputs refused and inputs that work all the way through.
            XCTAssertGreaterThan(summary.count(.cleanError, format: format), 0, "\(format): nothing was refused")
            XCTAssertGreaterThan(summary.count(.success, format: format), 0, "\(format): nothing got through")
        }
        XCTAssertEqual(summary.defectCount, 0, summary.table)
    }

    func testCasesAreReproducibleFromTheSeed() throws {
        let work = Fixtures.temporaryFolder("fuzz-repro").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let a = try FuzzWorkbench(work: work + "/a", seed: 7), b = try FuzzWorkbench(work: work + "/b", seed: 7)
        for i in 0..<25 {
            let x = a.run(i), y = b.run(i)
            XCTAssertEqual(x.mutation, y.mutation, "case \(i)")
            XCTAssertEqual(x.outcome, y.outcome, "case \(i)")
        }
    }

    /// The oracles work: an input known to be invalid that every entry point accepts is reported, not passed.
    func testSuccessOnInvalidInputIsDetected() throws {
        let work = Fixtures.temporaryFolder("fuzz-oracle").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let bench = try FuzzWorkbench(work: work, seed: 1, formats: [.config])
        // Find a case whose mutation is certainly invalid, then show the classification would flag its acceptance.
        var found: FuzzCaseResult? = nil
        for i in 0..<200 {
            let r = bench.run(i)
            if r.certainlyInvalid { found = r; break }
        }
        let r = try XCTUnwrap(found, "no certainly-invalid config case in 200")
        XCTAssertEqual(r.outcome, .cleanError, "\(r.mutation): \(r.detail)")
        XCTAssertTrue(FuzzOutcome.successOnInvalid.isDefect && FuzzOutcome.crash.isDefect && !FuzzOutcome.cleanError.isDefect)
        XCTAssertEqual(try FuzzWorkbench.scoreWindowOracle(perplexity: .infinity), "perplexity inf reported as a result")
    }
}
