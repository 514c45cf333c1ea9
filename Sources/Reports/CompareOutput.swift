import Checkpoints
import Foundation

extension ModelComparison {
    // MARK: Text

    /// The report for a terminal: a layers × modules table of `metric`, the per-module totals (all metrics), the
    /// tensors outside the layer stack, the overall figures, a plain-language reading and notes.
    public func text(metric: ComparisonMetric = .cosine) -> String {
        var s = ""
        func line(_ t: String = "") { s += t + "\n" }
        line("A:    \(a.path)")
        line("B:    \(b.path)")
        if let base { line("base: \(base.path)  (metrics of the task vectors τA = A − base, τB = B − base)") }
        let elements = tensors.reduce(0) { $0 + $1.comparedElements }
        line("\(architecture), \(layerCount) layers; \(tensors.count) tensors compared (\(ReportText.grouped(elements)) elements) "
            + "in \(String(format: "%.2f", seconds)) s on \(threads) thread\(threads == 1 ? "" : "s")")
        line()

        // Layers × modules.
        if !modules.isEmpty {
            line("\(metric.title(withBase: withBase)) per layer and module:")
            var rows: [[String]] = []
            for l in 0..<layerCount {
                rows.append(["\(l)"] + modules.map { m in cell(layer: l, module: m).map { format(metric.value($0), metric) } ?? "-" }
                    + ["", layerTotal(l).map { format(metric.value($0), metric) } ?? "-"])
            }
            rows.append(["all"] + modules.map { m in moduleTotal(m).map { format(metric.value($0), metric) } ?? "-" } + ["", ""])
            s += ReportText.table(header: ["layer"] + modules + ["", "all"], rows: rows,
                                  rightAligned: Set(0..<(modules.count + 3)), indent: 2)
            line()
        }

        // Module totals and other tensors, every metric.
        var header = ["module", "cosine", "‖A−B‖/‖A‖", "sign agr."]
        if withBase {
            header = ["module", "cos(τA,τB)", "‖τA−τB‖/‖τA‖", "sign agr.", "‖τA‖/‖base‖", "‖τB‖/‖base‖"]
        }
        header.append("\(metric.rawValue) range over layers")
        var rows: [[String]] = []
        func metricsRow(_ label: String, _ m: SimilarityMetrics, range: String) -> [String] {
            var r = [label, format(m.cosine, .cosine), format(m.distance, .distance), format(m.signAgreement, .agreement)]
            if withBase { r += [format(m.taskSizeA, .distance), format(m.taskSizeB, .distance)] }
            return r + [range]
        }
        for m in modules {
            guard let total = moduleTotal(m) else { continue }
            let values = (0..<layerCount).compactMap { l in cell(layer: l, module: m).flatMap { metric.value($0) }.map { (l, $0) } }
            var range = ""
            if let lo = values.min(by: { $0.1 < $1.1 }), let hi = values.max(by: { $0.1 < $1.1 }) {
                range = "\(format(lo.1, metric)) (layer \(lo.0)) … \(format(hi.1, metric)) (layer \(hi.0))"
            }
            rows.append(metricsRow(m, total, range: range))
        }
        for m in otherModules {
            if let o = other(m) { rows.append(metricsRow(m, o, range: "")) }
        }
        rows.append(metricsRow("overall", overall, range: ""))
        line("Per module (all layers taken as one vector), then the tensors outside the layers:")
        s += ReportText.table(header: header, rows: rows, rightAligned: Set(1..<(header.count - 1)), indent: 2)
        line()

        let reading = self.reading(metric: metric)
        if !reading.isEmpty {
            line("Reading:")
            for r in reading { line("- " + r) }
        }
        if !notes.isEmpty {
            line("Notes:")
            for n in notes.prefix(20) { line("- " + n) }
            if notes.count > 20 { line("- … \(notes.count - 20) more (see --json)") }
        }
        return s
    }

    /// A metric value for the tables: cosine with 5 decimals, agreement with 4, distances and sizes with 4
    /// (or 3 significant digits when below 0.001); `n/a` for an undefined value.
    func format(_ x: Double?, _ metric: ComparisonMetric) -> String {
        guard let x, x.isFinite else { return "n/a" }
        switch metric {
        case .cosine: return String(format: "%.5f", x)
        case .agreement: return String(format: "%.4f", x)
        case .distance: return x != 0 && abs(x) < 0.001 ? String(format: "%.2e", x) : String(format: "%.4f", x)
        }
    }

    // MARK: Reading

    /// A few sentences on what differs most, for people choosing merge parameters.
    public func reading(metric: ComparisonMetric = .cosine) -> [String] {
        var out: [String] = []
        let all = overall
        // How different, overall.
        if let cos = all.cosine {
            let cosText = String(format: "%.5f", cos)
            if withBase {
                if let sa = all.taskSizeA, let sb = all.taskSizeB {
                    out.append("A moved \(percent(sa)) of the base's norm away from it, B \(percent(sb)).")
                }
                let kind: String
                switch cos {
                case 0.5...: kind = "point largely the same way: the fine-tunes learned similar changes, and merging them adds those up"
                case 0.1..<0.5: kind = "are partly aligned"
                case -0.1..<0.1: kind = "are nearly orthogonal: independent changes that a merge can keep side by side with little "
                    + "interference"
                default: kind = "point in opposing directions: averaging would cancel part of both changes (TIES' sign election decides "
                    + "which survives)"
                }
                var sentence = "The task vectors have cosine \(cosText) overall and \(kind)."
                if let agreement = all.signAgreement {
                    sentence += " Their signs agree on \(percent(agreement)) of the elements where both changed (50% is what unrelated "
                        + "signs give)."
                }
                out.append(sentence)
            } else {
                let kind: String
                switch cos {
                case 0.9999...: kind = "practically identical"
                case 0.99..<0.9999: kind = "very close (a light fine-tune apart)"
                case 0.9..<0.99: kind = "clearly related but noticeably changed"
                case 0.5..<0.9: kind = "substantially different"
                default: kind = "unrelated or heavily changed"
                }
                var sentence = "Overall the models are \(kind): cosine \(cosText)"
                if let d = all.distance { sentence += ", ‖A−B‖ is \(percent(d)) of ‖A‖" }
                out.append(sentence + ".")
            }
        } else if !all.undefined.isEmpty {
            out.append("The overall cosine is undefined: \(all.undefined.joined(separator: "; ")).")
        }

        // Which layers and modules differ most under the chosen metric. A spread that is small next to the
        // difference itself (under a tenth of 1 − cosine, of the distance, of 1 − agreement) is called even.
        let name = metric.title(withBase: withBase)
        func mostDifferent(_ items: [(String, Double)], count: Int) -> [(String, Double)] {
            Array(items.sorted { metric.largerIsMoreDifferent ? $0.1 > $1.1 : $0.1 < $1.1 }.prefix(count))
        }
        func listing(_ items: [(String, Double)]) -> String {
            items.map { "\($0.0) (\(format($0.1, metric)))" }.joined(separator: ", ")
        }
        func differenceScale(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            let median = sorted[sorted.count / 2]
            return abs(metric.largerIsMoreDifferent ? median : 1 - median)
        }
        func isEven(_ values: [Double]) -> Bool {
            guard let lo = values.min(), let hi = values.max() else { return true }
            return hi - lo <= 0.1 * differenceScale(values)
        }
        let layers = (0..<layerCount).compactMap { l in layerTotal(l).flatMap { metric.value($0) }.map { ("layer \(l)", $0) } }
        if layers.count >= 2 {
            let values = layers.map(\.1)
            if isEven(values) {
                out.append("By \(name), every layer differs about equally (\(format(values.min(), metric)) to "
                    + "\(format(values.max(), metric))): no layer stands out.")
            } else {
                let n = min(3, max(1, layers.count / 4))
                let top = mostDifferent(layers, count: n)
                let bottom = mostDifferent(layers, count: layers.count).reversed().prefix(n)
                out.append("By \(name), the layers that differ most are \(listing(top)); the least, \(listing(Array(bottom))).")
            }
        }
        let modulesRanked = modules.compactMap { m in moduleTotal(m).flatMap { metric.value($0) }.map { (m, $0) } }
        if modulesRanked.count >= 2 {
            let values = modulesRanked.map(\.1)
            if isEven(values) {
                out.append("Every module differs about equally across layers (\(format(values.min(), metric)) to "
                    + "\(format(values.max(), metric))).")
            } else {
                let top = mostDifferent(modulesRanked, count: min(3, modulesRanked.count - 1))
                out.append("Across layers, the modules that differ most are \(listing(top)).")
            }
        }
        let others = otherModules.compactMap { m in other(m).flatMap { metric.value($0) }.map { (m, $0) } }
        if let worstLayer = mostDifferent(layers, count: 1).first {
            let margin = 0.1 * differenceScale(layers.map(\.1))
            let beyond = others.filter { metric.largerIsMoreDifferent ? $0.1 > worstLayer.1 + margin : $0.1 < worstLayer.1 - margin }
            if !beyond.isEmpty {
                out.append("Outside the layers, \(listing(beyond)) differ\(beyond.count == 1 ? "s" : "") more than any layer.")
            }
        }
        // Where each fine-tune moved most.
        if withBase {
            for (label, size) in [("A", \SimilarityMetrics.taskSizeA), ("B", \SimilarityMetrics.taskSizeB)] {
                let ranked = modules.compactMap { m in moduleTotal(m)?[keyPath: size].map { (m, $0) } }.sorted { $0.1 > $1.1 }
                guard ranked.count >= 2, let largest = ranked.first?.1, let smallest = ranked.last?.1 else { continue }
                if largest - smallest <= 0.1 * largest {
                    let range = percent(smallest) == percent(largest) ? percent(largest) : "\(percent(smallest)) to \(percent(largest))"
                    out.append("\(label) changed every module by about the same fraction of the base (\(range)).")
                } else {
                    let top = ranked.prefix(3).map { "\($0.0) (\(percent($0.1)))" }.joined(separator: ", ")
                    out.append("\(label) changed most, relative to the base: \(top).")
                }
            }
        }
        if !withBase, metric == .cosine, layers.count >= 2 {
            out.append("Where the cosine is lowest, SLERP's t (or a per-layer t gradient) changes the result most; where it is near 1 "
                + "either parent gives nearly the same weights.")
        }
        return out
    }

    private func percent(_ x: Double) -> String {
        let p = x * 100
        return p >= 10 ? String(format: "%.0f%%", p) : p >= 1 ? String(format: "%.1f%%", p) : String(format: "%.2g%%", p)
    }

    // MARK: JSON

    /// The metric definitions as documented (also written into the JSON output).
    public var definitions: [(String, String)] {
        if withBase {
            return [
                ("vectors", "task vectors: tauA = A - base, tauB = B - base (per tensor, flattened; a module, layer or the whole model "
                    + "concatenates its tensors)"),
                ("cosine", "tauA . tauB / (||tauA|| ||tauB||)"),
                ("relative_distance", "||tauA - tauB|| / ||tauA|| (= ||A - B|| / ||A - base||)"),
                ("sign_agreement", "fraction of elements with the same sign in tauA and tauB, among elements where both are non-zero"),
                ("task_size_a", "||tauA|| / ||base||"),
                ("task_size_b", "||tauB|| / ||base||"),
            ]
        }
        return [
            ("vectors", "A and B (per tensor, flattened; a module, layer or the whole model concatenates its tensors)"),
            ("cosine", "A . B / (||A|| ||B||)"),
            ("relative_distance", "||A - B|| / ||A||"),
            ("sign_agreement", "fraction of elements with the same sign in A and B, among elements where both are non-zero"),
        ]
    }

    /// The report as one JSON object (schema in docs/inspect.md). Undefined metrics are null and their reasons
    /// are listed under `undefined`.
    public func json(metric: ComparisonMetric = .cosine) -> JSONValue {
        func model(_ m: ComparedModel?) -> JSONValue {
            guard let m else { return .null }
            return ReportJSON.object([("reference", .string(m.reference)), ("path", .string(m.path))])
        }
        var o = JSONObject()
        o["a"] = model(a)
        o["b"] = model(b)
        o["base"] = model(base)
        o["mode"] = .string(withBase ? "task_vectors" : "direct")
        o["metric"] = .string(metric.rawValue)
        o["definitions"] = ReportJSON.object(definitions.map { ($0.0, .string($0.1)) })
        o["architecture"] = .string(architecture)
        o["num_layers"] = .int(Int64(layerCount))
        o["modules"] = .array(modules.map { .string($0) })
        o["other_modules"] = .array(otherModules.map { .string($0) })
        o["layers"] = .array((0..<layerCount).map { l in
            var cells = JSONObject()
            for m in modules { if let c = cell(layer: l, module: m) { cells[m] = metricsJSON(c) } }
            return ReportJSON.object([("layer", .int(Int64(l))), ("total", layerTotal(l).map(metricsJSON) ?? .null),
                                      ("modules", .object(cells))])
        })
        var totals = JSONObject()
        for m in modules { if let t = moduleTotal(m) { totals[m] = metricsJSON(t) } }
        o["module_totals"] = .object(totals)
        var others = JSONObject()
        for m in otherModules { if let t = other(m) { others[m] = metricsJSON(t) } }
        o["other"] = .object(others)
        o["overall"] = metricsJSON(overall)
        o["tensors"] = .array(tensors.map { t in
            var pairs: [(String, JSONValue)] = [
                ("name", .string(t.name)), ("tensor_a", .string(t.nameA)), ("tensor_b", .string(t.nameB)),
            ]
            if let nb = t.nameBase { pairs.append(("tensor_base", .string(nb))) }
            pairs += [("layer", ReportJSON.int(t.layer)), ("module", .string(t.module)), ("shape", ReportText.shapeJSON(t.shape)),
                      ("metrics", metricsJSON(t.metrics))]
            return ReportJSON.object(pairs)
        })
        o["reading"] = .array(reading(metric: metric).map { .string($0) })
        o["notes"] = .array(notes.map { .string($0) })
        o["threads"] = .int(Int64(threads))
        o["seconds"] = ReportJSON.number(seconds)
        return .object(o)
    }

    func metricsJSON(_ m: SimilarityMetrics) -> JSONValue {
        var pairs: [(String, JSONValue)] = [
            ("cosine", ReportJSON.number(m.cosine)), ("relative_distance", ReportJSON.number(m.distance)),
            ("sign_agreement", ReportJSON.number(m.signAgreement)),
        ]
        if withBase { pairs += [("task_size_a", ReportJSON.number(m.taskSizeA)), ("task_size_b", ReportJSON.number(m.taskSizeB))] }
        pairs.append(("elements", .int(Int64(m.elements))))
        if !m.undefined.isEmpty { pairs.append(("undefined", .array(m.undefined.map { .string($0) }))) }
        return ReportJSON.object(pairs)
    }
}
