import Evaluation
import Foundation
import Inference
import TestSupport
import Tokenization
import XCTest

/// SmolLM2-135M-Instruct (Q4_1 GGUF, cached outside the repo by scripts/fetch-smollm2.sh) on WikiText-2.
final class RealModelTests: XCTestCase {
    private func requireModel() throws -> String {
        try Fixtures.requireSmolLM2GGUF()
    }

    func testTwoWikiTextWindowsGiveAPlausiblePerplexity() throws {
        let path = try requireModel()
        var run = PerplexityRun(modelPath: path, dataPath: try Fixtures.requireSharedFile(Fixtures.wikiTextTest))
        run.maxChunks = 2
        var progress: [Double] = []
        let result = try run.run { progress.append($0.runningPerplexity) }
        XCTAssertEqual(result.chunks, 2)
        XCTAssertEqual(result.tokensScored, 510)
        XCTAssertEqual(progress.count, 2)
        XCTAssertEqual(progress.last!, result.perplexity, accuracy: 1e-9)
        XCTAssertTrue(result.perplexity.isFinite)
        // llama.cpp reports 23.5 over 40 windows for these weights; two windows scatter around it.
        XCTAssertGreaterThan(result.perplexity, 8)
        XCTAssertLessThan(result.perplexity, 60)
        XCTAssertGreaterThan(result.standardError, 0)
    }

    func testWikiTextTokenizesToTheCountLlamaCppReports() throws {
        let path = try requireModel()
        let data = try Fixtures.requireSharedFile(Fixtures.wikiTextTest)
        let tokenizer = try TokenizerLoader.load(path: path)
        XCTAssertFalse(tokenizer.addsBOS, "SmolLM2's vocabulary adds no BOS")
        let tokens = try PerplexityRun.tokens(ofTextFile: data, tokenizer: tokenizer)
        XCTAssertEqual(tokens.count, 303_415, "perplexity-protocol.md §7")
        XCTAssertEqual(try PerplexityProtocol.chunkCount(tokenCount: tokens.count, contextLength: 512, maxChunks: nil), 592)
    }

    func testGreedyGenerationIsDeterministicAndDecodes() throws {
        let path = try requireModel()
        let model = try LanguageModel(path: path)
        let tokenizer = try TokenizerLoader.load(path: path)
        let prompt = tokenizer.encode("The capital of France is", addSpecial: true, parseSpecial: false)
        let a = try model.generate(prompt: prompt, maxTokens: 8)
        let b = try model.generate(prompt: prompt, maxTokens: 8)
        XCTAssertEqual(a, b)
        XCTAssertTrue(tokenizer.decode(a, skipSpecial: true).contains("Paris"), tokenizer.decode(a, skipSpecial: true))
    }
}
