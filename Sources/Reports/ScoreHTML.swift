import Evaluation
import Foundation
import Host

extension ScoreReport {
    /// `report.html`: one self-contained XHTML page (inline SVG charts and CSS; no scripts, fonts or other files)
    /// with the same figures as report.json. Every number shown from report.json sits in an element whose
    /// `data-json` attribute holds its JSON path (`texts/0/models/1/ppl`) and, for percentages, `data-scale="100"`.
    public var html: String {
        var h = HTMLWriter()
        h.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html>\n")
        h.raw("<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n")
        h.element("title", "Merge report: \(models[0].name)")
        h.raw("\n<style>\n\(Self.css)\n</style>\n</head>\n<body>\n")
        h.element("h1", "Merge report: \(models[0].name)")
        h.open("p", [("class", "lede")])
        h.text("The merge is scored against its parents with llama.cpp's perplexity protocol: the text is cut into windows of "
               + "\(contextLength) tokens\(maxChunks.map { " (at most \($0) per text)" } ?? "") and the second half of each window is "
                   + "scored. "
               + "Lower perplexity (PPL) and lower bits per byte are better. ± is one standard error. ")
        h.open("span", [("class", "best-key")]); h.text("Highlighted"); h.close("span")
        h.text(": best in its column. The merge is ")
        h.open("strong"); h.swatch(ScoreCharts.mergeColor); h.text(models[0].name); h.close("strong")
        h.text(", drawn in vermilion in every chart.")
        h.close("p")

        h.open("table", [("class", "models")])
        h.raw("<thead><tr><th>model</th><th>role</th><th>path</th><th>vocabulary</th></tr></thead>\n<tbody>\n")
        for (i, m) in models.enumerated() {
            h.open("tr")
            h.open("td"); h.swatch(ScoreCharts.color(ofModel: i)); h.text(m.name); h.close("td")
            h.element("td", m.role == .merge ? "merge" : "parent", [("class", m.role == .merge ? "merge" : "")])
            h.open("td"); h.element("code", m.path); h.close("td")
            h.element("td", ScoreFormat.count(m.vocabSize) + " tokens", [("class", "num")])
            h.close("tr")
        }
        h.raw("</tbody>\n</table>\n")

        for (t, text) in texts.enumerated() {
            section(&h, text, index: t)
        }

        h.open("section", [("class", "definitions")])
        h.element("h2", "How to read this report")
        h.open("ul")
        for item in Self.definitions { h.element("li", item) }
        h.close("ul")
        h.open("p", [("class", "meta")])
        h.text("Scored in \(String(format: "%.1f", seconds)) s on \(threads) thread\(threads == 1 ? "" : "s")"
               + (peakResidentBytes.map { ", peak memory \(formatBytes($0))" } ?? "") + ". Schema \(Self.schema); "
               + "the same figures are in report.json.")
        h.close("p")
        h.close("section")
        h.raw("</body>\n</html>\n")
        return h.out
    }

    private func section(_ h: inout HTMLWriter, _ text: TextScore, index t: Int) {
        h.open("section", [("class", "text")])
        h.element("h2", text.name)
        h.element("p", "\(text.path) · \(ScoreFormat.count(text.bytes)) bytes", [("class", "meta")])
        let v = text.verdict
        h.open("p", [("class", "verdict \(v.outcome.rawValue)\(v.worseThanAllParents ? " worse-than-all" : "")")])
        h.element("strong", "Verdict: ")
        h.text(v.summary)
        h.close("p")

        // Models.
        let ppl = Self.bestIndices(text.results.map(\.perplexity))
        let bpb = Self.bestIndices(text.results.map(\.bitsPerByte))
        h.open("table")
        h.element("caption", "Perplexity and bits per byte of each model on \(text.name)")
        h.raw("<thead><tr><th>model</th><th>role</th><th>PPL ± error</th><th>bits per byte</th><th>tokens "
            + "scored</th><th>windows</th></tr></thead>\n<tbody>\n")
        for (k, r) in text.results.enumerated() {
            let path = "texts/\(t)/models/\(k)"
            h.open("tr", models[r.model].role == .merge ? [("class", "merge")] : [])
            h.open("td"); h.swatch(ScoreCharts.color(ofModel: r.model)); h.text(models[r.model].name); h.close("td")
            h.element("td", models[r.model].role.rawValue)
            h.open("td", [("class", ppl.contains(r.model) ? "num best" : "num")])
            h.number(ScoreFormat.perplexity(r.perplexity), path: path + "/ppl")
            h.text(" ± ")
            h.number(ScoreFormat.perplexityError(r.perplexityError), path: path + "/ppl_stderr")
            h.close("td")
            h.open("td", [("class", bpb.contains(r.model) ? "num best" : "num")])
            h.number(ScoreFormat.bitsPerByte(r.bitsPerByte), path: path + "/bits_per_byte")
            h.close("td")
            h.open("td", [("class", "num")]); h.number(String(r.tokensScored), path: path + "/tokens_scored"); h.close("td")
            h.open("td", [("class", "num")]); h.number(String(r.windows), path: path + "/windows"); h.close("td")
            h.close("tr")
        }
        h.raw("</tbody>\n</table>\n")
        h.figure(ScoreCharts.perplexity(self, text: text),
                 caption: "Each dot is a model's perplexity; the bar spans ± one standard error of that model alone. The merge is drawn in "
                     + "vermilion. Overlapping bars do not mean the models are equal: the models err on the same tokens, so the verdict "
                     + "uses the paired error of their difference (last column of the comparison table), which is much smaller.")
        if let running = ScoreCharts.runningPerplexity(self, text: text) {
            h.figure(running, caption: "The running perplexity over all tokens scored so far, after each window (what crucible ppl prints "
                     + "as it goes): where the lines settle is the final figure.")
        } else {
            h.element("p", "One window per model on this text, so there is no running perplexity to chart: the figures above are final.",
                      [("class", "note")])
        }

        // Merge against parents.
        let compared = text.comparisons.enumerated().compactMap { (k, c) in c.statistics.map { (k, c.parent, $0) } }
        if !compared.isEmpty {
            let kl = Self.bestIndices(compared.map { $0.2.meanKLD.mean })
            let top = Self.bestIndices(compared.map { $0.2.sameTop.mean }, lowest: false)
            let rms = Self.bestIndices(compared.map { $0.2.probabilityDeltaRMS.mean })
            h.open("table")
            h.element("caption",
                "The merge against each parent, token by token (the parent is the reference; highlighted: the parent the merge is closest "
                    + "to)")
            h.raw("<thead><tr><th>parent</th><th>mean KL(parent ‖ merge), nats</th><th>KL median</th><th>KL 99%</th><th>KL max</th>"
                  + "<th>same top token</th><th>RMS Δp</th><th>ln(PPL merge / PPL parent) ± paired error</th></tr></thead>\n<tbody>\n")
            for (n, (k, p, s)) in compared.enumerated() {
                let path = "texts/\(t)/comparisons/\(k)"
                h.open("tr")
                h.open("td"); h.swatch(ScoreCharts.color(ofModel: p)); h.text(models[p].name); h.close("td")
                h.open("td", [("class", kl.contains(n) ? "num best" : "num")])
                h.number(ScoreFormat.kl(s.meanKLD.mean), path: path + "/kl_divergence/mean"); h.text(" ± ")
                h.number(ScoreFormat.kl(s.meanKLD.error), path: path + "/kl_divergence/stderr")
                h.close("td")
                for (key, value) in [("median", s.kldPercentiles[6]), ("p99", s.kldPercentiles[2]), ("max", s.kldPercentiles[0])] {
                    h.open("td", [("class", "num")]); h.number(ScoreFormat.kl(value),
                                                               path: path + "/kl_divergence/percentiles/" + key); h.close("td")
                }
                h.open("td", [("class", top.contains(n) ? "num best" : "num")])
                h.number(ScoreFormat.percent(s.sameTop.mean), path: path + "/same_top/value", scale: 100); h.text(" ± ")
                h.number(ScoreFormat.percent(s.sameTop.error), path: path + "/same_top/stderr", scale: 100); h.text(" %")
                h.close("td")
                h.open("td", [("class", rms.contains(n) ? "num best" : "num")])
                h.number(ScoreFormat.percent(s.probabilityDeltaRMS.mean), path: path + "/rms_delta_p/value", scale: 100); h.text(" %")
                h.close("td")
                h.open("td", [("class", "num")])
                h.number(ScoreFormat.logRatio(s.logPerplexityRatio.mean), path: path + "/ln_ppl_ratio/value"); h.text(" ± ")
                h.number(ScoreFormat.logRatioError(s.logPerplexityRatio.error), path: path + "/ln_ppl_ratio/stderr")
                h.close("td")
                h.close("tr")
            }
            h.raw("</tbody>\n</table>\n")
            h.element("p", "KL(parent ‖ merge) is computed exactly from both models' float logits over the whole vocabulary. "
                      + "Same top token: share of positions where both models rank the same token first. "
                      + "Δp = p_merge(correct token) − p_parent(correct token). A negative ln(PPL ratio) means the merge predicts the "
                          + "text better "
                      + "than that parent; it counts only when larger than its paired error.", [("class", "note")])
            if let chart = ScoreCharts.klDistribution(self, text: text) {
                h.figure(chart, caption: "How far the merge's next-token distributions are from each parent's, per scored token: "
                         + "whiskers 1st–99th percentile, box 25th–75th, line at the median, diamond at the mean.")
            }
        }
        for c in text.comparisons where c.statistics == nil {
            h.element("p", "\(models[c.parent].name) is not compared token by token: \(c.notComparableReason ?? ""). Compare bits per "
                + "byte instead.",
                      [("class", "note")])
        }
        h.close("section")
    }

    static let definitions = [
        "Perplexity (PPL): exp of the mean negative log-likelihood of the scored tokens, exactly as llama.cpp's llama-perplexity and "
            + "crucible ppl compute it. Lower is better.",
        "± after a PPL: llama.cpp's standard error, PPL · σ of the mean NLL. It treats tokens as independent.",
        "Bits per byte: the total negative log-likelihood of the scored tokens in bits, divided by the UTF-8 bytes those tokens stand "
            + "for. It compares models whose vocabularies differ.",
        "KL(parent ‖ merge): per token, Σ p_parent · (log p_parent − log p_merge) in nats, from the full float logits of both models. 0 "
            + "means identical predictions.",
        "Same top token: the share of scored positions where the merge and the parent put their highest probability on the same token.",
        "RMS Δp: the root mean square of p_merge(correct token) − p_parent(correct token).",
        "ln(PPL merge / PPL parent) ± paired error: the mean per-token NLL difference; its error accounts for the correlation of the two "
            + "models' per-token NLLs, so it is much smaller than either PPL's own ±.",
        "Verdict: the best model has the lowest bits per byte (the same order as PPL when tokenizations match). The merge is compared "
            + "with its best parent; the difference counts only when |ln(PPL ratio)| exceeds the paired error, otherwise it is within "
                + "noise.",
    ]

    static let css = """
    body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; line-height: 1.4; padding: 0 16px; }
    h1 { font-size: 24px; margin-bottom: 4px; }
    h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
    table { border-collapse: collapse; margin: 12px 0; font-size: 14px; }
    caption { text-align: left; font-weight: bold; padding-bottom: 6px; }
    th, td { border: 1px solid #d0d0d0; padding: 4px 8px; text-align: left; vertical-align: top; }
    th { background: #f3f3f3; }
    td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
    td.best, .best-key { background: #d9f2d9; font-weight: bold; }
    tr.merge td:first-child { font-weight: bold; }
    .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; border-radius: 2px; }
    .verdict { padding: 8px 12px; border-left: 5px solid #888; background: #f6f6f6; }
    .verdict.better { border-color: #1a7f37; background: #eef8f0; }
    .verdict.worse { border-color: #c62828; background: #fdeeee; }
    .verdict.within_noise { border-color: #8a6d00; background: #fbf6e6; }
    .meta, .note { color: #555; font-size: 13px; }
    figure { margin: 16px 0; }
    figcaption { color: #555; font-size: 13px; max-width: 760px; }
    code { font-size: 12px; word-break: break-all; }
    """
}

/// A minimal XHTML writer: escaped text and attributes (`XMLEscape`), explicit open and close tags.
struct HTMLWriter {
    var out = ""

    mutating func raw(_ s: String) { out += s }
    mutating func text(_ s: String) { out += XMLEscape.text(s) }

    mutating func open(_ name: String, _ attributes: [(String, String)] = []) {
        out += "<" + name
        for (k, v) in attributes where !v.isEmpty { out += " \(k)=\"\(XMLEscape.attribute(v))\"" }
        out += ">"
    }

    mutating func close(_ name: String) { out += "</\(name)>" + (["p", "tr", "section", "ul", "li", "figure", "h1", "h2",
                                                                  "caption"].contains(name) ? "\n" : "") }

    mutating func element(_ name: String, _ content: String, _ attributes: [(String, String)] = []) {
        open(name, attributes)
        text(content)
        close(name)
    }

    /// A number from report.json as shown, tagged with its JSON path (and the factor it was multiplied by).
    mutating func number(_ shown: String, path: String, scale: Double = 1) {
        var attributes = [("class", "value"), ("data-json", path)]
        if scale != 1 { attributes.append(("data-scale", SVGNumber.format(scale) ?? "1")) }
        element("span", shown, attributes)
    }

    mutating func swatch(_ color: String) {
        out += "<span class=\"swatch\" style=\"background: \(XMLEscape.attribute(color))\"></span>"
    }

    /// An inline SVG chart with its caption.
    mutating func figure(_ chart: SVGDocument, caption: String) {
        let svg = chart.render()
        // Inline: the document's XML declaration may only start a file.
        let body = svg.hasPrefix("<?xml") ? String(svg[svg.index(after: svg.firstIndex(of: "\n")!)...]) : svg
        out += "<figure>\n" + body
        element("figcaption", caption)
        out += "</figure>\n"
    }
}
