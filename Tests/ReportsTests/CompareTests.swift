import Checkpoints
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Reports
import TestSupport
import XCTest

final class CompareTests: XCTestCase {
    private func model(_ name: String) -> String { Fixtures.fixture("models/\(name)") }

    /// Every tensor's metrics against a direct Double computation over whole tensors read with `Checkpoints`.
    private func checkAgainstReference(_ report: ModelComparison, a: String, b: String, base: String?) throws {
        let ca = try CheckpointFolder(path: a), cb = try CheckpointFolder(path: b)
        let cc = try base.map { try CheckpointFolder(path: $0) }
        XCTAssertEqual(report.tensors.count, ca.tensorNames.count)
        var total = CompareReference.Sums()
        var qTotal = CompareReference.Sums()
        for t in report.tensors {
            var s = CompareReference.Sums()
            let va = try ca.readAllFloats(t.name), vb = try cb.readAllFloats(t.name)
            let vc = try cc?.readAllFloats(t.name)
            s.add(va, vb, base: vc)
            total.add(va, vb, base: vc)
            if t.module == "q" { qTotal.add(va, vb, base: vc) }
            let m = t.metrics
            XCTAssertEqual(m.elements, va.count, t.name)
            XCTAssertEqual(try XCTUnwrap(m.cosine, t.name), s.cosine, accuracy: 1e-12, t.name)
            XCTAssertEqual(try XCTUnwrap(m.distance, t.name), s.distance, accuracy: 1e-12, t.name)
            XCTAssertEqual(try XCTUnwrap(m.signAgreement, t.name), s.agreement, accuracy: 1e-15, t.name)
            if base != nil {
                XCTAssertEqual(try XCTUnwrap(m.taskSizeA, t.name), s.sizeA, accuracy: 1e-12, t.name)
                XCTAssertEqual(try XCTUnwrap(m.taskSizeB, t.name), s.sizeB, accuracy: 1e-12, t.name)
            } else {
                XCTAssertNil(m.taskSizeA)
            }
        }
        // Aggregates are the concatenated vectors.
        let overall = report.overall
        XCTAssertEqual(try XCTUnwrap(overall.cosine), total.cosine, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(overall.distance), total.distance, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(overall.signAgreement), total.agreement, accuracy: 1e-15)
        let q = try XCTUnwrap(report.moduleTotal("q"))
        XCTAssertEqual(try XCTUnwrap(q.cosine), qTotal.cosine, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(q.distance), qTotal.distance, accuracy: 1e-12)
    }

    func testDirectComparisonMatchesAnIndependentComputation() throws {
        let (a, b) = (model("llama-ft1"), model("llama-ft3"))
        let report = try ModelComparison.compare(a, b, options: CompareOptions(threads: 2))
        XCTAssertEqual(report.architecture, "llama")
        XCTAssertEqual(report.layerCount, 4)
        XCTAssertEqual(report.modules, ["input_norm", "q", "k", "v", "o", "post_norm", "gate", "up", "down"])
        XCTAssertEqual(report.otherModules, ["embed", "final_norm", "head"])
        try checkAgainstReference(report, a: a, b: b, base: nil)
        XCTAssertLessThan(try XCTUnwrap(report.overall.cosine), 1)
    }

    func testTaskVectorComparisonMatchesAnIndependentComputation() throws {
        let (a, b, c) = (model("llama-ft1"), model("llama-ft2"), model("llama-base"))
        let report = try ModelComparison.compare(a, b, base: c, options: CompareOptions(threads: 3))
        XCTAssertTrue(report.withBase)
        try checkAgainstReference(report, a: a, b: b, base: c)
    }

    func testAModelAgainstItselfIsIdentical() throws {
        let report = try ModelComparison.compare(model("llama-base"), model("llama-base"))
        for t in report.tensors {
            XCTAssertEqual(try XCTUnwrap(t.metrics.cosine, t.name), 1, accuracy: 1e-12, t.name)
            XCTAssertEqual(t.metrics.distance, 0, t.name)
            XCTAssertEqual(t.metrics.signAgreement, 1, t.name)
        }
        XCTAssertEqual(try XCTUnwrap(report.overall.cosine), 1, accuracy: 1e-12)
        XCTAssertTrue(report.notes.isEmpty, "\(report.notes)")
        XCTAssertTrue(report.reading().first?.contains("practically identical") ?? false, "\(report.reading())")
        XCTAssertTrue(report.heatmapSVG().contains("every cell: 1.00000"), "one value everywhere is said, not stretched over the scale")
    }

    /// MANIFEST: ft1 moves attention by 0.05 and the MLP by 0.01 (relative), ft2 the other way round.
    func testFineTuneDeltasShowWhereEachModelMoved() throws {
        let report = try ModelComparison.compare(model("llama-ft1"), model("llama-ft2"), base: model("llama-base"))
        for m in ["q", "k", "v", "o"] {
            let t = try XCTUnwrap(report.moduleTotal(m))
            let (a, b) = (try XCTUnwrap(t.taskSizeA), try XCTUnwrap(t.taskSizeB))
            XCTAssertGreaterThan(a, b, "attention module \(m): ft1 should have moved more")
            XCTAssertEqual(a, 0.05, accuracy: 0.005, m)
            XCTAssertEqual(b, 0.01, accuracy: 0.002, m)
        }
        for m in ["gate", "up", "down"] {
            let t = try XCTUnwrap(report.moduleTotal(m))
            let (a, b) = (try XCTUnwrap(t.taskSizeA), try XCTUnwrap(t.taskSizeB))
            XCTAssertGreaterThan(b, a, "MLP module \(m): ft2 should have moved more")
            XCTAssertEqual(b, 0.05, accuracy: 0.005, m)
        }
        // Shared direction weights 0.5 and -0.3: the task vectors' cosine is about 0.5 × -0.3 = -0.15.
        XCTAssertEqual(try XCTUnwrap(report.moduleTotal("q")?.cosine), -0.15, accuracy: 0.05)
        let reading = report.reading().joined(separator: "\n")
        XCTAssertTrue(reading.contains("A changed most, relative to the base: q") || reading.contains("A changed most, relative to the base: v")
                      || reading.contains("A changed most, relative to the base: o") || reading.contains("A changed most, relative to the base: k"),
                      reading)
        XCTAssertTrue(reading.contains("B changed most, relative to the base: gate") || reading.contains("B changed most, relative to the base: up")
                      || reading.contains("B changed most, relative to the base: down"), reading)
    }

    func testResultsDoNotDependOnThreadCount() throws {
        var one = CompareOptions(threads: 1)
        one.blockElements = 1000
        var four = CompareOptions(threads: 4)
        four.blockElements = 1000
        let r1 = try ModelComparison.compare(model("llama-ft1"), model("llama-ft2"), base: model("llama-base"), options: one)
        let r4 = try ModelComparison.compare(model("llama-ft1"), model("llama-ft2"), base: model("llama-base"), options: four)
        XCTAssertEqual(r1.tensors.map(\.sums), r4.tensors.map(\.sums))
        XCTAssertEqual(r1.json().serialized(), r4.json().serialized().replacingOccurrences(of: "\"threads\": 4", with: "\"threads\": 1")
            .replacingOccurrences(of: "\"seconds\": \(r4.seconds)", with: "\"seconds\": \(r1.seconds)"))
        // Smaller blocks only regroup the same sums.
        let whole = try ModelComparison.compare(model("llama-ft1"), model("llama-ft2"), base: model("llama-base"))
        for (x, y) in zip(r1.tensors, whole.tensors) {
            XCTAssertEqual(try XCTUnwrap(x.metrics.cosine), try XCTUnwrap(y.metrics.cosine), accuracy: 1e-13, x.name)
        }
    }

    func testGGUFAgainstItsSourceFolder() throws {
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (bytes, _) = try GGUFConversion.convert(folder: model("llama-base"), arch: "llama")
        let path = folder.appendingPathComponent("llama-base.gguf").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let report = try ModelComparison.compare(path, model("llama-base"))
        XCTAssertEqual(report.tensors.count, 39)
        for t in report.tensors {
            XCTAssertEqual(t.metrics.distance, 0, "\(t.name) read back from GGUF (Q/K rows un-permuted) must equal the folder's")
        }
    }

    func testDifferentShapesAreAnErrorNamingTheTensorAndShapes() throws {
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try CompareReference.writeCopy(of: model("llama-base"), to: folder) { name, shape, values in
            name == "model.layers.2.mlp.up_proj.weight" ? ([shape[0] / 2, shape[1] * 2], values) : nil
        }
        XCTAssertThrowsError(try ModelComparison.compare(model("llama-base"), folder.path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("model.layers.2.mlp.up_proj.weight"), text)
            XCTAssertTrue(text.contains("[96, 32]") && text.contains("[48, 64]"), text)
            XCTAssertTrue(text.contains(folder.path), text)
        }
        XCTAssertThrowsError(try ModelComparison.compare(model("llama-base"), model("mixtral-tiny"))) { error in
            XCTAssertTrue("\(error)".contains("mixtral"), "\(error)")
        }
    }

    func testLargerVocabularyComparesTheCommonRows() throws {
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try CompareReference.writeCopy(of: model("llama-base"), to: folder) { name, shape, values in
            guard name == "model.embed_tokens.weight" || name == "lm_head.weight" else { return nil }
            return ([shape[0] + 8, shape[1]], values + [Float](repeating: 0.5, count: 8 * shape[1]))
        }
        let report = try ModelComparison.compare(model("llama-base"), folder.path)
        let embed = try XCTUnwrap(report.tensors.first { $0.name == "model.embed_tokens.weight" })
        XCTAssertEqual(embed.comparedElements, 512 * 32)
        XCTAssertEqual(embed.metrics.distance, 0)
        XCTAssertTrue(report.notes.contains { $0.contains("model.embed_tokens.weight") && $0.contains("first 512 rows") }, "\(report.notes)")
    }

    func testUndefinedMetricsAreNullWithAReason() throws {
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try CompareReference.writeCopy(of: model("llama-base"), to: folder) { name, shape, values in
            if name == "model.layers.1.input_layernorm.weight" { return (shape, [Float](repeating: 0, count: values.count)) }
            if name == "model.layers.1.post_attention_layernorm.weight" { return (shape, [Float](repeating: .nan, count: values.count)) }
            return nil
        }
        let report = try ModelComparison.compare(model("llama-base"), folder.path)
        let zero = try XCTUnwrap(report.cell(layer: 1, module: "input_norm"))
        XCTAssertNil(zero.cosine)
        XCTAssertNil(zero.signAgreement)
        XCTAssertEqual(try XCTUnwrap(zero.distance), 1, accuracy: 1e-12, "‖A − 0‖ / ‖A‖")
        let nan = try XCTUnwrap(report.cell(layer: 1, module: "post_norm"))
        XCTAssertNil(nan.cosine)
        XCTAssertNil(nan.distance)
        XCTAssertTrue(nan.undefined.joined().contains("NaN"), "\(nan.undefined)")
        let json = report.json().serialized()
        // JSONSerialization refuses a bare NaN, so parsing proves none was written as a number.
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        let layers = parsed["layers"] as! [[String: Any]]
        let cell = (layers[1]["modules"] as! [String: Any])["post_norm"] as! [String: Any]
        XCTAssertTrue(cell["cosine"] is NSNull)
        XCTAssertFalse((cell["undefined"] as! [String]).isEmpty)
        XCTAssertTrue(report.notes.contains { $0.contains("post_attention_layernorm") }, "\(report.notes)")
        // The heatmap still renders, with grey n/a cells.
        _ = try XMLCollector.parse(report.heatmapSVG())
        XCTAssertTrue(report.heatmapSVG().contains(">n/a<"))
    }

    func testTruncatedFileIsAnErrorNamingIt() throws {
        let folder = Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try CompareReference.writeCopy(of: model("llama-base"), to: folder)
        let file = folder.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: file)
        try data.prefix(data.count - 100).write(to: file)
        XCTAssertThrowsError(try ModelComparison.compare(model("llama-base"), folder.path)) { error in
            XCTAssertTrue("\(error)".contains(file.path), "\(error)")
        }
        XCTAssertThrowsError(try ModelComparison.compare(model("llama-base"), "/nonexistent/model-x")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/model-x"), "\(error)")
        }
    }

    func testHeatmapParsesAndItsTooltipsEqualTheJSON() throws {
        let report = try ModelComparison.compare(model("llama-ft1"), model("llama-ft2"), base: model("llama-base"))
        let svg = report.heatmapSVG(metric: .cosine)
        let collected = try XMLCollector.parse(svg)
        XCTAssertEqual(collected.root, "svg")
        let json = try JSONValue.parse(Data(report.json().serialized().utf8))
        let layers = try XCTUnwrap(json["layers"]?.arrayValue)
        var checked = 0
        for entry in collected.tooltipsByParent where entry.parent == "rect" {
            guard let label = entry.attributes["data-cell"] else { continue }
            let cellJSON: JSONValue?
            let parts = label.split(separator: " ")
            if parts.first == "layer", parts.count == 3, let l = Int(parts[1]) {
                cellJSON = layers[l]["modules"]?[String(parts[2])]
            } else {
                cellJSON = json["other"]?[label]
            }
            let expected = try XCTUnwrap(cellJSON, label)
            var values: [String: String] = [:]
            for line in entry.title.split(separator: "\n") {
                let kv = line.split(separator: ":", maxSplits: 1)
                if kv.count == 2 { values[String(kv[0])] = kv[1].trimmingCharacters(in: .whitespaces) }
            }
            for (tip, key) in [("cosine", "cosine"), ("relative distance", "relative_distance"), ("sign agreement", "sign_agreement"),
                               ("task size A", "task_size_a"), ("task size B", "task_size_b")] {
                let shown = try XCTUnwrap(values[tip], "\(label): no '\(tip)' line in \(entry.title)")
                XCTAssertEqual(Double(shown), expected[key]?.doubleValue, "\(label) \(tip)")
            }
            checked += 1
        }
        XCTAssertEqual(checked, 4 * 9 + 3, "every layer × module cell and the 3 tensors outside the layers")
        XCTAssertEqual(collected.rootAttributes["viewBox"]?.hasPrefix("0 0 "), true)
        XCTAssertTrue(collected.texts.contains("q") && collected.texts.contains("layer"), "axis labels")
        XCTAssertTrue(collected.titles.contains { $0.contains("cosine of task vectors") })
    }

    func testTextReportNamesLayersModulesAndDefinitions() throws {
        let report = try ModelComparison.compare(model("llama-ft1"), model("llama-ft2"), base: model("llama-base"))
        let text = report.text(metric: .distance)
        XCTAssertTrue(text.contains("‖τA − τB‖ / ‖τA‖ per layer and module"), text)
        XCTAssertTrue(text.contains("‖τA‖/‖base‖"), text)
        XCTAssertTrue(text.contains("Reading:"), text)
        let json = try JSONValue.parse(Data(report.json().serialized().utf8))
        XCTAssertEqual(json["mode"]?.stringValue, "task_vectors")
        XCTAssertNotNil(json["definitions"]?["sign_agreement"]?.stringValue)
        XCTAssertEqual(json["tensors"]?.arrayValue?.count, 39)
    }
}
