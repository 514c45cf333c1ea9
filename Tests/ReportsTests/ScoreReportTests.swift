import Checkpoints
import Evaluation
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Reports
import TestSupport
import XCTest

/// The report files: report.html and its charts are well-formed XML, the numbers they show are report.json's,
/// nothing non-finite is written as a number, and the verdict follows its rule.
final class ScoreReportTests: XCTestCase {
    /// The fixture merge on the fixture sentence in windows of 12 tokens (3 windows of 5 scored targets each).
    private func fixtureReport(in dir: URL) throws -> ScoreReport {
        var job = ScoreJob(mergedPath: Fixtures.fixture("merges/linear-normalized/output"),
                           parentPaths: ["llama-ft1", "llama-ft2", "llama-ft3"].map { Fixtures.fixture("models/\($0)") },
                           evalPaths: [try writeKeeperText(in: dir)])
        job.contextLength = 12
        return try job.run()
    }

    func testHTMLParsesAsXMLAndShowsTheNumbersOfReportJSON() throws {
        let dir = Fixtures.temporaryFolder("score-html")
        defer { try? FileManager.default.removeItem(at: dir) }
        let report = try fixtureReport(in: dir)
        let files = try report.write(toFolder: dir.path)
        XCTAssertEqual(files.map { ($0 as NSString).lastPathComponent }, ["report.json", "report.md", "report.html"])
        let json = try JSONValue.parse(file: dir.appendingPathComponent("report.json").path)
        let htmlPath = dir.appendingPathComponent("report.html")
        let html = try String(contentsOf: htmlPath, encoding: .utf8)
        XCTAssertFalse(html.contains("<script"), "self-contained: no scripts")
        XCTAssertNil(html.range(of: "(src|href)=\"", options: .regularExpression), "self-contained: nothing fetched")

        let document = try XMLDocument(contentsOf: htmlPath, options: [])
        let root = try XCTUnwrap(document.rootElement())
        // Every number tagged with a JSON path equals that JSON value to the digits shown.
        let shown = try root.nodes(forXPath: "//*[@data-json]").compactMap { $0 as? XMLElement }
        XCTAssertEqual(shown.count, 4 * 5 + 3 * 10, "each model's five and each comparison's ten figures are tagged")
        var paths = Set<String>()
        for element in shown {
            func attribute(_ name: String) -> String? {
                element.attributes?.first { $0.localName == name || $0.name == name }?.stringValue
            }
            let path = try XCTUnwrap(attribute("data-json"))
            paths.insert(path)
            let scale = attribute("data-scale").flatMap(Double.init) ?? 1
            let text = try XCTUnwrap(element.stringValue)
            let value = try XCTUnwrap(Double(text), "\(path) shows '\(text)'")
            let expected = try XCTUnwrap(jsonValue(json, path)?.doubleValue, "\(path) is in report.json") * scale
            let decimals = text.split(separator: ".").dropFirst().first?.count ?? 0
            XCTAssertEqual(value, expected, accuracy: 0.5 * pow(10, -Double(decimals)) + 1e-12, "\(path)")
        }
        for k in 0..<4 { XCTAssertTrue(paths.contains("texts/0/models/\(k)/ppl")) }
        for k in 0..<3 { XCTAssertTrue(paths.contains("texts/0/comparisons/\(k)/kl_divergence/mean")) }
        // The three charts are inline SVG in the SVG namespace, each with a title.
        let svgs = try root.nodes(forXPath: "//*[local-name()='svg']").compactMap { $0 as? XMLElement }
        XCTAssertEqual(svgs.count, 3, "PPL, running PPL and KL charts")
        XCTAssertTrue(svgs.allSatisfy { $0.uri == "http://www.w3.org/2000/svg" }, "inline SVG in the SVG namespace")
        XCTAssertTrue(html.contains("Perplexity on keeper.txt"))
        XCTAssertTrue(html.contains("Running perplexity on keeper.txt"))
        XCTAssertTrue(html.contains("KL(parent ‖ merge) per token on keeper.txt"))
        // Each chart also stands alone as an SVG file.
        let text = try XCTUnwrap(report.texts.first)
        XCTAssertEqual(text.results[0].runningPerplexity.count, 3)
        let charts = [ScoreCharts.perplexity(report, text: text), try XCTUnwrap(ScoreCharts.runningPerplexity(report, text: text)),
                      try XCTUnwrap(ScoreCharts.klDistribution(report, text: text))]
        for chart in charts {
            let svg = try XMLDocument(data: Data(chart.render().utf8), options: [])
            XCTAssertEqual(svg.rootElement()?.localName, "svg")
            XCTAssertFalse(chart.render().contains("NaN"))
        }
        // report.md carries the same verdict.
        let markdown = try String(contentsOf: dir.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains(text.verdict.summary))
        XCTAssertTrue(markdown.contains("| output | merge | " + ScoreFormat.perplexity(text.results[0].perplexity)))
    }

    func testNonFiniteNumbersAreNullWithAReason() throws {
        let models = [ScoredModel(name: "m", role: .merge, path: "/m", tokenizerPath: "/m", vocabSize: 4),
                      ScoredModel(name: "p", role: .parent, path: "/p", tokenizerPath: "/p", vocabSize: 4)]
        let results = [
            ModelTextScore(model: 0, perplexity: .infinity, perplexityError: .nan, meanNLL: .infinity, bitsPerByte: .nan,
                           tokensScored: 3, bytesScored: 0, windows: 1, tokenCount: 8, tokenization: 0, runningPerplexity: [.infinity]),
            ModelTextScore(model: 1, perplexity: 2, perplexityError: 0.1, meanNLL: log(2), bitsPerByte: 1,
                           tokensScored: 3, bytesScored: 3, windows: 1, tokenCount: 8, tokenization: 0, runningPerplexity: [2]),
        ]
        let comparisons = [ParentComparison(parent: 1, statistics: nil, notComparableReason: "test")]
        let text = TextScore(path: "/t", name: "t", bytes: 3, results: results, comparisons: comparisons,
                             verdict: ScoreVerdict(models: models, results: results, comparisons: comparisons))
        let report = ScoreReport(models: models, texts: [text], contextLength: 8, maxChunks: nil, threads: 1, seconds: .nan,
                                 peakResidentBytes: nil)
        let out = report.json()
        for bad in ["nan", "NaN", "inf", "Infinity"] {
            XCTAssertNil(out.range(of: "[:\\[,] *-?" + bad, options: String.CompareOptions.regularExpression), "\(bad) written as a number:\n\(out)")
        }
        let json = try JSONValue.parse(Data(out.utf8))
        XCTAssertTrue(jsonValue(json, "texts/0/models/0/ppl")?.isNull == true)
        XCTAssertEqual(jsonValue(json, "texts/0/models/0/ppl_null_reason")?.stringValue, "the value is +infinity")
        XCTAssertEqual(jsonValue(json, "texts/0/models/0/bits_per_byte_null_reason")?.stringValue, "the scored tokens stand for no bytes")
        XCTAssertTrue(jsonValue(json, "seconds")?.isNull == true)
        XCTAssertEqual(jsonValue(json, "texts/0/models/1/ppl")?.doubleValue, 2)
        // The parent with a finite figure is best, and the verdict says the merge is worse without a paired error.
        XCTAssertEqual(jsonValue(json, "texts/0/verdict/best")?.stringValue, "p")
        XCTAssertEqual(jsonValue(json, "texts/0/verdict/outcome")?.stringValue, "not_comparable")
        XCTAssertTrue(report.table(color: false).contains("n/a"))
        XCTAssertTrue(report.html.contains("n/a"))
    }

    func testVerdictCountsADifferenceOnlyBeyondThePairedError() {
        let models = ["m", "a", "b"].enumerated().map {
            ScoredModel(name: $0.element, role: $0.offset == 0 ? .merge : .parent, path: "/" + $0.element, tokenizerPath: "/", vocabSize: 4)
        }
        func verdict(merge: Double, a: Double, b: Double, ratio: Double, error: Double) -> ScoreVerdict {
            let results = [merge, a, b].enumerated().map { i, ppl in
                ModelTextScore(model: i, perplexity: ppl, perplexityError: 0.1, meanNLL: log(ppl), bitsPerByte: log2(ppl) / 4,
                               tokensScored: 100, bytesScored: 400, windows: 1, tokenCount: 200, tokenization: 0, runningPerplexity: [ppl])
            }
            let stats = KLDivergenceReportStub.make(logRatio: MeanWithError(mean: ratio, error: error))
            let comparisons = [ParentComparison(parent: 1, statistics: stats, notComparableReason: nil),
                               ParentComparison(parent: 2, statistics: stats, notComparableReason: nil)]
            return ScoreVerdict(models: models, results: results, comparisons: comparisons)
        }
        let better = verdict(merge: 9, a: 10, b: 11, ratio: log(0.9), error: 0.01)
        XCTAssertEqual(better.outcome, .better)
        XCTAssertEqual(better.best, 0)
        XCTAssertEqual(better.bestParent, 1)
        XCTAssertTrue(better.summary.contains("m is better than its best parent a"), better.summary)

        let noise = verdict(merge: 9.99, a: 10, b: 11, ratio: -0.001, error: 0.002)
        XCTAssertEqual(noise.outcome, .withinNoise)
        XCTAssertTrue(noise.summary.contains("within noise"), noise.summary)

        let worse = verdict(merge: 12, a: 10, b: 11, ratio: log(1.2), error: 0.01)
        XCTAssertEqual(worse.outcome, .worse)
        XCTAssertTrue(worse.worseThanAllParents)
        XCTAssertTrue(worse.summary.contains("worse than all 2 parents"), worse.summary)

        let between = verdict(merge: 10.5, a: 10, b: 11, ratio: log(1.05), error: 0.01)
        XCTAssertEqual(between.outcome, .worse)
        XCTAssertFalse(between.worseThanAllParents)
    }
}

/// A `KLDivergenceReport` carrying only the paired ln PPL ratio the verdict reads.
enum KLDivergenceReportStub {
    static func make(logRatio: MeanWithError) -> KLDivergenceReport {
        var accumulator = KLDivergenceAccumulator()
        // Twenty positions whose NLL differences have the requested mean and (σ of the mean) error.
        let n = 20.0
        let spread = logRatio.error * (n - 1).squareRoot()
        for i in 0..<20 {
            let d = logRatio.mean + (i % 2 == 0 ? spread : -spread)
            accumulator.add(KLPosition(nll: 2 + d, baseNLL: 2, kld: 0.01, sameTop: true, probabilityDelta: 0))
        }
        return accumulator.report
    }
}
