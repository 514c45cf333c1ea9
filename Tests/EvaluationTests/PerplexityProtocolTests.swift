import Evaluation
import Foundation
import Inference
import XCTest

/// The protocol rules on synthetic logits, where every expected number can be worked out by hand.
final class PerplexityProtocolTests: XCTestCase {
    /// Logits that put probability `p` on token (window position + 1) mod vocab and spread the rest evenly
    /// (the next token when tokens[i] = i mod vocab and ctx is a multiple of vocab).
    private func synthetic(vocab: Int, p: @escaping (Int) -> Double) -> WindowLogits {
        return { window, first in
            var values: [Float] = []
            for pos in first..<window.count {
                let target = (pos + 1) % vocab
                let rest = (1 - p(pos)) / Double(vocab - 1)
                for j in 0..<vocab { values.append(Float(log(j == target ? p(pos) : rest))) }
            }
            return Logits(rows: window.count - first, vocabSize: vocab, values: values)
        }
    }

    func testScoresSecondHalfOfEachWindowMinusOne() throws {
        XCTAssertEqual(PerplexityProtocol.scoredPerChunk(contextLength: 512), 255)
        XCTAssertEqual(PerplexityProtocol.firstScored(contextLength: 512), 256)
        XCTAssertEqual(PerplexityProtocol.scoredPerChunk(contextLength: 7), 3)
        let tokens = (0..<(3 * 512 + 100)).map { $0 % 64 }
        var firsts: [Int] = []
        let result = try PerplexityEvaluator(options: PerplexityOptions(contextLength: 512)).evaluate(tokens: tokens, logits: { w, f in
            firsts.append(f)
            return try self.synthetic(vocab: 64, p: { _ in 0.5 })(w, f)
        })
        XCTAssertEqual(result.chunks, 3, "floor(1636 / 512); the tail is dropped")
        XCTAssertEqual(result.tokensScored, 3 * 255)
        XCTAssertEqual(firsts, [256, 256, 256])
    }

    func testPerplexityAndErrorFollowLlamaCppFormulas() throws {
        // Alternate p = 0.5 and p = 0.25 on the scored positions: NLLs ln 2 and ln 4.
        let ctx = 16, vocab = 8
        let tokens = (0..<(2 * ctx)).map { $0 % vocab }  // ctx is a multiple of vocab, so window position + 1 is the target
        let logits = synthetic(vocab: vocab, p: { $0 % 2 == 0 ? 0.5 : 0.25 })
        let result = try PerplexityEvaluator(options: PerplexityOptions(contextLength: ctx)).evaluate(tokens: tokens, logits: logits)
        // Scored logits positions 8..14 in each window: even ones (8,10,12,14) p=.5, odd (9,11,13) p=.25.
        let nlls = (0..<2).flatMap { _ in (8...14).map { $0 % 2 == 0 ? log(2.0) : log(4.0) } }
        let n = Double(nlls.count)
        let mean = nlls.reduce(0, +) / n
        let variance = nlls.map { $0 * $0 }.reduce(0, +) / n - mean * mean
        XCTAssertEqual(result.tokensScored, 14)
        XCTAssertEqual(result.perplexity, exp(mean), accuracy: 1e-5)
        XCTAssertEqual(result.standardError, exp(mean) * (variance / (n - 1)).squareRoot(), accuracy: 1e-5)
        XCTAssertEqual(result.meanNLL, mean, accuracy: 1e-6)
    }

    func testBOSOverwritesTheFirstTokenOfEveryWindowWithoutShiftingIt() throws {
        let ctx = 8
        let tokens = Array(10..<(10 + 3 * ctx))
        var windows: [[Int]] = []
        let logits: WindowLogits = { w, f in
            windows.append(w)
            return Logits(rows: w.count - f, vocabSize: 64, values: [Float](repeating: 0, count: (w.count - f) * 64))
        }
        _ = try PerplexityEvaluator(options: PerplexityOptions(contextLength: ctx, bosToken: 1)).evaluate(tokens: tokens, logits: logits)
        XCTAssertEqual(windows, (0..<3).map { c in [1] + Array(tokens[(c * ctx + 1)..<((c + 1) * ctx)]) })
        windows = []
        _ = try PerplexityEvaluator(options: PerplexityOptions(contextLength: ctx, bosToken: nil)).evaluate(tokens: tokens, logits: logits)
        XCTAssertEqual(windows[1], Array(tokens[ctx..<(2 * ctx)]), "without BOS a window starts mid-text")
    }

    func testUniformLogitsGiveThePerplexityOfTheVocabularySize() throws {
        let tokens = (0..<64).map { $0 % 50 }
        let result = try PerplexityEvaluator(options: PerplexityOptions(contextLength: 32)).evaluate(tokens: tokens, logits: { w, f in
            Logits(rows: w.count - f, vocabSize: 50, values: [Float](repeating: 0.25, count: (w.count - f) * 50))
        })
        XCTAssertEqual(result.perplexity, 50, accuracy: 1e-3)
        XCTAssertLessThan(result.standardError, 1e-5, "all NLLs equal: only rounding spread")
    }

    func testRefusesTextShorterThanOneWindowAndCapsChunks() throws {
        XCTAssertThrowsError(try PerplexityProtocol.chunkCount(tokenCount: 511, contextLength: 512, maxChunks: nil)) { error in
            XCTAssertEqual(error as? EvaluationError, .tooFewTokens(tokens: 511, contextLength: 512))
            XCTAssertTrue("\(error)".contains("--ctx 512"))
        }
        XCTAssertEqual(try PerplexityProtocol.chunkCount(tokenCount: 512, contextLength: 512, maxChunks: nil), 1)
        XCTAssertEqual(try PerplexityProtocol.chunkCount(tokenCount: 303_415, contextLength: 512, maxChunks: nil), 592)
        XCTAssertEqual(try PerplexityProtocol.chunkCount(tokenCount: 303_415, contextLength: 512, maxChunks: 40), 40)
        XCTAssertThrowsError(try PerplexityProtocol.chunkCount(tokenCount: 5000, contextLength: 512, maxChunks: 0))
    }

    func testOnlyOneTrailingNewlineIsDropped() {
        XCTAssertEqual(PerplexityProtocol.text(fromFileBytes: Array("a\n\n".utf8)), "a\n")
        XCTAssertEqual(PerplexityProtocol.text(fromFileBytes: Array("a\r\n".utf8)), "a\r")
        XCTAssertEqual(PerplexityProtocol.text(fromFileBytes: Array(" b".utf8)), " b")
    }

    func testNegativeLogLikelihoodMatchesDoubleLogSoftmax() {
        let logits: [Float] = [2.5, -1, 0.25, 7, 3.125]
        let m = 7.0
        let expected = log(logits.map { exp(Double($0) - m) }.reduce(0, +)) + m - 0.25
        logits.withUnsafeBufferPointer {
            XCTAssertEqual(PerplexityProtocol.negativeLogLikelihood($0, target: 2), expected, accuracy: 1e-6)
        }
    }
}
