import XCTest
import Tokenization

/// Splits of the hand-written scanners, worked out from the split regexes they implement.
final class PreTokenizerTests: XCTestCase {
    let gpt2 = PreTokenizer(rules: [.gpt2])
    let llama3 = PreTokenizer(rules: [.llama3])
    let qwen2 = PreTokenizer(rules: [.qwen2])
    let smollm = PreTokenizer(rules: [.isolateDigits, .gpt2])
    let qwen35 = PreTokenizer.forGGUF(pre: "qwen35")!
    let deepSeekLLM = PreTokenizer.forGGUF(pre: "deepseek-llm")!
    let deepSeekCoder = PreTokenizer.forGGUF(pre: "deepseek-coder")!

    func testGPT2KeepsLastSpaceOfARunForTheNextWord() {
        XCTAssertEqual(gpt2.split("Hello world   foo"), ["Hello", " world", "  ", " foo"])
        XCTAssertEqual(gpt2.split("end  "), ["end", "  "])
    }

    func testGPT2ContractionsAreLowercaseOnly() {
        XCTAssertEqual(gpt2.split("I'm WE'LL"), ["I", "'m", " WE", "'", "LL"])
    }

    func testGPT2GroupsDigitsAndPunctuationRuns() {
        XCTAssertEqual(gpt2.split("x 2024!? ok"), ["x", " 2024", "!?", " ok"])
    }

    func testLlama3ContractionsIgnoreCase() {
        XCTAssertEqual(llama3.split("I'M we'Ll"), ["I", "'M", " we", "'Ll"])
    }

    func testLlama3CutsNumbersIntoThrees() {
        XCTAssertEqual(llama3.split("1234567 x"), ["123", "456", "7", " x"])
    }

    func testLlama3AttachesOnePrecedingNonLetter() {
        // Only one character may precede the letters; " _" falls to the punctuation alternative.
        XCTAssertEqual(llama3.split("(hello) _world"), ["(hello", ")", " _", "world"])
    }

    func testLlama3NewlineRunsEndAtTheLastLineBreak() {
        XCTAssertEqual(llama3.split("a \n\n  x"), ["a", " \n\n", " ", " x"])
        XCTAssertEqual(llama3.split("a.\r\nb"), ["a", ".\r\n", "b"])
    }

    func testQwen2SplitsSingleDigits() {
        XCTAssertEqual(qwen2.split("x 123"), ["x", " ", "1", "2", "3"])
    }

    func testSmolLMIsolatesDigitsBeforeTheGPT2Split() {
        XCTAssertEqual(smollm.split("a 12b"), ["a", " ", "1", "2", "b"])
    }

    func testLettersAreUnicodeLetters() {
        XCTAssertEqual(gpt2.split("naïve Ελληνικά 日本"), ["naïve", " Ελληνικά", " 日本"])
        XCTAssertEqual(llama3.split("٣٤٥٦"), ["٣٤٥", "٦"])  // Arabic-Indic digits are \p{N}
    }

    func testLlamaCppDefaultRulesIsolatePunctuationThenNumbersThenTriples() {
        let rules = PreTokenizer.forGGUF(pre: "default")
        XCTAssertEqual(rules?.split("Hello, world! 12345 x$y"),
                       ["Hello", ",", " world", "!", " ", "123", "45", " x", "$", "y"])
    }

    func testFalconRulesTreatBacktickAsPunctuation() {
        let rules = PreTokenizer.forGGUF(pre: "falcon")
        XCTAssertEqual(rules?.split("a`b 1234"), ["a", "`", "b", " ", "123", "4"])
        // The backtick joins a punctuation run only for falcon; for default it is cut off by the run first.
        XCTAssertEqual(rules?.split("a`!"), ["a", "`!"])
        XCTAssertEqual(PreTokenizer.forGGUF(pre: "default")?.split("a`!"), ["a", "`", "!"])
    }

    func testGGUFPreValuesMapToTheirRules() {
        XCTAssertEqual(PreTokenizer.forGGUF(pre: "llama-bpe"), llama3)
        XCTAssertEqual(PreTokenizer.forGGUF(pre: "qwen2"), qwen2)
        XCTAssertEqual(PreTokenizer.forGGUF(pre: "smollm"), smollm)
        XCTAssertEqual(PreTokenizer.forGGUF(pre: "gpt-2"), gpt2)
        XCTAssertNil(PreTokenizer.forGGUF(pre: "no-such-pre"))
        XCTAssertEqual(qwen35.rules, [.qwen35])
        XCTAssertEqual(deepSeekLLM.rules, [.lineBreaks, .deepSeekLetters, .deepSeekPunctuation, .trailingWhitespace, .deepSeekCJK,
                                           .numberRuns])
        XCTAssertEqual(deepSeekCoder.rules, [.lineBreaks, .spacedLetterRuns, .spacedPunctuationRuns, .deepSeekCJK, .isolateDigits])
    }

    func testQwen35CombiningMarksJoinLetterRuns() {
        // Qwen2 sees U+0301 as an "other" character: it leads the next letters or joins the punctuation run.
        XCTAssertEqual(qwen2.split("e\u{301}te x\u{301}!"), ["e", "\u{301}te", " x", "\u{301}!"])
        XCTAssertEqual(qwen35.split("e\u{301}te x\u{301}!"), ["e\u{301}te", " x\u{301}", "!"])
        XCTAssertEqual(qwen35.split("ab 12"), ["ab", " ", "1", "2"])
    }

    func testDeepSeekLLMRulesInSequence() {
        // The punctuation rule takes "\u{3000}。"; the CJK rule (U+0800–U+4E00, whitespace excluded) cuts it again.
        XCTAssertEqual(deepSeekLLM.split("Hi\u{3000}。 12 한국\n"), ["Hi", "\u{3000}", "。", " ", "12", " ", "한국", "\n"])
        XCTAssertEqual(deepSeekLLM.split("ab\u{3000}!?"), ["ab", "\u{3000}!?"])
        // Arabic is not in the letter list: nothing cuts it but the trailing-whitespace rule.
        XCTAssertEqual(deepSeekLLM.split("سلام  "), ["سلام", "  "])
        // U+3000 is inside the punctuation ranges, but llama.cpp's regex sees it as whitespace, never as a member.
        XCTAssertEqual(deepSeekLLM.split("!\u{3000}"), ["!", "\u{3000}"])
    }

    func testDeepSeekCoderRulesInSequence() {
        // `=` is a symbol, not punctuation: it stays with the space before it.
        XCTAssertEqual(deepSeekCoder.split("x = f(12)\r\n한"), ["x", " =", " f", "(", "1", "2", ")", "\r", "\n", "한"])
    }
}
