import Checkpoints
import Foundation
import Reports
import TestSupport
import Tokenization
import XCTest

/// `crucible score` on the fixture merge `linear-normalized` (llama-ft1 ×2, ft2, ft3) against its three parents,
/// every figure in report.json checked against a computation in this test from transformers' golden logits.
///
/// One window covers the whole 39-token sentence: `--ctx 39` gives floor(39 / 39) = 1 window, its logits at
/// positions 19 … 37 scored against tokens 20 … 38 (ctx − ctx/2 − 1 = 19 targets; ctx/2 rounds down).
///
/// Tolerances follow from the manifest's guarantee that an independent float32 engine's logits agree with the
/// goldens within ε = 1e-4: a log-softmax value then moves by at most 2ε, so an NLL by 2ε and a PPL by a relative
/// 2ε. For KL(P ‖ Q), to first order a logit error e on Q changes it by −Σ(p − q)·e (at most ε·Σ|p − q|) and one on P
/// by Σ p·(e − ē)(log p − log q) (at most 2ε·Σ p|log p − log q|); the test computes that bound per position.
final class ScoreFigureTests: XCTestCase {
    static let ctx = 39
    let eps = 1e-4

    struct Reference {
        var nll: [Double] = []
        var bytes = 0
    }

    func testFixtureMergeFiguresMatchAComputationFromTheGoldenLogits() throws {
        let dir = Fixtures.temporaryFolder("score-figures")
        defer { try? FileManager.default.removeItem(at: dir) }
        let parents = ["llama-ft1", "llama-ft2", "llama-ft3"]
        var job = ScoreJob(mergedPath: Fixtures.fixture("merges/linear-normalized/output"),
                           parentPaths: parents.map { Fixtures.fixture("models/\($0)") }, evalPaths: [try writeKeeperText(in: dir)])
        job.contextLength = Self.ctx
        let report = try job.run()
        try report.write(toFolder: dir.path)
        let json = try JSONValue.parse(file: dir.appendingPathComponent("report.json").path)

        let merge = try GoldenLogits("merge.linear-normalized")
        XCTAssertEqual(merge.ids.count, 39)
        let first = Self.ctx / 2, scored = Self.ctx - first - 1
        let targets = (0..<scored).map { merge.ids[first + 1 + $0] }
        // Bytes the targets stand for: the sentence minus what tokens 1 … 19 decode to (byte-level BPE, BOS first).
        let tokenizer = try TokenizerLoader.load(path: Fixtures.fixture("models/llama-ft1"))
        XCTAssertEqual(tokenizer.encode(keeperText, addSpecial: true, parseSpecial: false), merge.ids, "the eval file yields the golden ids")
        let targetBytes = keeperText.utf8.count - tokenizer.decode(Array(merge.ids[1...first])).utf8.count
        XCTAssertGreaterThan(targetBytes, 30)

        let mergeLS = (0..<scored).map { merge.logSoftmax(first + $0) }
        let mergeNLL = (0..<scored).map { -mergeLS[$0][targets[$0]] }
        let models = [merge] + (try parents.map { try GoldenLogits($0) })
        for (k, golden) in models.enumerated() {
            XCTAssertEqual(golden.ids, merge.ids)
            let nll = (0..<scored).map { -golden.logSoftmax(first + $0)[targets[$0]] }
            let (mean, error) = meanAndError(nll)
            let ppl = exp(mean)
            let entry = "texts/0/models/\(k)"
            XCTAssertEqual(jsonValue(json, entry + "/name")?.stringValue, k == 0 ? "output" : parents[k - 1])
            XCTAssertEqual(jsonValue(json, entry + "/tokens_scored")?.intValue, scored)
            XCTAssertEqual(jsonValue(json, entry + "/bytes_scored")?.intValue, targetBytes)
            XCTAssertEqual(jsonValue(json, entry + "/windows")?.intValue, 1)
            let shownPPL = try XCTUnwrap(jsonValue(json, entry + "/ppl")?.doubleValue)
            XCTAssertEqual(shownPPL, ppl, accuracy: ppl * 2 * eps, "PPL of \(entry)")
            XCTAssertEqual(try XCTUnwrap(jsonValue(json, entry + "/mean_nll")?.doubleValue), mean, accuracy: 2 * eps)
            // σ of the mean moves by at most 2ε/√(N−1) when every NLL moves by 2ε; PPL · σ by both effects.
            let stderr = ppl * error
            XCTAssertEqual(try XCTUnwrap(jsonValue(json, entry + "/ppl_stderr")?.doubleValue), stderr,
                           accuracy: stderr * 2 * eps + ppl * 2 * eps / Double(scored - 1).squareRoot())
            let bpb = nll.reduce(0, +) / log(2) / Double(targetBytes)
            XCTAssertEqual(try XCTUnwrap(jsonValue(json, entry + "/bits_per_byte")?.doubleValue), bpb,
                           accuracy: 2 * eps * Double(scored) / log(2) / Double(targetBytes))
            let running = try XCTUnwrap(jsonValue(json, entry + "/running_ppl")?.arrayValue)
            XCTAssertEqual(running.count, 1)
            XCTAssertEqual(running[0].doubleValue ?? .nan, shownPPL, accuracy: 1e-12, "one window: the running PPL is the final one")
            guard k > 0 else { continue }

            // The merge against this parent: the parent is the base (P), the merge the candidate (Q).
            let path = "texts/0/comparisons/\(k - 1)"
            XCTAssertEqual(jsonValue(json, path + "/comparable")?.boolValue, true)
            XCTAssertEqual(jsonValue(json, path + "/positions")?.intValue, scored)
            var kl: [Double] = [], bound: [Double] = [], dp: [Double] = [], dpBound: [Double] = []
            var sameTop = 0
            var smallestGap = Double.infinity
            for i in 0..<scored {
                let lp = golden.logSoftmax(first + i), lq = mergeLS[i]
                var value = 0.0, tv = 0.0, spread = 0.0
                for j in 0..<golden.vocab {
                    let p = exp(lp[j]), q = exp(lq[j])
                    value += p * (lp[j] - lq[j])
                    tv += abs(p - q)
                    spread += p * abs(lp[j] - lq[j])
                }
                kl.append(value)
                bound.append(eps * tv + 2 * eps * spread + 1e-9)
                let top = (lp.indices.max { lp[$0] < lp[$1] }!, lq.indices.max { lq[$0] < lq[$1] }!)
                if top.0 == top.1 { sameTop += 1 }
                for ls in [lp, lq] {
                    let sorted = ls.sorted(by: >)
                    smallestGap = min(smallestGap, sorted[0] - sorted[1])
                }
                let pt = exp(-nll[i]), qt = exp(-mergeNLL[i])
                dp.append(qt - pt)
                dpBound.append(2 * eps * (pt + qt))
            }
            XCTAssertGreaterThan(smallestGap, 4 * eps, "top tokens are separated by more than the logit tolerance, so same-top counts are exact")
            let klStats = meanAndError(kl)
            let maxBound = bound.max()!
            XCTAssertEqual(try XCTUnwrap(jsonValue(json, path + "/kl_divergence/mean")?.doubleValue), klStats.mean,
                           accuracy: bound.reduce(0, +) / Double(scored), "mean KL(parent ‖ merge) against \(parents[k - 1])")
            XCTAssertEqual(try XCTUnwrap(jsonValue(json, path + "/kl_divergence/stderr")?.doubleValue), klStats.error,
                           accuracy: maxBound / Double(scored - 1).squareRoot())
            for (key, fraction) in [("max", 1.0), ("p99", 0.99), ("median", 0.5), ("p10", 0.1), ("min", 0.0)] {
                XCTAssertEqual(try XCTUnwrap(jsonValue(json, path + "/kl_divergence/percentiles/\(key)")?.doubleValue),
                               percentileOf(kl, fraction), accuracy: maxBound, "KL \(key)")
            }
            let p = Double(sameTop) / Double(scored)
            XCTAssertEqual(try XCTUnwrap(jsonValue(json, path + "/same_top/value")?.doubleValue), p, accuracy: 1e-12)
            XCTAssertEqual(try XCTUnwrap(jsonValue(json, path + "/same_top/stderr")?.doubleValue),
                           (p * (1 - p) / Double(scored - 1)).squareRoot(), accuracy: 1e-12)
            let rms = (dp.map { $0 * $0 }.reduce(0, +) / Double(scored)).squareRoot()
            XCTAssertEqual(try XCTUnwrap(jsonValue(json, path + "/rms_delta_p/value")?.doubleValue), rms, accuracy: dpBound.max()!)
            XCTAssertEqual(try XCTUnwrap(jsonValue(json, path + "/mean_delta_p/value")?.doubleValue), dp.reduce(0, +) / Double(scored),
                           accuracy: dpBound.max()!)
            // ln(PPL_merge / PPL_parent): the mean per-token NLL difference; its paired error is the σ of that mean.
            let difference = meanAndError(zip(mergeNLL, nll).map { $0 - $1 })
            XCTAssertEqual(try XCTUnwrap(jsonValue(json, path + "/ln_ppl_ratio/value")?.doubleValue), difference.mean, accuracy: 4 * eps)
            XCTAssertEqual(try XCTUnwrap(jsonValue(json, path + "/ln_ppl_ratio/stderr")?.doubleValue), difference.error,
                           accuracy: 4 * eps / Double(scored - 1).squareRoot())
            XCTAssertLessThan(difference.error, meanAndError(nll).error, "pairing removes the shared variation of the two NLL series")
        }

        // The verdict on these numbers: llama-ft1 has the lowest PPL; the merge is worse than it beyond the paired error.
        XCTAssertEqual(jsonValue(json, "texts/0/verdict/best")?.stringValue, "llama-ft1")
        XCTAssertEqual(jsonValue(json, "texts/0/verdict/best_parent")?.stringValue, "llama-ft1")
        XCTAssertEqual(jsonValue(json, "texts/0/verdict/outcome")?.stringValue, "worse")
        XCTAssertEqual(jsonValue(json, "texts/0/verdict/worse_than_all_parents")?.boolValue, false)
        XCTAssertTrue(jsonValue(json, "texts/0/verdict/summary")?.stringValue?.contains("worse than its best parent llama-ft1") == true)
    }

    /// A "merge" that is one of its parents: KL exactly 0 at every position, the same top token everywhere, no Δp,
    /// and a PPL ratio of exactly 1 with no paired error, so the verdict is "within noise".
    func testMergeIdenticalToAParentHasZeroKLAndFullAgreement() throws {
        let dir = Fixtures.temporaryFolder("score-identical")
        defer { try? FileManager.default.removeItem(at: dir) }
        var job = ScoreJob(mergedPath: Fixtures.fixture("models/llama-ft2"),
                           parentPaths: [Fixtures.fixture("models/llama-ft2"), Fixtures.fixture("models/llama-ft1")],
                           evalPaths: [try writeKeeperText(in: dir)])
        job.contextLength = Self.ctx
        let report = try job.run()
        let json = try JSONValue.parse(Data(report.json().utf8))
        let same = "texts/0/comparisons/0"
        XCTAssertEqual(jsonValue(json, same + "/parent")?.stringValue, "llama-ft2 (2)", "the same folder twice gets a unique name")
        XCTAssertEqual(jsonValue(json, same + "/kl_divergence/mean")?.doubleValue, 0)
        XCTAssertEqual(jsonValue(json, same + "/kl_divergence/percentiles/max")?.doubleValue, 0)
        XCTAssertEqual(jsonValue(json, same + "/same_top/value")?.doubleValue, 1)
        XCTAssertEqual(jsonValue(json, same + "/rms_delta_p/value")?.doubleValue, 0)
        XCTAssertEqual(jsonValue(json, same + "/ln_ppl_ratio/value")?.doubleValue, 0)
        XCTAssertEqual(jsonValue(json, same + "/ln_ppl_ratio/stderr")?.doubleValue, 0)
        XCTAssertEqual(jsonValue(json, "texts/0/models/0/ppl")?.doubleValue, jsonValue(json, "texts/0/models/1/ppl")?.doubleValue)
        // Against the other parent the merge differs.
        XCTAssertGreaterThan(jsonValue(json, "texts/0/comparisons/1/kl_divergence/mean")?.doubleValue ?? 0, 1e-4)
        XCTAssertLessThan(jsonValue(json, "texts/0/comparisons/1/same_top/value")?.doubleValue ?? 1, 1)
        // llama-ft2 has a higher PPL than llama-ft1 on this text, so the best parent is llama-ft1 and the merge (= ft2)
        // is worse than it; against itself it would be within noise.
        XCTAssertEqual(jsonValue(json, "texts/0/verdict/best_parent")?.stringValue, "llama-ft1")
        XCTAssertEqual(jsonValue(json, "texts/0/verdict/outcome")?.stringValue, "worse")
    }

    /// A parent whose tokenizer splits the text differently reads its own windows: it gets PPL and bits per byte,
    /// no token-by-token comparison, and a reason.
    func testParentWithADifferentTokenizationIsComparedByBitsPerByteOnly() throws {
        let dir = Fixtures.temporaryFolder("score-tokenization")
        defer { try? FileManager.default.removeItem(at: dir) }
        // llama-ft3 with a tokenizer that has no merges: every byte is a token (vocabulary size unchanged).
        let parent = dir.appendingPathComponent("ft3-bytes")
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        for file in ["config.json", "model.safetensors", "tokenizer_config.json", "generation_config.json"] {
            try FileManager.default.copyItem(atPath: Fixtures.fixture("models/llama-ft3/\(file)"), toPath: parent.appendingPathComponent(file).path)
        }
        let tokenizerData = try Data(contentsOf: URL(fileURLWithPath: Fixtures.fixture("models/llama-ft3/tokenizer.json")))
        var tokenizerJSON = try XCTUnwrap(try JSONSerialization.jsonObject(with: tokenizerData) as? [String: Any])
        var bpe = try XCTUnwrap(tokenizerJSON["model"] as? [String: Any])
        XCTAssertFalse((bpe["merges"] as? [Any] ?? []).isEmpty)
        bpe["merges"] = [Any]()
        tokenizerJSON["model"] = bpe
        let stripped = String(decoding: try JSONSerialization.data(withJSONObject: tokenizerJSON), as: UTF8.self)
        try stripped.write(to: parent.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)

        var job = ScoreJob(mergedPath: Fixtures.fixture("merges/linear-normalized/output"),
                           parentPaths: [Fixtures.fixture("models/llama-ft1"), parent.path], evalPaths: [try writeKeeperText(in: dir)])
        job.contextLength = Self.ctx
        let report = try job.run()
        let text = try XCTUnwrap(report.texts.first)
        XCTAssertEqual(text.results[2].tokenCount, keeperText.utf8.count + 1, "one token per byte, plus BOS")
        XCTAssertEqual(text.results[2].windows, (keeperText.utf8.count + 1) / Self.ctx)
        XCTAssertNotEqual(text.results[2].tokenization, text.results[0].tokenization)
        XCTAssertEqual(text.results[1].tokenization, text.results[0].tokenization)
        XCTAssertNotNil(text.comparisons[0].statistics)
        XCTAssertNil(text.comparisons[1].statistics)
        XCTAssertTrue(text.comparisons[1].notComparableReason?.contains("tokens") == true, text.comparisons[1].notComparableReason ?? "")
        XCTAssertTrue(text.results[2].bitsPerByte.isFinite)
        let json = try JSONValue.parse(Data(report.json().utf8))
        XCTAssertEqual(jsonValue(json, "texts/0/comparisons/1/comparable")?.boolValue, false)
        XCTAssertNotNil(jsonValue(json, "texts/0/comparisons/1/reason")?.stringValue)
    }
}
