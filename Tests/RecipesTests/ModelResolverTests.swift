import XCTest
import Recipes
import TestSupport

/// Model references resolve to local folders/files or Hugging Face cache snapshots, never via the network.
final class ModelResolverTests: XCTestCase {
    private var root: URL!

    override func setUp() {
        root = Fixtures.temporaryFolder("recipes-resolver")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: root)
    }

    private func makeFolder(_ relative: String) throws -> String {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.standardizedFileURL.path
    }

    private func makeFile(_ relative: String, _ contents: String = "") throws -> String {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try contents.write(to: url, atomically: true, encoding: .utf8)
        return url.standardizedFileURL.path
    }

    private func ref(_ raw: String, line: Int = 4, column: Int = 12) -> ModelReference {
        ModelReference(raw: raw, location: SourceLocation(file: "recipe.yaml", line: line, column: column))
    }

    func testRelativePathsResolveBesideTheRecipeBeforeTheWorkingDirectory() throws {
        let besideRecipe = try makeFolder("recipes/models/m")
        let inWorkingDirectory = try makeFolder("work/models/m")
        let onlyInWorkingDirectory = try makeFolder("work/models/other")
        let resolver = ModelResolver(recipeFolder: root.appendingPathComponent("recipes").path,
                                     workingDirectory: root.appendingPathComponent("work").path, environment: [:])
        XCTAssertEqual(try resolver.resolve(ref("models/m")), besideRecipe)
        XCTAssertNotEqual(besideRecipe, inWorkingDirectory)
        XCTAssertEqual(try resolver.resolve(ref("./models/other")), onlyInWorkingDirectory)
        XCTAssertEqual(try resolver.resolve(ref(onlyInWorkingDirectory)), onlyInWorkingDirectory)
    }

    func testResolverForAParsedRecipeUsesTheRecipesFolder() throws {
        let model = try makeFolder("exp/parents/a")
        let recipePath = try makeFile("exp/merge.yaml", "merge_method: linear\nmodels:\n  - model: parents/a\n")
        let recipe = try RecipeParser.parse(file: recipePath)
        let resolver = ModelResolver(recipe: recipe, workingDirectory: "/", environment: [:])
        XCTAssertEqual(try resolver.resolve(try XCTUnwrap(recipe.models?.first?.model)), model)
    }

    func testTildeAndModelFilesAreAccepted() throws {
        let gguf = try makeFile("home/models/small.Q4_1.gguf")
        let safetensors = try makeFile("home/w.safetensors")
        let resolver = ModelResolver(recipeFolder: "/nonexistent", workingDirectory: "/nonexistent",
                                     environment: ["HOME": root.appendingPathComponent("home").path])
        XCTAssertEqual(try resolver.resolve(ref("~/models/small.Q4_1.gguf")), gguf)
        XCTAssertEqual(try resolver.resolve(ref(safetensors)), safetensors)
        _ = try makeFile("home/pytorch_model.bin")
        XCTAssertThrowsError(try resolver.resolve(ref("~/pytorch_model.bin"))) { error in
            guard case .invalidModel? = error as? RecipeError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".hasPrefix("recipe.yaml:4:12: error: model `~/pytorch_model.bin`"), "\(error)")
        }
    }

    func testHubIdsResolveThroughTheHuggingFaceCacheRefs() throws {
        let repo = "hf/hub/models--org--tiny-model"
        let mainSnapshot = try makeFolder(repo + "/snapshots/1111aaaa")
        let taggedSnapshot = try makeFolder(repo + "/snapshots/2222bbbb")
        _ = try makeFile(repo + "/refs/main", "1111aaaa")
        _ = try makeFile(repo + "/refs/v2", "2222bbbb\n")
        let resolver = ModelResolver(recipeFolder: root.path, workingDirectory: root.path,
                                     environment: ["HF_HOME": root.appendingPathComponent("hf").path])
        XCTAssertEqual(resolver.hubCacheFolder, root.appendingPathComponent("hf/hub").path)
        XCTAssertEqual(try resolver.resolve(ref("org/tiny-model")), mainSnapshot)
        XCTAssertEqual(try resolver.resolve(ref("org/tiny-model@v2")), taggedSnapshot)
        XCTAssertEqual(try resolver.resolve(ref("org/tiny-model@2222bbbb")), taggedSnapshot)
        XCTAssertThrowsError(try resolver.resolve(ref("org/tiny-model@v3"))) { error in
            XCTAssertTrue("\(error)".contains("huggingface-cli download org/tiny-model --revision v3"), "\(error)")
        }
    }

    func testHubCacheVariableWinsAndASingleSnapshotNeedsNoRef() throws {
        let only = try makeFolder("cache/models--org--solo/snapshots/abc")
        let resolver = ModelResolver(recipeFolder: root.path, workingDirectory: root.path,
                                     environment: ["HF_HUB_CACHE": root.appendingPathComponent("cache").path,
                                                   "HF_HOME": root.appendingPathComponent("elsewhere").path])
        XCTAssertEqual(try resolver.resolve(ref("org/solo")), only)
        let defaultResolver = ModelResolver(recipeFolder: root.path, workingDirectory: root.path, environment: ["HOME": "/home/u"])
        XCTAssertEqual(defaultResolver.hubCacheFolder, "/home/u/.cache/huggingface/hub")
    }

    func testMissingModelSaysWhereItLookedAndHowToDownload() throws {
        let resolver = ModelResolver(recipeFolder: root.appendingPathComponent("r").path, workingDirectory: root.appendingPathComponent("w").path,
                                     environment: ["HF_HOME": root.appendingPathComponent("hf").path])
        XCTAssertThrowsError(try resolver.resolve(ref("meta-llama/Llama-3.2-1B", line: 7, column: 5))) { error in
            guard case .modelNotFound(let location, let reference, let searched, let hint)? = error as? RecipeError else { return XCTFail("\(error)") }
            XCTAssertEqual(location, SourceLocation(file: "recipe.yaml", line: 7, column: 5))
            XCTAssertEqual(reference, "meta-llama/Llama-3.2-1B")
            XCTAssertEqual(searched, [root.appendingPathComponent("r/meta-llama/Llama-3.2-1B").path,
                                      root.appendingPathComponent("w/meta-llama/Llama-3.2-1B").path,
                                      root.appendingPathComponent("hf/hub/models--meta-llama--Llama-3.2-1B").path])
            XCTAssertTrue(hint.contains("huggingface-cli download meta-llama/Llama-3.2-1B"), hint)
            XCTAssertTrue("\(error)".hasPrefix("recipe.yaml:7:5: error: model `meta-llama/Llama-3.2-1B` not found; looked in: "), "\(error)")
        }
        XCTAssertThrowsError(try resolver.resolve(ref("../nowhere/model"))) { error in
            guard case .modelNotFound(_, _, let searched, let hint)? = error as? RecipeError else { return XCTFail("\(error)") }
            XCTAssertEqual(searched.count, 2)   // not a hub id: only the two local places
            XCTAssertTrue(hint.contains("local") || hint.contains("path"), hint)
        }
    }

    func testLoraReferencesAreRefused() {
        let resolver = ModelResolver(recipeFolder: root.path, workingDirectory: root.path, environment: ["HF_HOME": root.path])
        XCTAssertThrowsError(try resolver.resolve(ref("org/base+org/adapter"))) { error in
            guard case .unsupported? = error as? RecipeError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("LoRA"), "\(error)")
            XCTAssertTrue("\(error)".contains("not supported yet"), "\(error)")
        }
    }
}
