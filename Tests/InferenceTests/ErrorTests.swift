import Architectures
import Checkpoints
import Foundation
import Inference
import TestSupport
import XCTest

final class ErrorTests: XCTestCase {
    private func config(_ edit: (inout [String: String]) -> Void) -> JSONObject {
        var fields: [String: String] = [
            "model_type": "\"llama\"", "vocab_size": "512", "hidden_size": "32", "intermediate_size": "64",
            "num_hidden_layers": "2", "num_attention_heads": "4", "num_key_value_heads": "2",
        ]
        edit(&fields)
        let text = "{" + fields.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ",") + "}"
        return (try? JSONValue.parse(Data(text.utf8)))?.objectValue ?? JSONObject()
    }

    func testMissingConfigKeyNamesFileAndKey() {
        XCTAssertThrowsError(try ModelConfig(json: config { $0["hidden_size"] = nil }, file: "x/config.json")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("x/config.json") && text.contains("hidden_size"), text)
        }
    }

    func testWrongTypedConfigKeyIsRejected() {
        XCTAssertThrowsError(try ModelConfig(json: config { $0["num_hidden_layers"] = "\"four\"" }, file: "c.json")) { error in
            XCTAssertTrue("\(error)".contains("num_hidden_layers"))
        }
        XCTAssertThrowsError(try ModelConfig(json: config { $0["rope_scaling"] = "{\"rope_type\": \"yarn\", \"factor\": 2}" }, file: "c.json")) { error in
            XCTAssertTrue("\(error)".contains("yarn"))
        }
        XCTAssertThrowsError(try ModelConfig(json: config { $0["num_key_value_heads"] = "3" }, file: "c.json"))
    }

    func testBothConfigLayoutsParseTheSameRopeScaling() throws {
        let v4 = try ModelConfig(json: config {
            $0["rope_theta"] = "500000.0"
            $0["rope_scaling"] = "{\"rope_type\": \"linear\", \"factor\": 2.0}"
            $0["torch_dtype"] = "\"bfloat16\""
        }, file: "v4.json")
        let v5 = try ModelConfig(json: config {
            $0["rope_parameters"] = "{\"rope_type\": \"linear\", \"factor\": 2.0, \"rope_theta\": 500000.0}"
            $0["dtype"] = "\"bfloat16\""
        }, file: "v5.json")
        XCTAssertEqual(v4, v5)
        XCTAssertEqual(v4.ropeScaling, .linear(factor: 2))
        XCTAssertEqual(v4.ropeTheta, 500000)
        XCTAssertEqual(v4.headDim, 8)
        XCTAssertNil(v4.slidingWindow)
        XCTAssertNil(v4.experts)
    }

    func testFixtureConfigsDescribeTheirVariants() throws {
        let mistral = try ModelConfig(file: Fixtures.fixture("models/mistral-base/config.json"))
        XCTAssertEqual(mistral.slidingWindow, 16)
        XCTAssertEqual(mistral.headDim, 16)
        XCTAssertEqual(mistral.kvHeadCount, 1)
        let qwen = try ModelConfig(file: Fixtures.fixture("models/qwen2-base/config.json"))
        XCTAssertTrue(qwen.attentionBias)
        XCTAssertNil(qwen.slidingWindow, "use_sliding_window false disables the window")
        XCTAssertEqual(qwen.rmsNormEps, 1e-6)
        let mixtral = try ModelConfig(file: Fixtures.fixture("models/mixtral-tiny/config.json"))
        XCTAssertEqual(mixtral.experts, ModelConfig.ExpertConfig(count: 4, perToken: 2, intermediateSize: mixtral.intermediateSize))
        XCTAssertEqual(mixtral.headDim, 8, "head_dim null falls back to hidden / heads")
        let tied = try ModelConfig(file: Fixtures.fixture("models/llama-tied/config.json"))
        XCTAssertTrue(tied.tieWordEmbeddings)
        let llama3 = try ModelConfig(file: Fixtures.fixture("models/llama-rope-llama3/config.json"))
        XCTAssertEqual(llama3.ropeScaling, .llama3(factor: 4, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 64))
        XCTAssertEqual(llama3.bosTokenID, 1)
        XCTAssertEqual(llama3.eosTokenIDs, [2])
    }

    func testMissingWeightIsNamed() throws {
        let folder = try CheckpointFolder(path: Fixtures.fixture("models/llama-base"))
        var config = try ModelConfig(json: folder.config, file: folder.configPath)
        config.layerCount = 5
        XCTAssertThrowsError(try LanguageModel(source: folder, config: config)) { error in
            XCTAssertEqual(error as? InferenceError, .missingWeight(tensor: "model.layers.4.input_layernorm.weight", checkpoint: folder.path))
        }
    }

    func testShapeMismatchIsNamed() throws {
        let folder = try CheckpointFolder(path: Fixtures.fixture("models/llama-base"))
        var config = try ModelConfig(json: folder.config, file: folder.configPath)
        config.intermediateSize = 95
        XCTAssertThrowsError(try LanguageModel(source: folder, config: config)) { error in
            XCTAssertTrue("\(error)".contains("model.layers.0.mlp.gate_proj.weight"), "\(error)")
        }
    }

    func testTokenOutsideVocabularyIsRejected() throws {
        let model = try LanguageModel(folder: Fixtures.fixture("models/llama-base"))
        XCTAssertThrowsError(try model.forward([1, 512])) { error in
            XCTAssertEqual(error as? InferenceError, .tokenOutOfRange(token: 512, position: 1, vocabSize: 512))
        }
        XCTAssertThrowsError(try model.forward([]))
    }
}
