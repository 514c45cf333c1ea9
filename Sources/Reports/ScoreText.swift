import Evaluation
import Foundation
import Host

/// How every figure of a score is written for people (terminal table, report.md, report.html), in one place.
/// Non-finite values are written `n/a`.
public enum ScoreFormat {
    /// Decimals shown per kind of figure; the report's tests read numbers back with these.
    public static let perplexityDigits = 4, perplexityErrorDigits = 5, bitsPerByteDigits = 4
    public static let klDigits = 6, percentDigits = 3, logRatioDigits = 5

    static func fixed(_ x: Double, _ digits: Int, sign: Bool = false) -> String {
        guard x.isFinite else { return "n/a" }
        let s = String(format: "%\(sign ? "+" : "").\(digits)f", x)
        return s == "-0." + String(repeating: "0", count: digits) ? String(s.dropFirst()) : s
    }

    public static func perplexity(_ x: Double) -> String { fixed(x, perplexityDigits) }
    public static func perplexityError(_ x: Double) -> String { fixed(x, perplexityErrorDigits) }
    public static func bitsPerByte(_ x: Double) -> String { fixed(x, bitsPerByteDigits) }
    public static func kl(_ x: Double) -> String { fixed(x, klDigits) }
    /// A fraction written as a percentage (the number only).
    public static func percent(_ x: Double) -> String { fixed(100 * x, percentDigits) }
    public static func logRatio(_ x: Double) -> String { fixed(x, logRatioDigits, sign: true) }
    public static func logRatioError(_ x: Double) -> String { fixed(x, logRatioDigits) }

    /// `1,288,556`.
    public static func count(_ n: Int) -> String {
        let s = String(n)
        var out = ""
        for (i, ch) in s.reversed().enumerated() {
            if i > 0 && i % 3 == 0 && ch != "-" { out.append(",") }
            out.append(ch)
        }
        return String(out.reversed())
    }
}

extension ScoreReport {
    /// Which rows hold the best value of a column: the minimum (or maximum) over finite values.
    static func bestIndices(_ values: [Double], lowest: Bool = true) -> Set<Int> {
        let finite = values.enumerated().filter { $0.element.isFinite }
        guard let target = lowest ? finite.map(\.element).min() : finite.map(\.element).max() else { return [] }
        return Set(finite.filter { $0.element == target }.map(\.offset))
    }

    /// The terminal tables: per text, the models (PPL ± error, bits per byte, tokens) and the merge against each
    /// parent, then the verdict. The best value of each column is marked: bold green when `color` (a terminal),
    /// otherwise a trailing `*`.
    public func table(color: Bool) -> String {
        func mark(_ s: String, _ best: Bool) -> String {
            guard best else { return s + " " }
            return color ? "\u{1B}[1;32m" + s + "\u{1B}[0m " : s + "*"
        }
        func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
            let visible = s.replacingOccurrences(of: "\u{1B}[1;32m", with: "").replacingOccurrences(of: "\u{1B}[0m", with: "").count
            let fill = String(repeating: " ", count: max(0, width - visible))
            return right ? fill + s : s + fill
        }
        var lines: [String] = []
        let nameWidth = max(12, (models.map { $0.name.count }.max() ?? 0) + 2)
        let chunks = maxChunks.map { ", at most \($0) windows" } ?? ""
        lines.append("\(models[0].name) (merge) against \(models.count - 1) parent\(models.count == 2 ? "" : "s"): windows of "
            + "\(contextLength) tokens\(chunks)")
        for text in texts {
            lines.append("")
            lines.append("\(text.name) (\(ScoreFormat.count(text.bytes)) bytes)")
            let ppl = Self.bestIndices(text.results.map(\.perplexity))
            let bpb = Self.bestIndices(text.results.map(\.bitsPerByte))
            lines.append(pad("model", nameWidth) + pad("role", 8) + pad("PPL ± error", 24) + pad("bits/byte", 11)
                + pad("tokens scored", 14, right: true))
            for r in text.results {
                let m = models[r.model]
                let pplText = mark(ScoreFormat.perplexity(r.perplexity) + " ± " + ScoreFormat.perplexityError(r.perplexityError),
                                   ppl.contains(r.model))
                lines.append(pad(m.name, nameWidth) + pad(m.role.rawValue, 8) + pad(pplText, 24)
                             + pad(mark(ScoreFormat.bitsPerByte(r.bitsPerByte), bpb.contains(r.model)), 11)
                             + pad(ScoreFormat.count(r.tokensScored), 14, right: true))
            }
            let compared = text.comparisons.compactMap { c in c.statistics.map { (c.parent, $0) } }
            if !compared.isEmpty {
                lines.append("")
                lines.append("merge against parent (KL(parent ‖ merge) in nats; Δp = p_merge(target) − p_parent(target))")
                let kl = Self.bestIndices(compared.map { $0.1.meanKLD.mean })
                let top = Self.bestIndices(compared.map { $0.1.sameTop.mean }, lowest: false)
                let rms = Self.bestIndices(compared.map { $0.1.probabilityDeltaRMS.mean })
                lines.append(pad("parent", nameWidth) + pad("mean KL ± error", 24) + pad("KL median", 11) + pad("KL 99%", 11)
                             + pad("same top % ± error", 20) + pad("RMS Δp %", 10) + "ln(PPL merge/parent) ± paired error")
                for (k, (p, s)) in compared.enumerated() {
                    lines.append(pad(models[p].name, nameWidth)
                                 + pad(mark(ScoreFormat.kl(s.meanKLD.mean) + " ± " + ScoreFormat.kl(s.meanKLD.error), kl.contains(k)), 24)
                                 + pad(ScoreFormat.kl(s.kldPercentiles[6]), 11) + pad(ScoreFormat.kl(s.kldPercentiles[2]), 11)
                                 + pad(mark(ScoreFormat.percent(s.sameTop.mean) + " ± " + ScoreFormat.percent(s.sameTop.error),
                                            top.contains(k)), 20)
                                 + pad(mark(ScoreFormat.percent(s.probabilityDeltaRMS.mean), rms.contains(k)), 10)
                                 + ScoreFormat.logRatio(s.logPerplexityRatio.mean)
                                 + " ± " + ScoreFormat.logRatioError(s.logPerplexityRatio.error))
                }
            }
            for c in text.comparisons where c.statistics == nil {
                lines.append("\(models[c.parent].name): not compared token by token: \(c.notComparableReason ?? "")")
            }
            lines.append("")
            lines.append("verdict: " + text.verdict.summary)
        }
        lines.append("")
        lines.append((color ? "bold green" : "*") + ": best in its column (lowest PPL and bits/byte; among parents, the one the merge is "
            + "closest to)")
        lines.append(String(format: "scored in %.1f s on %d thread%@", seconds, threads, threads == 1 ? "" : "s")
                     + (peakResidentBytes.map { ", peak RSS \(formatBytes($0))" } ?? ""))
        return lines.joined(separator: "\n")
    }

    /// `report.md`: the same figures as the terminal tables, as Markdown, with the definitions a reader needs.
    public var markdown: String {
        var md: [String] = []
        md.append("# Merge report: \(models[0].name)")
        md.append("")
        md.append("The merge `\(models[0].path)` scored against its parents with llama.cpp's perplexity protocol: windows of "
                  + "\(contextLength) tokens\(maxChunks.map { " (at most \($0) per text)" } ?? ""), the second half of each window scored. "
                  + "Lower perplexity (PPL) and bits per byte are better. **Bold**: best in its column.")
        md.append("")
        md.append("| model | role | path |")
        md.append("| --- | --- | --- |")
        for m in models { md.append("| \(m.name) | \(m.role.rawValue) | `\(m.path)` |") }
        for text in texts {
            md.append("")
            md.append("## \(text.name)")
            md.append("")
            md.append("**Verdict:** \(text.verdict.summary)")
            md.append("")
            let ppl = Self.bestIndices(text.results.map(\.perplexity))
            let bpb = Self.bestIndices(text.results.map(\.bitsPerByte))
            func bold(_ s: String, _ b: Bool) -> String { b ? "**\(s)**" : s }
            md.append("| model | role | PPL | ± | bits/byte | tokens scored | windows |")
            md.append("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
            for r in text.results {
                md.append("| \(models[r.model].name) | \(models[r.model].role.rawValue) | "
                    + "\(bold(ScoreFormat.perplexity(r.perplexity), ppl.contains(r.model))) | "
                          + "\(ScoreFormat.perplexityError(r.perplexityError)) | "
                              + "\(bold(ScoreFormat.bitsPerByte(r.bitsPerByte), bpb.contains(r.model))) | "
                          + "\(ScoreFormat.count(r.tokensScored)) | \(r.windows) |")
            }
            let compared = text.comparisons.compactMap { c in c.statistics.map { (c.parent, $0) } }
            if !compared.isEmpty {
                md.append("")
                md.append("The merge against each parent, position by position (the parent is the reference): KL(parent ‖ merge) in nats "
                          + "from the full float logits, the share of positions where both pick the same top token, "
                          + "Δp = p_merge(target) − p_parent(target), and ln(PPL_merge / PPL_parent) with the paired error.")
                md.append("")
                md.append("| parent | mean KL | ± | KL median | KL 99% | KL max | same top % | ± "
                          + "| RMS Δp % | ln(PPL ratio) | paired ± |")
                md.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
                let kl = Self.bestIndices(compared.map { $0.1.meanKLD.mean })
                let top = Self.bestIndices(compared.map { $0.1.sameTop.mean }, lowest: false)
                let rms = Self.bestIndices(compared.map { $0.1.probabilityDeltaRMS.mean })
                for (k, (p, s)) in compared.enumerated() {
                    md.append("| \(models[p].name) | \(bold(ScoreFormat.kl(s.meanKLD.mean), kl.contains(k))) | "
                        + "\(ScoreFormat.kl(s.meanKLD.error)) | "
                              + "\(ScoreFormat.kl(s.kldPercentiles[6])) | \(ScoreFormat.kl(s.kldPercentiles[2])) | "
                                  + "\(ScoreFormat.kl(s.kldPercentiles[0])) | "
                              + "\(bold(ScoreFormat.percent(s.sameTop.mean), top.contains(k))) | \(ScoreFormat.percent(s.sameTop.error)) | "
                              + "\(bold(ScoreFormat.percent(s.probabilityDeltaRMS.mean), rms.contains(k))) | "
                              + "\(ScoreFormat.logRatio(s.logPerplexityRatio.mean)) | "
                                  + "\(ScoreFormat.logRatioError(s.logPerplexityRatio.error)) |")
                }
            }
            for c in text.comparisons where c.statistics == nil {
                md.append("")
                md.append("\(models[c.parent].name) is not compared token by token: \(c.notComparableReason ?? ""). Compare bits per byte "
                    + "instead.")
            }
        }
        md.append("")
        md.append("Definitions: docs/score.md. ± is one standard error; the verdict calls a difference real only when "
                  + "|ln(PPL_merge / PPL_parent)| exceeds its paired error.")
        return md.joined(separator: "\n") + "\n"
    }
}
