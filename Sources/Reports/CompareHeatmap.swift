import Foundation

extension ModelComparison {
    /// The comparison as an SVG heatmap: rows are layers (0 at the top), columns modules, colour the chosen
    /// `metric` (brighter = more different), with a colour-bar legend, axis labels, the tensors outside the layer
    /// stack in a row of their own, and a `<title>` tooltip on every cell giving its exact metrics (the same
    /// numbers as the JSON output, written the same way).
    public func heatmapSVG(metric: ComparisonMetric = .cosine) -> String {
        let withBase = self.withBase
        // Layout.
        let longestModule = (modules + otherModules).map(\.count).max() ?? 4
        let cellWidth = max(58.0, min(96.0, Double(longestModule) * 7.0 + 8))
        let cellHeight = layerCount > 48 ? 14.0 : layerCount > 24 ? 18.0 : 26.0
        let left = 78.0, top = base == nil ? 100.0 : 114.0
        let gridWidth = cellWidth * Double(max(1, modules.count))
        let gridHeight = cellHeight * Double(layerCount)
        let rotate = modules.contains { Double($0.count) * 6.6 > cellWidth - 4 }
        let axisDepth = rotate ? Double(longestModule) * 5.5 + 30 : 40
        let otherTop = top + gridHeight + axisDepth + 30
        let otherHeight = otherModules.isEmpty ? 0 : cellHeight + 34
        let legendX = left + max(gridWidth, cellWidth * Double(otherModules.count)) + 36
        let width = legendX + 170
        let height = max(otherTop + otherHeight + 10, top + 360)

        // Colour domain: every finite value shown.
        var values: [Double] = []
        for l in 0..<layerCount { for m in modules { if let v = cell(layer: l,
                                                                     module: m).flatMap({ metric.value($0) }) { values.append(v) } } }
        for m in otherModules { if let v = other(m).flatMap({ metric.value($0) }) { values.append(v) } }
        let finite = values.filter(\.isFinite)
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        let single = finite.isEmpty ? nil : hi - lo < 1e-12 ? lo : nil
        if hi - lo < 1e-12 {
            // One value everywhere (a model against itself): a small range around it, inside the metric's own
            // bounds, so identical cells take the "least different" end of the scale.
            let pad = max(1e-3, abs(lo) * 1e-3)
            switch metric {
            case .cosine, .agreement:
                let top: Double = 1, bottom: Double = metric == .cosine ? -1 : 0
                (lo, hi) = lo + pad > top ? (top - 2 * pad, top) : lo - pad < bottom ? (bottom, bottom + 2 * pad) : (lo - pad, lo + pad)
            case .distance:
                (lo, hi) = lo - pad < 0 ? (0, 2 * pad) : (lo - pad, lo + pad)
            }
        }
        // Brighter = more different: bright for low cosine / agreement, for high distance.
        let colors = metric.largerIsMoreDifferent ? ColorScale.viridis : ColorScale.viridis.reversed()
        let scale = LinearScale(domain: (lo, hi), range: (0, 1))

        let title = "\(metric.title(withBase: withBase)) per layer and module"
        var summary = "A: \(a.path); B: \(b.path)"
        if let base { summary += "; base: \(base.path)" }
        var doc = SVGDocument(width: width, height: height, title: title, summary: summary)
        doc.append(.label(title, x: left, y: 26, size: 16, bold: true))
        var captions = ["A: \(a.reference)", "B: \(b.reference)"]
        if let base { captions.append("base: \(base.reference) (task vectors τ = model − base)") }
        captions.append("Hover a cell for its exact numbers.")
        for (i, c) in captions.enumerated() {
            doc.append(.label(c, x: left, y: 44 + 14 * Double(i), size: 11, fill: i == captions.count - 1 ? "#666666" : "#333333"))
        }

        // Cell labels: the table's format, with more decimals when the colours span a range finer than it shows.
        let rangeDigits = NiceTicks.fractionDigits(step: NiceTicks.step(span: hi - lo, count: 5)) + 1
        func cellText(_ v: Double) -> String {
            let base = format(v, metric)
            guard metric != .distance || abs(v) >= 0.001, v.isFinite else { return base }
            let decimals = base.split(separator: ".").last.map(\.count) ?? 0
            return rangeDigits > decimals ? String(format: "%.\(min(7, rangeDigits))f", v) : base
        }
        func cellElement(_ m: SimilarityMetrics?, x: Double, y: Double, label: String, detail: String, innerName: String?) -> SVGElement {
            let value = m.flatMap { metric.value($0) }
            let color = value.map { colors.color(at: scale.fraction($0)) } ?? colors.missing
            var g = SVGElement("g", [("class", "cell")])
            var rect = SVGElement.rect(x: x, y: y, width: cellWidth, height: cellHeight, fill: color.hex,
                                       stroke: "#ffffff", strokeWidth: 1)
            rect.set("data-cell", .text(label))
            g.append(rect.tooltip(tooltip(m, heading: detail)))
            let textColor = color.contrastingText.hex
            let shown = value.map { cellText($0) } ?? "n/a"
            if let innerName {
                g.append(SVGElement.label(innerName, x: x + cellWidth / 2, y: y - 6, anchor: .middle, size: 10, fill: "#333333"))
            }
            if cellHeight >= 14 {
                var t = SVGElement.label(shown, x: x + cellWidth / 2, y: y + cellHeight / 2, anchor: .middle,
                                         size: min(11, cellHeight - 5), fill: textColor, middle: true)
                t.set("pointer-events", "none")
                g.append(t)
            }
            return g
        }

        // The grid.
        var grid = SVGElement("g", [("class", "heatmap")])
        let columns = BandScale(count: modules.count, range: (left, left + gridWidth))
        let rows = BandScale(count: layerCount, range: (top, top + gridHeight))
        for l in 0..<layerCount {
            for (j, m) in modules.enumerated() {
                let names = tensors.filter { $0.layer == l && $0.module == m }.map(\.name)
                let detail = "layer \(l) · \(m)" + (names.count == 1 ? "\n\(names[0])" : names.isEmpty ? "" : "\n\(names.count) tensors")
                grid.append(cellElement(cell(layer: l, module: m), x: columns.position(j), y: rows.position(l),
                                        label: "layer \(l) \(m)", detail: detail, innerName: nil))
            }
        }
        doc.append(grid)
        doc.append(SVGAxis.categorical(rows, labels: (0..<layerCount).map { "\($0)" }, side: .left, position: left, title: "layer"))
        doc.append(SVGAxis.categorical(columns, labels: modules, side: .bottom, position: top + gridHeight, title: "module",
                                       rotateLabels: rotate))

        // Tensors outside the layer stack.
        if !otherModules.isEmpty {
            var row = SVGElement("g", [("class", "other")])
            row.append(.label("outside the layers", x: left, y: otherTop - 22, size: 12, bold: true))
            for (j, m) in otherModules.enumerated() {
                let names = tensors.filter { $0.layer == nil && $0.module == m }.map(\.name)
                let detail = m + (names.count == 1 && names[0] != m ? "\n\(names[0])" : "")
                row.append(cellElement(other(m), x: left + cellWidth * Double(j), y: otherTop, label: m, detail: detail,
                                       innerName: m))
            }
            doc.append(row)
        }

        // Legend.
        let legendTitle: String
        switch metric {
        case .cosine: legendTitle = "cosine"
        case .distance: legendTitle = "rel. distance"
        case .agreement: legendTitle = "sign agreement"
        }
        let legendHeight = min(260, max(140, gridHeight))
        // One decimal more than the tick spacing needs, so the end labels show where the range really stops.
        let digits = max(2, NiceTicks.fractionDigits(step: NiceTicks.step(span: hi - lo, count: 5)) + 1)
        doc.append(SVGLegend.colorBar(colors, domain: (lo, hi), x: legendX, y: top, height: legendHeight, title: legendTitle,
                                      id: "compare-legend", missingLabel: "n/a",
                                      format: { $0.isFinite ? String(format: "%.\(digits)f", $0) : "" }))
        var captionY = top + legendHeight + 48
        let rangeLines = single.map { ["every cell: \(format($0, metric))"] }
            ?? ["range \(String(format: "%.\(digits)f", lo))", "to \(String(format: "%.\(digits)f", hi))"]
        for text in ["brighter = more different"] + rangeLines {
            doc.append(.label(text, x: legendX, y: captionY, size: 11, fill: "#333333"))
            captionY += 15
        }
        return doc.render()
    }

    /// The tooltip of a cell: a heading, then `name: value` lines with the values spelled exactly as in the
    /// JSON output (shortest round-trip decimal), `n/a` with the reason for undefined ones.
    func tooltip(_ m: SimilarityMetrics?, heading: String) -> String {
        guard let m else { return heading + "\nno tensor" }
        func exact(_ x: Double?) -> String { x.map { "\($0)" } ?? "n/a" }
        var lines = [heading]
        lines.append("cosine: \(exact(m.cosine))")
        lines.append("relative distance: \(exact(m.distance))")
        lines.append("sign agreement: \(exact(m.signAgreement))")
        if withBase {
            lines.append("task size A: \(exact(m.taskSizeA))")
            lines.append("task size B: \(exact(m.taskSizeB))")
        }
        lines.append("elements: \(m.elements)")
        if !m.undefined.isEmpty { lines.append("undefined: " + m.undefined.joined(separator: "; ")) }
        return lines.joined(separator: "\n")
    }
}
