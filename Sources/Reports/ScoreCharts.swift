import Evaluation
import Foundation

/// The score report's charts, each a standalone `SVGDocument` (inlined into report.html).
public enum ScoreCharts {
    /// The merge's colour (Okabe–Ito vermilion) and the parents' (Okabe–Ito blue, green, reddish purple, sky blue,
    /// orange, yellow, black): distinguishable with the common colour-vision deficiencies.
    public static let mergeColor = "#d55e00"
    public static let parentColors = ["#0072b2", "#009e73", "#cc79a7", "#56b4e9", "#e69f00", "#b59c00", "#000000"]

    /// The colour of model `index` in every chart (0 is the merge).
    public static func color(ofModel index: Int) -> String {
        index == 0 ? mergeColor : parentColors[(index - 1) % parentColors.count]
    }

    static func roleLabel(_ m: ScoredModel) -> String { m.role == .merge ? "\(m.name) (merge)" : "\(m.name) (parent)" }

    /// Room left of the plot for category labels of 11 px text (about 6.6 px per character), so long model names
    /// (`SmolLM2-135M-Instruct.Q4_1.gguf (parent)`) are not cut at the edge.
    static func labelMargin(_ labels: [String]) -> Double {
        min(420, max(120, 24 + 6.6 * Double(labels.map(\.count).max() ?? 0)))
    }

    /// PPL ± error per model on one text: a dot with its error bar per model, the merge first and in its own colour.
    public static func perplexity(_ report: ScoreReport, text: TextScore) -> SVGDocument {
        let rows = text.results
        let labels = rows.map { roleLabel(report.models[$0.model]) }
        let left = labelMargin(labels), right = 40.0, top = 46.0, rowHeight = 34.0
        let width = left + 530, plotBottom = top + rowHeight * Double(rows.count)
        let height = plotBottom + 62
        var doc = SVGDocument(width: width, height: height, title: "Perplexity on \(text.name)",
                              summary: "Perplexity of each model on \(text.name) with llama.cpp's ± (one standard error). "
                                  + "Lower is better.")
        doc.append(.label("Perplexity on \(text.name) (lower is better; bars: ± one standard error)", x: 12, y: 22, size: 14, bold: true))
        let lows = rows.map { $0.perplexity - $0.perplexityError }, highs = rows.map { $0.perplexity + $0.perplexityError }
        guard let x = LinearScale(niceOver: lows + highs, range: (left, width - right)) else {
            doc.append(.label("no finite perplexity to draw", x: left, y: top + 20))
            return doc
        }
        let band = BandScale(count: rows.count, range: (top, plotBottom), padding: 0.3)
        doc.append(SVGAxis.numeric(x, side: .bottom, position: plotBottom, title: "perplexity (PPL)", gridLength: plotBottom - top))
        doc.append(SVGAxis.categorical(band, labels: labels, side: .left, position: left))
        for (i, r) in rows.enumerated() {
            let y = band.center(i), c = color(ofModel: r.model)
            let tip = "\(report.models[r.model].name): PPL \(ScoreFormat.perplexity(r.perplexity)) ± "
                + "\(ScoreFormat.perplexityError(r.perplexityError))"
            var g = SVGElement.group([("class", "model")], [
                .line(x1: x(r.perplexity - r.perplexityError), y1: y, x2: x(r.perplexity + r.perplexityError), y2: y, stroke: c,
                      strokeWidth: 2),
                .line(x1: x(r.perplexity - r.perplexityError), y1: y - 6, x2: x(r.perplexity - r.perplexityError), y2: y + 6, stroke: c,
                      strokeWidth: 2),
                .line(x1: x(r.perplexity + r.perplexityError), y1: y - 6, x2: x(r.perplexity + r.perplexityError), y2: y + 6, stroke: c,
                      strokeWidth: 2),
                .circle(cx: x(r.perplexity), cy: y, r: r.model == 0 ? 6 : 5, fill: c),
            ])
            g.append(.label(ScoreFormat.perplexity(r.perplexity), x: x(r.perplexity), y: y - 10, anchor: .middle, size: 11,
                            fill: "#333333"))
            doc.append(g.tooltip(tip))
        }
        return doc
    }

    /// The running (cumulative) PPL after each window, one line per model, as `crucible ppl` prints it; nil when
    /// no model evaluated two windows (a single point per model says nothing the PPL chart does not).
    public static func runningPerplexity(_ report: ScoreReport, text: TextScore) -> SVGDocument? {
        guard (text.results.map { $0.runningPerplexity.count }.max() ?? 0) >= 2 else { return nil }
        let left = 70.0, right = 24.0, top = 46.0, plotHeight = 260.0
        let width = 760.0
        let legendRows = Double(text.results.count)
        let height = top + plotHeight + 56 + legendRows * 18
        var doc = SVGDocument(width: width, height: height, title: "Running perplexity on \(text.name)",
                              summary: "Cumulative perplexity over all scored tokens so far, after each window, per model.")
        doc.append(.label("Running perplexity on \(text.name), after each window (lower is better)", x: 12, y: 22, size: 14, bold: true))
        let windows = text.results.map { $0.runningPerplexity.count }.max() ?? 0
        let values = text.results.flatMap(\.runningPerplexity)
        guard windows > 0, let y = LinearScale(niceOver: values, range: (top + plotHeight, top)) else {
            doc.append(.label("no window was scored", x: left, y: top + 20))
            return doc
        }
        let x = LinearScale(domain: (1, Double(max(windows, 2))), range: (left, width - right))
        doc.append(SVGAxis.numeric(x, side: .bottom, position: top + plotHeight, tickCount: min(10, max(1, windows - 1)),
                                   title: "window (\(report.contextLength) tokens each)", gridLength: plotHeight,
                                   format: { SVGNumber.format($0, fractionDigits: 0) ?? "" }))
        doc.append(SVGAxis.numeric(y, side: .left, position: left, title: "PPL so far", gridLength: width - right - left))
        // Parents first so the merge's line is drawn on top.
        for r in text.results.sorted(by: { ($0.model == 0 ? 1 : 0, $0.model) < ($1.model == 0 ? 1 : 0, $1.model) }) {
            let c = color(ofModel: r.model)
            let points = r.runningPerplexity.enumerated().map { (x: x(Double($0.offset + 1)), y: y($0.element)) }
            var g = SVGElement.group([("class", "series")], [])
            if let line = SVGElement.polyline(points, stroke: c, strokeWidth: r.model == 0 ? 2.5 : 1.5) { g.append(line) }
            if windows <= 60 {
                for p in points { g.append(.circle(cx: p.x, cy: p.y, r: r.model == 0 ? 3.5 : 2.5, fill: c)) }
            }
            doc.append(g.tooltip("\(report.models[r.model].name): final PPL \(ScoreFormat.perplexity(r.perplexity))"))
        }
        var ly = top + plotHeight + 48
        for r in text.results {
            doc.append(.line(x1: left, y1: ly - 4, x2: left + 24, y2: ly - 4, stroke: color(ofModel: r.model),
                             strokeWidth: r.model == 0 ? 2.5 : 1.5))
            doc.append(.label(roleLabel(report.models[r.model]), x: left + 32, y: ly, size: 12))
            ly += 18
        }
        return doc
    }

    /// The distribution of KL(parent ‖ merge) over scored positions, one box per parent, drawn from the
    /// percentiles llama.cpp reports: whiskers from the 1st to the 99th percentile, the box from the 25th to the
    /// 75th, a line at the median, a diamond at the mean; the maximum is written at the right.
    public static func klDistribution(_ report: ScoreReport, text: TextScore) -> SVGDocument? {
        let compared = text.comparisons.compactMap { c in c.statistics.map { (c.parent, $0) } }
        guard !compared.isEmpty else { return nil }
        let labels = compared.map { "\(report.models[$0.0].name) (parent)" }
        let left = labelMargin(labels), right = 110.0, top = 46.0, rowHeight = 44.0
        let width = left + 600, plotBottom = top + rowHeight * Double(compared.count)
        let height = plotBottom + 62
        var doc = SVGDocument(width: width, height: height, title: "KL divergence of the merge from each parent on \(text.name)",
                              summary: "Per-token KL(parent ‖ merge) in nats: whiskers 1st–99th percentile, "
                                  + "box 25th–75th, line median, "
                                  + "diamond mean.")
        doc.append(.label("KL(parent ‖ merge) per token on \(text.name) (nats; lower = closer to that parent)", x: 12, y: 22, size: 14,
                          bold: true))
        // Index of each percentile in KLDivergenceReport.percentileFractions.
        let p99 = 2, p75 = 5, median = 6, p25 = 7, p1 = 10
        var extent: [Double] = [0]
        for (_, s) in compared { extent += [s.kldPercentiles[p1], s.kldPercentiles[p99], s.meanKLD.mean] }
        guard let x = LinearScale(niceOver: extent, range: (left, width - right)) else { return doc }
        let band = BandScale(count: compared.count, range: (top, plotBottom), padding: 0.4)
        doc.append(SVGAxis.numeric(x, side: .bottom, position: plotBottom, title: "KL divergence per token (nats)",
                                   gridLength: plotBottom - top))
        doc.append(SVGAxis.categorical(band, labels: labels, side: .left, position: left))
        for (i, (p, s)) in compared.enumerated() {
            let q = s.kldPercentiles, c = color(ofModel: p)
            let y0 = band.position(i), h = band.bandwidth, yc = band.center(i)
            let mean = x(s.meanKLD.mean)
            let corners: [(Double, Double)] = [(mean, yc - 6), (mean + 6, yc), (mean, yc + 6), (mean - 6, yc)]
            let diamond = corners.compactMap { pt -> String? in
                guard let a = SVGNumber.format(pt.0), let b = SVGNumber.format(pt.1) else { return nil }
                return a + "," + b
            }.joined(separator: " ")
            var g = SVGElement.group([("class", "box")], [
                .line(x1: x(q[p1]), y1: yc, x2: x(q[p25]), y2: yc, stroke: c, strokeWidth: 1.5),
                .line(x1: x(q[p75]), y1: yc, x2: x(q[p99]), y2: yc, stroke: c, strokeWidth: 1.5),
                .line(x1: x(q[p1]), y1: y0 + h * 0.25, x2: x(q[p1]), y2: y0 + h * 0.75, stroke: c, strokeWidth: 1.5),
                .line(x1: x(q[p99]), y1: y0 + h * 0.25, x2: x(q[p99]), y2: y0 + h * 0.75, stroke: c, strokeWidth: 1.5),
                SVGElement.rect(x: x(q[p25]), y: y0, width: max(1, x(q[p75]) - x(q[p25])), height: h, fill: c, stroke: c, strokeWidth: 1.5)
                    .attr("fill-opacity", 0.2),
                .line(x1: x(q[median]), y1: y0, x2: x(q[median]), y2: y0 + h, stroke: c, strokeWidth: 2.5),
                SVGElement("polygon", [("points", .text(diamond)), ("fill", "#ffffff"), ("stroke", .text(c)), ("stroke-width", 1.5)]),
            ])
            g.append(.label("max \(ScoreFormat.kl(q[0]))", x: width - right + 8, y: yc, size: 11, fill: "#333333", middle: true))
            doc.append(g.tooltip("\(report.models[p].name): mean \(ScoreFormat.kl(s.meanKLD.mean)), median \(ScoreFormat.kl(q[median])), "
                                 + "25–75% \(ScoreFormat.kl(q[p25]))–\(ScoreFormat.kl(q[p75])), 1–99% "
                                     + "\(ScoreFormat.kl(q[p1]))–\(ScoreFormat.kl(q[p99]))"))
        }
        return doc
    }
}
