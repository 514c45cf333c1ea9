import Foundation
import Host
import Reports

/// `report.html` of an evolve run: the fitness of every evaluation with the best so far, each parameter's trajectory,
/// the final scores on the search and held-out parts, and the best recipe. Self-contained (inline SVG, no scripts).
public enum EvolveReport {
    public static func html(_ r: EvolveResult, configPath: String) -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>crucible evolve: "
            + XMLEscape.text(configPath) + "</title><style>" + css + "</style></head><body>\n"
        h += "<h1>crucible evolve</h1>\n<p>Config <code>\(XMLEscape.text(configPath))</code>; optimizer "
            + "<b>\(r.optimizer.rawValue)</b>, seed <b>\(r.seed)</b>, \(r.threads) threads; \(r.records.count) evaluations of "
            + "\(r.dimensions.count) parameters in \(String(format: "%.1f", r.seconds)) s"
            + (r.peakResidentBytes.map { ", peak RSS \(XMLEscape.text(formatBytes($0)))" } ?? "") + ".</p>\n"
        if let best = r.best {
            h += "<p>Best: candidate \(best.index), fitness <b>\(fmt(best.fitness ?? .nan))</b> on the search part.</p>\n"
        } else {
            h += "<p>No candidate was scored successfully.</p>\n"
        }
        for n in r.notes { h += "<p class=\"note\">\(XMLEscape.text(n))</p>\n" }
        h += "<h2>Fitness per evaluation</h2>\n" + fitnessChart(r).render() + "\n"
        h += "<h2>Parameter trajectories</h2>\n" + trajectoryChart(r).render() + "\n"
        if !r.finals.isEmpty {
            h += "<h2>Final scores</h2>\n<p>Fitness is lower-is-better (Σ weight × value, maximised metrics negated). The held-out "
                + "part of each text was never seen by the search: a best candidate that wins on the search part but not on the "
                + "held-out part has overfitted.</p>\n"
            h += finalTable(r)
        }
        if let text = r.bestRecipe {
            h += "<h2>best.yml</h2>\n<pre>\(XMLEscape.text(text))</pre>\n"
        }
        return h + "</body></html>\n"
    }

    static let css = "body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}table{border-collapse:collapse}"
        + "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}"
        + "pre{background:#f6f6f6;padding:1em;overflow-x:auto}.note{color:#805000}"

    static func fmt(_ v: Double) -> String { SVGNumber.readable(v) ?? "n/a" }


    static let plotLeft = 80.0, plotTop = 30.0, plotHeight = 280.0, plotWidth = 900.0

    /// A chart over the evaluations: the document with its axes (evaluation index across, `values` up), or a note and
    /// no axes when there is nothing finite to draw.
    static func plot(_ r: EvolveResult, title: String, legendHeight: Double, values: [Double], valueTitle: String,
                     summary: String) -> (SVGDocument, (LinearScale, LinearScale)?) {
        let right = 24.0, bottom = plotTop + plotHeight
        var doc = SVGDocument(width: plotWidth, height: bottom + 60 + legendHeight, title: title, summary: summary)
        guard let y = LinearScale(niceOver: values, range: (bottom, plotTop)) else {
            doc.append(.label("nothing finite to draw", x: plotLeft, y: plotTop + 20))
            return (doc, nil)
        }
        let x = LinearScale(domain: (0, Double(max(r.records.count - 1, 1))), range: (plotLeft, plotWidth - right))
        doc.append(SVGAxis.numeric(x, side: .bottom, position: bottom, title: "evaluation", gridLength: plotHeight,
                                   format: { SVGNumber.format($0, fractionDigits: 0) ?? "" }))
        doc.append(SVGAxis.numeric(y, side: .left, position: plotLeft, title: valueTitle, gridLength: plotWidth - right - plotLeft))
        return (doc, (x, y))
    }

    /// Every evaluation's fitness as a dot, the best so far as a step line.
    static func fitnessChart(_ r: EvolveResult) -> SVGDocument {
        let points = r.records.compactMap { rec in rec.fitness.map { (Double(rec.index), $0) } }
        var (doc, axes) = plot(r, title: "Fitness per evaluation", legendHeight: 0, values: points.map(\.1), valueTitle: "fitness",
                               summary: "Each candidate's fitness (dots, lower is better) and the best so far (line).")
        guard let (x, y) = axes else { return doc }
        for (i, f) in points {
            doc.append(SVGElement.circle(cx: x(i), cy: y(f), r: 3, fill: "#0072b2").tooltip("#\(Int(i)): \(fmt(f))"))
        }
        var bestSoFar = Double.infinity
        var line: [(x: Double, y: Double)] = []
        for rec in r.records {
            if let f = rec.fitness, f < bestSoFar { bestSoFar = f }
            if bestSoFar.isFinite { line.append((x(Double(rec.index)), y(bestSoFar))) }
        }
        if let l = SVGElement.polyline(line, stroke: "#d55e00", strokeWidth: 2.5) { doc.append(l.tooltip("best so far")) }
        return doc
    }

    /// Each parameter's value per evaluation, one line per dimension.
    static func trajectoryChart(_ r: EvolveResult) -> SVGDocument {
        let values = r.records.isEmpty ? []
            : r.records.flatMap { $0.parameters.map(\.value) } + r.dimensions.flatMap { [$0.lower, $0.upper] }
        var (doc, axes) = plot(r, title: "Parameter trajectories", legendHeight: Double(r.dimensions.count) * 16, values: values,
                               valueTitle: "value", summary: "The value of every searched parameter in each evaluated candidate.")
        guard let (x, y) = axes else { return doc }
        let left = plotLeft
        let colors = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#56b4e9", "#e69f00", "#b59c00", "#000000"]
        var ly = plotTop + plotHeight + 52
        for (d, dim) in r.dimensions.enumerated() {
            let c = colors[d % colors.count]
            let pts = r.records.map { (x: x(Double($0.index)), y: y($0.parameters[d].value)) }
            if let l = SVGElement.polyline(pts, stroke: c, strokeWidth: 1.2) { doc.append(l.tooltip(dim.label)) }
            doc.append(.line(x1: left, y1: ly - 4, x2: left + 24, y2: ly - 4, stroke: c, strokeWidth: 2))
            doc.append(.label(dim.label, x: left + 32, y: ly, size: 11))
            ly += 16
        }
        return doc
    }

    static func finalTable(_ r: EvolveResult) -> String {
        let texts = r.finals.first { $0.error == nil }?.heldOut.map { "\($0.text) (\($0.metric.rawValue))" } ?? []
        var h = "<table><tr><th>model</th><th>search fitness</th><th>held-out fitness</th>"
        for t in texts { h += "<th>held-out \(XMLEscape.text(t))</th>" }
        h += "</tr>\n"
        for f in r.finals {
            h += "<tr><td>\(XMLEscape.text(f.name))</td>"
            if let e = f.error {
                h += "<td colspan=\"\(2 + texts.count)\">\(XMLEscape.text(e))</td></tr>\n"
                continue
            }
            h += "<td>\(fmt(f.searchFitness))</td><td>\(fmt(f.heldOutFitness))</td>"
            for v in f.heldOut { h += "<td>\(fmt(v.value))</td>" }
            h += "</tr>\n"
        }
        return h + "</table>\n"
    }
}
