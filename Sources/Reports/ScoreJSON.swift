import Checkpoints
import Evaluation
import Foundation

/// Builds the JSON objects of the score report (schema in docs/score.md) with keys in a fixed order. A number that
/// is not finite is never written as a number: its key holds `null` and a sibling key `<key>_null_reason` says why.
struct JSONObjectBuilder {
    private(set) var object = JSONObject()

    mutating func number(_ key: String, _ value: Double, ifNotFinite reason: @autoclosure () -> String? = nil) {
        if value.isFinite {
            object[key] = .double(value)
        } else {
            object[key] = .null
            let what = value.isNaN ? "not a number" : (value > 0 ? "+infinity" : "-infinity")
            object[key + "_null_reason"] = .string(reason() ?? "the value is \(what)")
        }
    }

    mutating func int(_ key: String, _ value: Int) { object[key] = .int(Int64(value)) }
    mutating func string(_ key: String, _ value: String?) { object[key] = value.map { .string($0) } ?? .null }
    mutating func bool(_ key: String, _ value: Bool) { object[key] = .bool(value) }
    mutating func value(_ key: String, _ value: JSONValue) { object[key] = value }

    var json: JSONValue { .object(object) }
}

extension ScoreReport {
    /// The schema identifier written as `"schema"`; it changes when a key changes meaning or is removed.
    public static let schema = "crucible.score/1"

    /// The report as a JSON value (docs/score.md describes every key).
    public var jsonValue: JSONValue {
        var root = JSONObjectBuilder()
        root.string("schema", Self.schema)
        root.int("ctx", contextLength)
        root.value("chunks", maxChunks.map { .int(Int64($0)) } ?? .null)
        root.int("threads", threads)
        root.number("seconds", seconds)
        root.value("peak_rss_bytes", peakResidentBytes.map { .int(Int64($0)) } ?? .null)
        root.value("models", .array(models.map { m in
            var o = JSONObjectBuilder()
            o.string("name", m.name)
            o.string("role", m.role.rawValue)
            o.string("path", m.path)
            o.string("tokenizer", m.tokenizerPath)
            o.int("vocab_size", m.vocabSize)
            return o.json
        }))
        root.value("texts", .array(texts.map { jsonValue(of: $0) }))
        return root.json
    }

    /// The report as JSON text (`--json`, `report.json`).
    public func json(indent: Int = 2) -> String {
        jsonValue.serialized(indent: indent)
    }

    private func jsonValue(of text: TextScore) -> JSONValue {
        var o = JSONObjectBuilder()
        o.string("name", text.name)
        o.string("path", text.path)
        o.int("bytes", text.bytes)
        o.value("models", .array(text.results.map { r in
            let m = models[r.model]
            var e = JSONObjectBuilder()
            e.string("name", m.name)
            e.string("role", m.role.rawValue)
            e.number("ppl", r.perplexity, ifNotFinite: r.tokensScored == 0 ? "no token was scored" : nil)
            e.number("ppl_stderr", r.perplexityError)
            e.number("mean_nll", r.meanNLL, ifNotFinite: r.tokensScored == 0 ? "no token was scored" : nil)
            e.number("bits_per_byte", r.bitsPerByte, ifNotFinite: r.bytesScored == 0 ? "the scored tokens stand for no bytes" : nil)
            e.int("tokens_scored", r.tokensScored)
            e.int("bytes_scored", r.bytesScored)
            e.int("windows", r.windows)
            e.int("tokens", r.tokenCount)
            e.int("tokenization", r.tokenization)
            e.value("running_ppl", .array(r.runningPerplexity.map { $0.isFinite ? .double($0) : .null }))
            return e.json
        }))
        o.value("comparisons", .array(text.comparisons.map { c in
            var e = JSONObjectBuilder()
            e.string("parent", models[c.parent].name)
            guard let s = c.statistics else {
                e.bool("comparable", false)
                e.string("reason", c.notComparableReason ?? "not compared")
                return e.json
            }
            e.bool("comparable", true)
            e.int("positions", s.positions)
            e.value("ln_ppl_ratio", meanError(s.logPerplexityRatio))
            e.value("kl_divergence", {
                var k = JSONObjectBuilder()
                k.number("mean", s.meanKLD.mean)
                k.number("stderr", s.meanKLD.error)
                k.value("percentiles", percentiles(s.kldPercentiles))
                return k.json
            }())
            e.value("same_top", meanError(s.sameTop))
            e.value("rms_delta_p", meanError(s.probabilityDeltaRMS))
            e.value("mean_delta_p", meanError(s.meanProbabilityDelta))
            e.value("delta_p_percentiles", percentiles(s.probabilityDeltaPercentiles))
            return e.json
        }))
        let v = text.verdict
        var verdict = JSONObjectBuilder()
        verdict.string("best", models[v.best].name)
        verdict.string("best_role", models[v.best].role.rawValue)
        verdict.string("best_parent", models[v.bestParent].name)
        verdict.string("outcome", v.outcome.rawValue)
        if let r = v.logPerplexityRatio {
            verdict.value("ln_ppl_ratio", meanError(r))
        } else {
            verdict.value("ln_ppl_ratio", .null)
            verdict.string("ln_ppl_ratio_null_reason", "the best parent tokenizes the text differently, so there is no paired error")
        }
        verdict.bool("worse_than_all_parents", v.worseThanAllParents)
        verdict.string("summary", v.summary)
        o.value("verdict", verdict.json)
        return o.json
    }

    private func meanError(_ m: MeanWithError) -> JSONValue {
        var o = JSONObjectBuilder()
        o.number("value", m.mean)
        o.number("stderr", m.error)
        return o.json
    }

    private func percentiles(_ values: [Double]) -> JSONValue {
        var o = JSONObjectBuilder()
        for (key, v) in zip(KLDivergenceReport.percentileKeys, values) { o.number(key, v) }
        return o.json
    }
}
